//! The alert silence: `state-dir/alerts/silence-<env>.json`. While one is in force, health
//! runs still run their checks and keep their alert state, but send nothing. It lives here,
//! below restore and deploy, so that a swap can silence alerts without depending on
//! vigia-health; a silence always ends by itself, so a killed run cannot silence for ever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigia_core::{Config, Error, Result};

/// A silence in force: the JSON of `silenced` in a health report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    pub until: jiff::Timestamp,
    pub reason: String,
    /// Who set it: `user@host`, or `vigia restore <id>`.
    pub by: String,
}

impl vigia_core::Outcome for Silence {}

/// `state-dir/alerts`: the alert state and the silence, per environment.
pub fn alerts_dir(config: &Config) -> PathBuf {
    config.state_dir.join("alerts")
}

/// The environment's name in the alert files: `default` for the base alone.
pub fn env_label(config: &Config) -> Result<&str> {
    let name = config.environment.as_deref().unwrap_or("default");
    let safe = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if safe && !name.is_empty() {
        Ok(name)
    } else {
        Err(Error::config(format!(
            "the environment `{name}` cannot name an alert file: rename it with letters, digits, \
             '.', '_' or '-'"
        )))
    }
}

fn path(config: &Config) -> Result<PathBuf> {
    Ok(alerts_dir(config).join(format!("silence-{}.json", env_label(config)?)))
}

/// The silence in force, if any. An expired silence is none; an unreadable file is none
/// with a warning (a broken file must not hide alerts).
pub fn current(config: &Config) -> Result<Option<Silence>> {
    let path = path(config)?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    match serde_json::from_slice::<Silence>(&bytes) {
        Ok(s) if s.until > jiff::Timestamp::now() => Ok(Some(s)),
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(
                "{} is not a silence ({e}): alerts are not silenced",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Silences alerts for `length` from now, replacing any silence in force.
pub fn set(config: &Config, length: Duration, reason: &str, by: &str) -> Result<Silence> {
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(length).map_err(too_long)?)
        .map_err(too_long)?;
    let silence = Silence {
        until,
        reason: reason.to_owned(),
        by: by.to_owned(),
    };
    write(&path(config)?, &silence)?;
    Ok(silence)
}

/// Ends the silence in force; false when there was none.
pub fn clear(config: &Config) -> Result<bool> {
    let path = path(config)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

/// A silence a run holds while it takes the stack down on purpose (a restore swap, a deploy).
/// It never shortens an operator's longer silence, and ends only its own.
#[derive(Debug)]
pub struct RunSilence {
    config: Config,
    mine: Option<Silence>,
}

impl RunSilence {
    /// Silences for at most `length`, unless a longer silence is already in force.
    pub fn begin(config: &Config, length: Duration, reason: &str, by: &str) -> Result<Self> {
        let ends = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(length).map_err(too_long)?)
            .map_err(too_long)?;
        let mine = match current(config)? {
            Some(s) if s.until >= ends => None,
            _ => Some(set(config, length, reason, by)?),
        };
        Ok(Self {
            config: config.clone(),
            mine,
        })
    }

    /// Ends the silence if it is still the one this run set.
    pub fn end(self) -> Result<()> {
        match (&self.mine, current(&self.config)?) {
            (Some(mine), Some(now)) if *mine == now => clear(&self.config).map(|_| ()),
            _ => Ok(()),
        }
    }
}

fn write(path: &Path, silence: &Silence) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let bytes = serde_json::to_vec_pretty(silence).map_err(|e| Error::internal(e.to_string()))?;
    vigia_core::disk::write_durably(path, &bytes).map_err(|e| Error::io("write", path, e))
}

fn too_long(e: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("the silence is too long: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, env: Option<&str>) -> Config {
        let text = format!(
            "state-dir = {:?}\n[odoo]\ndatabase = \"odoo\"\n[environments.staging]\n[environments.\"../x\"]\n",
            dir.display().to_string()
        );
        vigia_core::config::ConfigSource::from_text(text, None)
            .unwrap()
            .load(env)
            .unwrap()
    }

    #[test]
    fn a_silence_is_per_environment_and_ends_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let staging = config(dir.path(), Some("staging"));
        let base = config(dir.path(), None);
        assert_eq!(current(&staging).unwrap(), None);
        let s = set(&staging, Duration::from_hours(1), "upgrade", "ana@erp").unwrap();
        assert_eq!(current(&staging).unwrap(), Some(s));
        assert_eq!(current(&base).unwrap(), None, "another environment");
        assert!(dir.path().join("alerts/silence-staging.json").exists());
        set(&base, Duration::ZERO, "over", "ana@erp").unwrap();
        assert_eq!(current(&base).unwrap(), None, "expired");
        assert!(clear(&staging).unwrap());
        assert!(!clear(&staging).unwrap());
    }

    #[test]
    fn a_broken_file_silences_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), None);
        std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
        std::fs::write(dir.path().join("alerts/silence-default.json"), b"{nope").unwrap();
        assert_eq!(current(&c).unwrap(), None);
    }

    #[test]
    fn a_run_never_shortens_an_operators_silence_and_ends_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), None);
        let long = set(&c, Duration::from_hours(2), "maintenance", "ana@erp").unwrap();
        let run = RunSilence::begin(&c, Duration::from_mins(10), "restore", "vigia").unwrap();
        assert_eq!(current(&c).unwrap(), Some(long.clone()));
        run.end().unwrap();
        assert_eq!(current(&c).unwrap(), Some(long), "the operator's stays");
        clear(&c).unwrap();
        let run = RunSilence::begin(&c, Duration::from_mins(10), "restore", "vigia").unwrap();
        assert_eq!(current(&c).unwrap().unwrap().reason, "restore");
        run.end().unwrap();
        assert_eq!(current(&c).unwrap(), None);
    }

    #[test]
    fn an_environment_name_that_is_not_a_file_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), Some("../x"));
        assert!(current(&c).is_err());
    }
}
