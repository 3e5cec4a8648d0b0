//! The alert silence: `state-dir/alerts/silence-<env>.json`. While one is in force, health
//! runs still run their checks and keep their alert state, but send nothing. It lives here,
//! below restore and deploy, so that a swap can silence alerts without depending on
//! vigia-health; a silence always ends by itself, so a killed run cannot silence for ever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigia_core::{Config, Error, Result};

/// The longest silence: alerts cannot be forgotten for ever, whatever the file says.
pub const LONGEST: Duration = Duration::from_hours(30 * 24);

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

/// The silence file of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceFile {
    path: PathBuf,
}

impl SilenceFile {
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(Self {
            path: alerts_dir(config).join(format!("silence-{}.json", env_label(config)?)),
        })
    }

    /// The silence in force, if any. An expired silence is none; a file that cannot be read
    /// or is not a silence (or ends further away than [`LONGEST`]) is none with a warning:
    /// a broken file must not hide alerts.
    pub fn current(&self) -> Option<Silence> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(
                    "cannot read {} ({e}): alerts are not silenced",
                    self.path.display()
                );
                return None;
            }
        };
        let now = jiff::Timestamp::now();
        match serde_json::from_slice::<Silence>(&bytes) {
            Ok(s) if s.until <= now => None,
            Ok(s) if from_now(LONGEST).is_ok_and(|limit| s.until <= limit) => Some(s),
            Ok(_) => {
                tracing::warn!(
                    "{} silences for longer than the longest silence: alerts are not silenced",
                    self.path.display()
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "{} is not a silence ({e}): alerts are not silenced",
                    self.path.display()
                );
                None
            }
        }
    }

    /// Silences alerts for `length` from now, replacing any silence in force.
    pub fn set(&self, length: Duration, reason: &str, by: &str) -> Result<Silence> {
        let silence = Silence {
            until: from_now(length)?,
            reason: reason.to_owned(),
            by: by.to_owned(),
        };
        write(&self.path, &silence)?;
        Ok(silence)
    }

    /// Ends the silence in force; false when there was no file.
    pub fn clear(&self) -> Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &self.path, e)),
        }
    }
}

/// A silence a run holds while it takes the stack down on purpose (a restore swap, a deploy).
/// It never shortens an operator's silence: a longer one is left alone, a shorter one is
/// put back when the run ends.
#[derive(Debug)]
pub struct RunSilence {
    file: SilenceFile,
    mine: Option<Silence>,
    replaced: Option<Silence>,
}

impl RunSilence {
    /// Silences for at most `length`, unless a longer silence is already in force.
    pub fn begin(file: &SilenceFile, length: Duration, reason: &str, by: &str) -> Result<Self> {
        let ends = from_now(length)?;
        let (mine, replaced) = match file.current() {
            Some(s) if s.until >= ends => (None, None),
            other => (Some(file.set(length, reason, by)?), other),
        };
        Ok(Self {
            file: file.clone(),
            mine,
            replaced,
        })
    }

    /// Ends the silence if it is still the one this run set, putting back the one it
    /// replaced while that one still runs.
    pub fn end(self) -> Result<()> {
        let Some(mine) = &self.mine else {
            return Ok(());
        };
        if self.file.current().as_ref() != Some(mine) {
            return Ok(());
        }
        match self.replaced.filter(|r| r.until > jiff::Timestamp::now()) {
            Some(replaced) => write(&self.file.path, &replaced),
            None => self.file.clear().map(|_| ()),
        }
    }
}

fn from_now(length: Duration) -> Result<jiff::Timestamp> {
    jiff::SignedDuration::try_from(length)
        .map_err(too_long)
        .and_then(|d| jiff::Timestamp::now().checked_add(d).map_err(too_long))
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
        let (staging, base) = (
            SilenceFile::from_config(&staging).unwrap(),
            SilenceFile::from_config(&base).unwrap(),
        );
        assert_eq!(staging.current(), None);
        let s = staging
            .set(Duration::from_hours(1), "upgrade", "ana@erp")
            .unwrap();
        assert_eq!(staging.current(), Some(s));
        assert_eq!(base.current(), None, "another environment");
        assert!(dir.path().join("alerts/silence-staging.json").exists());
        base.set(Duration::ZERO, "over", "ana@erp").unwrap();
        assert_eq!(base.current(), None, "expired");
        assert!(staging.clear().unwrap());
        assert!(!staging.clear().unwrap());
    }

    #[test]
    fn a_broken_file_silences_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = SilenceFile::from_config(&config(dir.path(), None)).unwrap();
        std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
        std::fs::write(dir.path().join("alerts/silence-default.json"), b"{nope").unwrap();
        assert_eq!(c.current(), None);
        c.set(LONGEST + Duration::from_hours(1), "for ever", "x")
            .unwrap();
        assert_eq!(c.current(), None, "longer than the longest silence");
    }

    #[test]
    fn a_run_never_shortens_an_operators_silence_and_ends_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let c = SilenceFile::from_config(&config(dir.path(), None)).unwrap();
        let long = c
            .set(Duration::from_hours(2), "maintenance", "ana@erp")
            .unwrap();
        let run = RunSilence::begin(&c, Duration::from_mins(10), "restore", "vigia").unwrap();
        assert_eq!(c.current(), Some(long.clone()));
        run.end().unwrap();
        assert_eq!(c.current(), Some(long), "the operator's stays");
        let short = c.set(Duration::from_mins(5), "reboot", "ana@erp").unwrap();
        let run = RunSilence::begin(&c, Duration::from_mins(10), "restore", "vigia").unwrap();
        assert_eq!(c.current().unwrap().reason, "restore");
        run.end().unwrap();
        assert_eq!(c.current(), Some(short), "the shorter one is put back");
        c.clear().unwrap();
        let run = RunSilence::begin(&c, Duration::from_mins(10), "restore", "vigia").unwrap();
        run.end().unwrap();
        assert_eq!(c.current(), None);
    }

    #[test]
    fn an_environment_name_that_is_not_a_file_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), Some("../x"));
        assert!(SilenceFile::from_config(&c).is_err());
    }
}
