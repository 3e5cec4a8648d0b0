//! One module per command.

mod config;
mod init;

use std::process::ExitCode;

use crate::args::{Cli, Command, ConfigCommand};
use crate::output;

pub fn run(cli: &Cli) -> ExitCode {
    let name = cli.command.name();
    match &cli.command {
        Command::Init(args) => output::finish(cli, name, &init::run(args)),
        Command::Config(ConfigCommand::Check { strict }) => {
            output::finish(cli, name, &config::check(cli, *strict))
        }
        Command::Config(ConfigCommand::Show) => output::finish(cli, name, &config::show(cli)),
    }
}
