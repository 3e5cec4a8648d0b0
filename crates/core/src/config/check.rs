//! `vigia config check`: the config loads for every environment, and its secrets can be found.

use serde::Serialize;

use super::secret::Probe;
use super::validate::secrets_mut;
use super::{Config, ConfigSource};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The environment checked in depth (`--env`, else `default-env`), or null for the base.
    pub environment: Option<String>,
    pub warnings: Vec<ConfigWarning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigWarning {
    pub key: String,
    pub message: String,
}

impl ConfigSource {
    /// Loads `env` and every other environment (a typo in any of them is an error), then probes
    /// the secrets of `env`. With `strict`, what would be a warning is an error.
    pub fn check(&self, env: Option<&str>, strict: bool) -> Result<CheckReport> {
        let config = self.load(env)?;
        for name in self.environments()? {
            self.load(Some(&name))?;
        }
        let warnings = warnings(&config).map_err(|e| match self.file() {
            Some(file) => e.with_file(file),
            None => e,
        })?;
        if strict && let Some(w) = warnings.first() {
            let mut err =
                Error::config(format!("{} (an error with --strict)", w.message)).with_key(&w.key);
            if let Some(file) = self.file() {
                err = err.with_file(file);
            }
            return Err(err);
        }
        Ok(CheckReport {
            environment: config.environment,
            warnings,
        })
    }
}

fn warnings(config: &Config) -> Result<Vec<ConfigWarning>> {
    let mut out = Vec::new();
    let mut settings = config.settings().clone();
    for (key, secret) in secrets_mut(&mut settings) {
        match secret.probe() {
            Probe::Ok => {}
            Probe::Unavailable(message) => out.push(ConfigWarning {
                key: key.to_owned(),
                message: format!("secret `{key}`: {message}"),
            }),
            Probe::Invalid(message) => {
                return Err(Error::config(format!("secret `{key}`: {message}")).with_key(key));
            }
        }
    }
    if let Err(e) = config.backup_requirements() {
        out.push(ConfigWarning {
            key: e.context().key.clone().unwrap_or_default(),
            message: format!(
                "{}; backup, verify, prune and restore will fail",
                e.message()
            ),
        });
    }
    Ok(out)
}

impl crate::envelope::Outcome for CheckReport {}
