//! `vigia config check` and `vigia config show`.

use std::fmt::Write;

use vigia_core::config::{CheckReport, ConfigView, default_config_path};
use vigia_core::{ConfigSource, Error, Result};

use crate::args::Cli;
use crate::output::Human;

fn source(cli: &Cli) -> Result<ConfigSource> {
    ConfigSource::from_file(&default_config_path(cli.config.as_deref()))
}

pub fn check(cli: &Cli, strict: bool) -> Result<CheckReport> {
    source(cli)?.check(cli.environment.as_deref(), strict)
}

pub fn show(cli: &Cli) -> Result<ConfigView> {
    Ok(source(cli)?.load(cli.environment.as_deref())?.view())
}

impl Human for CheckReport {
    fn human(&self) -> String {
        let env = self
            .environment
            .as_deref()
            .unwrap_or("base settings, no environment");
        let mut out = format!("config OK ({env})\n");
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {}", w.message);
        }
        out
    }
}

impl Human for ConfigView {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            let _ = writeln!(out, "# file: {}", file.display());
        }
        let env = self
            .environment
            .as_deref()
            .unwrap_or("(none: base settings)");
        let _ = writeln!(out, "# environment: {env}, production: {}", self.production);
        match toml::to_string(&self.settings) {
            Ok(text) => out.push_str(&text),
            Err(e) => out
                .push_str(&Error::internal(format!("cannot render the settings: {e}")).to_string()),
        }
        out
    }
}
