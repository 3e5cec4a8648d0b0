//! `state-dir/alerts/<env>.json`, read and written under an OS lock on `<env>.lock`, so that
//! overlapping runs (a timer and a hand-run check) count each run once and notify once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigia_core::{Error, ErrorKind, Result};

use super::incidents::AlertState;

/// How long a run waits for another run's notifications to finish.
const LOCK_WAIT: Duration = Duration::from_mins(2);

/// The state, held under its lock until dropped.
#[derive(Debug)]
pub struct Locked {
    path: PathBuf,
    _lock: File,
    pub state: AlertState,
}

impl Locked {
    /// Waits for the lock (blocking: call it off the async threads), then reads the state.
    /// A corrupt file is replaced by an empty state, with a warning: the counts restart.
    pub fn open(dir: &Path, env: &str) -> Result<Self> {
        let lock_path = dir.join(format!("{env}.lock"));
        let lock = vigia_core::disk::lock_exclusive(&lock_path, LOCK_WAIT)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Locked,
                format!(
                    "another health run has held {} for {} s; alerts were not sent",
                    lock_path.display(),
                    LOCK_WAIT.as_secs()
                ),
            )
        })?;
        let path = dir.join(format!("{env}.json"));
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "the alert state {} is corrupt ({e}); it is rebuilt, so incidents count \
                     from this run",
                    path.display()
                );
                AlertState::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AlertState::default(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Ok(Self {
            path,
            _lock: lock,
            state,
        })
    }

    pub fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| Error::internal(format!("cannot write the alert state: {e}")))?;
        vigia_core::disk::write_durably(&self.path, &bytes)
            .map_err(|e| Error::io("write", &self.path, e))
    }
}
