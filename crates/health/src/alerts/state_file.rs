//! `state-dir/alerts/<env>.json`, read and written under an OS lock on `<env>.lock`, so that
//! overlapping runs (a timer and a hand-run check) count each run once and notify once.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let lock_path = dir.join(format!("{env}.lock"));
        // A link planted at the lock's name is refused, not followed.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::new(
                        ErrorKind::Locked,
                        format!(
                            "another health run has held {} for {} s; alerts were not sent",
                            lock_path.display(),
                            LOCK_WAIT.as_secs()
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("lock", &lock_path, e));
                }
            }
        }
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
