//! Flags and subcommands.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use vigia_core::config::HumanDuration;

#[derive(Debug, Parser)]
#[command(
    name = "vigia",
    version,
    about = "Backups that restore, deploys that roll back, health checks that say what broke: \
             operations for an Odoo 19 stack with Costa Rica e-invoicing"
)]
pub struct Cli {
    /// The config file [default: $VIGIA_CONFIG, else ./vigia.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The environment to use [default: the config's default-env]
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub environment: Option<String>,
    /// Print exactly one JSON document on stdout (logs and progress go to stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No progress bars (periodic log lines are still written)
    #[arg(long, global = true)]
    pub no_progress: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working vigia.toml with a fresh age key pair and name key (never overwrites)
    Init(InitArgs),
    /// Validate or show the config
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The main job end to end on a throwaway PostgreSQL: backup, drill, incremental backup
    Demo(DemoArgs),
    /// Take a backup (database and filestore, encrypted), or list and show backups
    Backup(BackupArgs),
    /// Check that backups are whole and restorable (results are recorded in the store)
    Verify(VerifyArgs),
    /// Apply retention: plan, then delete (never the newest verified backup)
    Prune(PruneArgs),
    /// Restore a backup: into a new database, swapped in for the live one only on success
    Restore(RestoreArgs),
    /// Check the stack, concurrently: exit 0 ok, 1 warning, 2 critical, 3 unknown
    Health(HealthArgs),
    /// Smoke-test the site through nginx: login, bundles, websocket, TLS, headers (exit codes
    /// as health)
    Smoke(SmokeArgs),
    /// Test the alert channels, or silence alerts for a while (checks still run)
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Deploy a release (upgrading the modules whose code changed), rolled back on any
    /// failure; or show the deploys made
    Deploy(DeployArgs),
    /// Undo the last deploy, or one that was killed midway, from its journal
    Rollback(RollbackArgs),
    /// Print the shell completion script for SHELL (e.g. `vigia completions bash >
    /// /etc/bash_completion.d/vigia`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages, one per command (vigia.1, vigia-backup.1, ...), into a folder
    Man {
        /// The folder (made if missing; pages already there are replaced)
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DeployArgs {
    /// The release to deploy: a folder under [deploy] root/releases, or under compose an
    /// image reference
    #[arg(long, value_name = "REF", required_unless_present = "resume")]
    pub release: Option<String>,
    /// Show the plan (modules to upgrade, steps, commands, what undoes them); touch nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Go on with the last deploy, killed midway: the step it was in runs again
    #[arg(long, conflicts_with_all = ["release", "dry_run"])]
    pub resume: bool,
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// The deploys made (state-dir/deploys/audit.jsonl), oldest first
    History,
    /// Freeze deploys (a month end, a Hacienda window) until `deploy unlock`; rollbacks stay
    /// allowed
    Lock {
        /// Why, for whoever wants to deploy next
        #[arg(short, long, value_name = "TEXT")]
        message: String,
    },
    /// End the freeze `deploy lock` set
    Unlock,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Swap the pre-deploy database back even though e-invoices were made since (they are
    /// lost from Odoo; Hacienda keeps its copies)
    #[arg(long)]
    pub accept_einvoice_loss: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test message on every channel of [alerting]
    Test,
    /// Send no alert until the silence ends (health runs still check and count)
    Silence {
        /// How long: 30m, 2h, 1d
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        length: HumanDuration,
        /// Why, for whoever is on call next
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// End the silence in force
    Unsilence,
}

fn parse_duration(text: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(text)
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Run only these checks (comma-separated names, as the report shows them)
    #[arg(long, value_name = "NAME,..", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Count the results into incidents and send what opened, escalated or resolved
    /// (needs [alerting])
    #[arg(long)]
    pub alert: bool,
    /// Exit 1 if anything is critical or unknown, else 0 (the old script's convention)
    #[arg(long)]
    pub legacy_exit: bool,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The site to test (https://host[:port]); default: [odoo] url
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Exit 1 if anything is critical or unknown, else 0 (the old script's convention)
    #[arg(long)]
    pub legacy_exit: bool,
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
pub struct RestoreArgs {
    /// The backup id, as `vigia backup list` shows it
    #[arg(required_unless_present_any = ["cleanup", "from_odoo_zip", "resume"])]
    pub id: Option<String>,
    /// Restore a backup made by Odoo's database manager (dump.sql, filestore/,
    /// manifest.json) instead of a vigia backup; what it holds is shown first
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    pub from_odoo_zip: Option<PathBuf>,
    /// List the copies restores kept aside and what killed restores and drills abandoned
    /// (databases, filestore folders, spool files); remove them with --apply
    #[arg(long, conflicts_with_all = ["id", "from_odoo_zip", "target_db", "accept_einvoice_loss", "force_sessions", "neutralize", "jobs", "role", "trust_zip"])]
    pub cleanup: bool,
    /// With --cleanup: remove what is listed
    #[arg(long, requires = "cleanup")]
    pub apply: bool,
    /// Undo a swap that was interrupted (killed, lost connection) from its journal in
    /// state-dir, putting the live database and filestore back; any restore does this first
    #[arg(long, conflicts_with_all = ["id", "from_odoo_zip", "cleanup", "target_db", "confirm", "accept_einvoice_loss", "force_sessions", "neutralize", "jobs", "role"])]
    pub resume: bool,
    /// Restore beside the live database, into this new one (and filestore/NAME); no swap
    #[arg(long, value_name = "NAME")]
    pub target_db: Option<String>,
    /// In a production environment, the live database's name: replacing it (or removing
    /// what --cleanup --apply lists) needs this
    #[arg(long, value_name = "DB", conflicts_with = "target_db")]
    pub confirm: Option<String>,
    /// Replace the live database even though it holds e-invoices newer than the backup
    #[arg(long, conflicts_with = "target_db")]
    pub accept_einvoice_loss: bool,
    /// With [runtime] kind = "none": swap even though other sessions (a running Odoo) are
    /// connected to the live database, ending them; without it the swap is refused, naming them
    #[arg(long, conflicts_with = "target_db")]
    pub force_sessions: bool,
    /// Make the restored copy unable to send e-invoices or e-mail: crons, mail servers and
    /// Hacienda credentials off, new database.uuid, web.base.url from config, then
    /// [restore] neutralize-sql (refused in production environments)
    #[arg(long)]
    pub neutralize: bool,
    /// pg_restore jobs [default: [restore] jobs]
    #[arg(long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Restore as this role (pg_restore --role) [default: [restore] role]
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// With --from-odoo-zip: run the zip's SQL with the [postgres] user's rights instead of
    /// a throwaway role (for a user without CREATEROLE; only for a zip you trust)
    #[arg(long, requires = "from_odoo_zip")]
    pub trust_zip: bool,
    /// Print the restore's plan (names, steps) and change nothing
    #[arg(long, conflicts_with_all = ["cleanup", "resume"])]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the config, keys and store [default: a new folder under /tmp]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show the plan (what is kept and why, what would be deleted) and delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup to verify [default: the newest]
    #[arg(conflicts_with = "all")]
    pub id: Option<String>,
    /// Verify every backup in the store
    #[arg(long)]
    pub all: bool,
    /// quick: objects exist with their sizes; full: read back, sha256, decrypt, pg_restore
    /// --list, every file's sha1; drill: full plus a restore into a scratch database whose row
    /// counts must match [default: full with an identity configured, else quick]
    #[arg(long, value_name = "LEVEL", value_parser = ["quick", "full", "drill"])]
    pub level: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    /// Back up the rest when referenced filestore files are missing or damaged (they are
    /// named in the report) instead of failing
    #[arg(long)]
    pub allow_missing_files: bool,
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// The backups in the store, oldest first
    List,
    /// One backup's index, and its manifest when an identity is configured
    Show {
        /// The backup id, as `vigia backup list` shows it
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write vigia.toml, backup.agekey and name.key (with --systemd: the units)
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".",
        conflicts_with = "print"
    )]
    pub dir: PathBuf,
    /// Print the fully commented template (every key) instead of writing files
    #[arg(long)]
    pub print: bool,
    /// Write systemd service and timer units for this config instead: nightly backup then
    /// prune, weekly verify, health every 5 minutes (written, not enabled; never overwrites)
    #[arg(long, conflicts_with = "print")]
    pub systemd: bool,
    /// With --systemd: the Debian package's units (/usr/bin/vigia, /etc/vigia/vigia.toml, the
    /// template's folders), for scripts/package
    #[arg(long, requires = "systemd", hide = true)]
    pub packaged: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check every key and environment, and that secrets can be found
    Check {
        /// Treat warnings (unset variables, missing files, incomplete backup settings) as errors
        #[arg(long)]
        strict: bool,
    },
    /// Print the settings in force for the environment, secrets redacted
    Show,
}

impl Command {
    /// The command's name in the JSON envelope.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Init(_) => "init",
            Self::Completions { .. } => "completions",
            Self::Man { .. } => "man",
            Self::Config(ConfigCommand::Check { .. }) => "config check",
            Self::Config(ConfigCommand::Show) => "config show",
            Self::Demo(_) => "demo",
            Self::Backup(BackupArgs { command: None, .. }) => "backup",
            Self::Backup(BackupArgs {
                command: Some(BackupCommand::List),
                ..
            }) => "backup list",
            Self::Backup(BackupArgs {
                command: Some(BackupCommand::Show { .. }),
                ..
            }) => "backup show",
            Self::Verify(_) => "verify",
            Self::Prune(_) => "prune",
            Self::Restore(RestoreArgs { cleanup: true, .. }) => "restore cleanup",
            Self::Restore(_) => "restore",
            Self::Health(_) => "health",
            Self::Smoke(_) => "smoke",
            Self::Alert(AlertCommand::Test) => "alert test",
            Self::Alert(AlertCommand::Silence { .. }) => "alert silence",
            Self::Alert(AlertCommand::Unsilence) => "alert unsilence",
            Self::Deploy(DeployArgs {
                command: Some(DeployCommand::History),
                ..
            }) => "deploy history",
            Self::Deploy(DeployArgs {
                command: Some(DeployCommand::Lock { .. }),
                ..
            }) => "deploy lock",
            Self::Deploy(DeployArgs {
                command: Some(DeployCommand::Unlock),
                ..
            }) => "deploy unlock",
            Self::Deploy(_) => "deploy",
            Self::Rollback(_) => "rollback",
        }
    }
}
