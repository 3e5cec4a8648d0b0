//! The store lock: one backup, prune or restore at a time per store. `locks/store.json` names
//! the holder and carries a heartbeat; a local store is also locked with an OS file lock,
//! which the kernel drops when its holder dies.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vigia_core::ports::store::{ObjectStore, StoreError};
use vigia_core::{Error, ErrorKind, Result};

use crate::format::{LOCK_KEY, NameKey};

const HEARTBEAT: Duration = Duration::from_secs(30);
const STALE_AFTER: Duration = Duration::from_mins(5);
const RETRY: Duration = Duration::from_millis(500);
/// Time for a racing writer's record to land before ours is read back.
const SETTLE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// What holds it: `backup`, `prune`, `restore`.
    pub owner: String,
    pub pid: u32,
    pub host: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// Tells two holders with the same pid and host apart.
    pub nonce: String,
}

impl LockRecord {
    fn describe(&self) -> String {
        format!(
            "{} (pid {} on host {} since {}, last heartbeat {})",
            self.owner, self.pid, self.host, self.started_at, self.heartbeat_at
        )
    }

    /// Dead: no heartbeat for five minutes, or its process is gone from this host.
    fn is_stale(&self, now: Timestamp) -> bool {
        let silent = now.duration_since(self.heartbeat_at).unsigned_abs() > STALE_AFTER;
        silent || self.is_gone()
    }

    fn is_gone(&self) -> bool {
        self.host == hostname() && !vigia_core::process::is_running(self.pid)
    }
}

/// A held lock; call `release`. If the process dies instead, the next run finds the record
/// stale and takes it over.
#[derive(Debug)]
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    record: LockRecord,
    heartbeat: tokio::task::JoinHandle<()>,
    _os_lock: Option<File>,
    sole_writer: bool,
}

impl StoreLock {
    /// Takes the lock for `owner`, waiting up to `wait` while another live holder has it.
    /// `os_lock_dir` is the local store's directory (None for S3).
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        name_key: &NameKey,
        owner: &str,
        wait: Duration,
        os_lock_dir: Option<&Path>,
    ) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + wait;
        let now = Timestamp::now();
        let record = LockRecord {
            owner: owner.to_owned(),
            pid: std::process::id(),
            host: hostname(),
            started_at: now,
            heartbeat_at: now,
            nonce: hex::encode(vigia_core::random_bytes::<8>()),
        };
        loop {
            let os_lock = match os_lock_dir.map(try_os_lock).transpose()? {
                // Another process on this host holds the directory.
                Some(None) => {
                    let holder = read_record(store.as_ref(), name_key).await?;
                    wait_or_fail(deadline, holder.as_ref()).await?;
                    continue;
                }
                Some(Some(file)) => Some(file),
                None => None,
            };
            let sole_writer = match read_record(store.as_ref(), name_key).await? {
                Some(holder) if !holder.is_stale(Timestamp::now()) => {
                    drop(os_lock);
                    wait_or_fail(deadline, Some(&holder)).await?;
                    continue;
                }
                Some(stale) => {
                    tracing::warn!(
                        "taking over a stale store lock held by {}",
                        stale.describe()
                    );
                    stale.is_gone()
                }
                None => true,
            };
            write_record(store.as_ref(), name_key, &record).await?;
            tokio::time::sleep(SETTLE).await;
            match read_record(store.as_ref(), name_key).await? {
                Some(current) if current.nonce == record.nonce => {
                    let heartbeat =
                        tokio::spawn(beat(Arc::clone(&store), name_key.clone(), record.clone()));
                    return Ok(Self {
                        store,
                        record,
                        heartbeat,
                        _os_lock: os_lock,
                        sole_writer,
                    });
                }
                other => {
                    drop(os_lock);
                    wait_or_fail(deadline, other.as_ref()).await?;
                }
            }
        }
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// No earlier holder can still be writing: the lock was free, or its holder's process is
    /// gone from this host. (A holder that only went silent may be alive on another host.)
    /// Only then are a dead run's leftovers swept at once.
    pub fn sole_writer(&self) -> bool {
        self.sole_writer
    }

    /// Stops the heartbeat and removes the record if it is still ours.
    pub async fn release(self, name_key: &NameKey) -> Result<()> {
        if let Some(current) = read_record(self.store.as_ref(), name_key).await?
            && current.nonce == self.record.nonce
        {
            self.store.delete(LOCK_KEY).await?;
        }
        Ok(())
    }
}

impl Drop for StoreLock {
    /// A lock dropped without `release` (a dropped future) stops beating, so it goes stale.
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn beat(store: Arc<dyn ObjectStore>, name_key: NameKey, mut record: LockRecord) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        record.heartbeat_at = Timestamp::now();
        if let Err(e) = write_record(store.as_ref(), &name_key, &record).await {
            tracing::warn!("cannot refresh the store lock's heartbeat: {e}");
        }
    }
}

async fn wait_or_fail(deadline: tokio::time::Instant, holder: Option<&LockRecord>) -> Result<()> {
    if tokio::time::Instant::now() >= deadline {
        let who = holder.map_or_else(
            || "another run on this host".to_owned(),
            LockRecord::describe,
        );
        return Err(Error::new(
            ErrorKind::Locked,
            format!(
                "the backup store is locked by {who}; try again later, or set [backup] lock-wait to wait for it"
            ),
        ));
    }
    tokio::time::sleep(RETRY).await;
    Ok(())
}

async fn read_record(store: &dyn ObjectStore, name_key: &NameKey) -> Result<Option<LockRecord>> {
    match store.get_bytes(LOCK_KEY).await {
        Ok(bytes) => match name_key.open(&bytes, LOCK_KEY) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                // An unreadable record protects nothing: treat it as stale.
                tracing::warn!("ignoring a damaged store lock: {e}");
                Ok(Some(LockRecord {
                    owner: "unknown".into(),
                    pid: 0,
                    host: String::new(),
                    started_at: Timestamp::UNIX_EPOCH,
                    heartbeat_at: Timestamp::UNIX_EPOCH,
                    nonce: String::new(),
                }))
            }
        },
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn write_record(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    record: &LockRecord,
) -> Result<()> {
    store
        .put_bytes(LOCK_KEY, name_key.seal(record)?.into())
        .await?;
    Ok(())
}

/// An exclusive lock on `<dir>/.lock`, or None when another process holds it.
fn try_os_lock(dir: &Path) -> Result<Option<File>> {
    let path: PathBuf = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

/// The local store's directory, which is also locked with an OS lock; None for S3.
pub fn os_lock_dir(config: &vigia_core::Config) -> Option<PathBuf> {
    match config.backup.store {
        Some(vigia_core::config::StoreKind::Local) => config.backup.path.clone(),
        _ => None,
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".to_owned(), |h| h.trim().to_owned())
}
