//! One module per command.

mod alert;
mod backup;
mod config;
mod demo;
mod deploy;
mod docs;
mod health;
mod init;
mod prune;
mod restore;
mod verify;

use std::process::ExitCode;

use vigia_core::config::default_config_path;
use vigia_core::{Config, Result};

use crate::args::{
    AlertCommand, BackupArgs, BackupCommand, Cli, Command, ConfigCommand, DeployArgs, DeployCommand,
};
use crate::output;

pub fn run(cli: &Cli) -> ExitCode {
    let name = cli.command.name();
    match &cli.command {
        Command::Init(args) => output::finish(cli, name, &init::run(cli, args)),
        Command::Completions { shell } => output::finish(cli, name, &docs::completions(*shell)),
        Command::Man { dir } => output::finish(cli, name, &docs::man(dir)),
        Command::Config(ConfigCommand::Check { strict }) => {
            output::finish(cli, name, &config::check(cli, *strict))
        }
        Command::Config(ConfigCommand::Show) => output::finish(cli, name, &config::show(cli)),
        Command::Demo(args) => output::finish(cli, name, &demo::run(cli, args)),
        Command::Backup(args @ BackupArgs { command: None, .. }) => {
            output::finish(cli, name, &backup::take(cli, args))
        }
        Command::Backup(BackupArgs {
            command: Some(BackupCommand::List),
            ..
        }) => output::finish(cli, name, &backup::list(cli)),
        Command::Backup(BackupArgs {
            command: Some(BackupCommand::Show { id }),
            ..
        }) => output::finish(cli, name, &backup::show(cli, id)),
        Command::Verify(args) => output::finish(cli, name, &verify::run(cli, args)),
        Command::Prune(args) => output::finish(cli, name, &prune::run(cli, args)),
        Command::Restore(args) if args.cleanup => {
            output::finish(cli, name, &restore::cleanup(cli, args))
        }
        Command::Restore(args) if args.resume => output::finish(cli, name, &restore::resume(cli)),
        Command::Restore(args) if args.dry_run => {
            output::finish(cli, name, &restore::plan(cli, args))
        }
        Command::Restore(args) => output::finish(cli, name, &restore::run(cli, args)),
        Command::Health(args) => health::run(cli, args),
        Command::Smoke(args) => health::smoke(cli, args),
        Command::Alert(AlertCommand::Test) => output::finish(cli, name, &alert::test(cli)),
        Command::Alert(AlertCommand::Silence { length, reason }) => {
            output::finish(cli, name, &alert::silence(cli, *length, reason))
        }
        Command::Alert(AlertCommand::Unsilence) => {
            output::finish(cli, name, &alert::unsilence(cli))
        }
        Command::Deploy(DeployArgs {
            command: Some(DeployCommand::History),
            ..
        }) => output::finish(cli, name, &deploy::history(cli)),
        Command::Deploy(DeployArgs {
            command: Some(DeployCommand::Lock { message }),
            ..
        }) => output::finish(cli, name, &deploy::lock(cli, message)),
        Command::Deploy(DeployArgs {
            command: Some(DeployCommand::Unlock),
            ..
        }) => output::finish(cli, name, &deploy::unlock(cli)),
        Command::Deploy(args) => output::finish(cli, name, &deploy::run(cli, args)),
        Command::Rollback(args) => output::finish(cli, name, &deploy::rollback(cli, args)),
    }
}

/// The config file for `--config` / `VIGIA_CONFIG`, in the `--env` environment.
pub fn load_config(cli: &Cli) -> Result<Config> {
    Config::load(
        &default_config_path(cli.config.as_deref()),
        cli.environment.as_deref(),
    )
}

/// The async runtime for commands that do I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    vigia_core::task::async_runtime("vigia", None)
}
