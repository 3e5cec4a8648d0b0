//! `vigia init`.

use std::fmt::Write as _;

use serde::Serialize;
use vigia_core::config::{TEMPLATE, default_config_path};
use vigia_core::systemd::{SystemdReport, UnitTarget};
use vigia_core::{ConfigSource, Error, InitReport, Result};

use crate::args::{Cli, InitArgs};
use crate::commands::load_config;
use crate::output::Human;

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum InitOutcome {
    Written(InitReport),
    Template { template: &'static str },
    Units(SystemdReport),
}

pub fn run(cli: &Cli, args: &InitArgs) -> Result<InitOutcome> {
    if args.print {
        return Ok(InitOutcome::Template { template: TEMPLATE });
    }
    if args.systemd {
        return units(cli, args).map(InitOutcome::Units);
    }
    vigia_core::init(&args.dir).map(InitOutcome::Written)
}

/// The units for the config in force, run by this very binary; or, for the package, by
/// /usr/bin/vigia with /etc/vigia/vigia.toml, whose folders are the template's.
fn units(cli: &Cli, args: &InitArgs) -> Result<SystemdReport> {
    if args.packaged {
        let config = ConfigSource::from_text(TEMPLATE, Some("/etc/vigia".as_ref()))?.load(None)?;
        return vigia_core::systemd::write_units(&config, &args.dir, &UnitTarget::packaged());
    }
    let config = load_config(cli)?;
    let path = default_config_path(cli.config.as_deref());
    let target = UnitTarget {
        binary: std::env::current_exe()
            .map_err(|e| Error::internal(format!("cannot tell where vigia runs from: {e}")))?,
        config: std::path::absolute(&path).map_err(|e| Error::io("resolve", &path, e))?,
        environment: cli.environment.clone(),
    };
    vigia_core::systemd::write_units(&config, &args.dir, &target)
}

impl Human for InitOutcome {
    fn human(&self) -> String {
        match self {
            Self::Template { template } => (*template).to_owned(),
            Self::Written(r) => format!(
                "Wrote {config}\n      {identity}  (age private key: keep a copy OFF this machine; \
                 without it no backup can be read)\n      {name_key}  (name key)\n\
                 Backups are encrypted to {recipient}.\n\
                 Next: edit [odoo] and [postgres] in {config}, then run\n  \
                 vigia --config {config} config check\n",
                config = r.config.display(),
                identity = r.identity.display(),
                name_key = r.name_key.display(),
                recipient = r.recipient,
            ),
            Self::Units(r) => {
                let mut text = format!("Wrote {} units to {}\n", r.units.len(), r.dir.display());
                for s in &r.schedule {
                    let delay = s
                        .randomized_delay
                        .as_ref()
                        .map(|d| format!(" (+ up to {d})"))
                        .unwrap_or_default();
                    let _ = writeln!(text, "  {}: {}{delay}", s.service, s.on_calendar);
                }
                text.push_str("  vigia-prune.service: after each successful backup\n");
                for note in &r.notes {
                    let _ = writeln!(text, "Note: {note}");
                }
                text.push_str("To use them (as root):\n");
                for command in &r.commands {
                    let _ = writeln!(text, "  {command}");
                }
                text
            }
        }
    }
}

impl vigia_core::Outcome for InitOutcome {}
