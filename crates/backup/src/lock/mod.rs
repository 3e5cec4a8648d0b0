//! The store lock: one backup, prune or restore at a time per store. `locks/store.json` names
//! the holder. It is created with a conditional write (`If-None-Match: *`), renewed and taken
//! over with `If-Match` on its ETag, so on a store whose conditional writes are atomic (AWS
//! S3, moto, the local store) two runs never both hold it. A local store is also locked with
//! an OS file lock, which the kernel drops when its holder dies.

mod held;
mod readers;
mod record;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Mutex;
use tokio::time::Instant;
use vigia_core::ports::store::{ObjectStore, WriteCondition};
use vigia_core::{Error, ErrorKind, Result};

use self::held::{Held, Shared};
use self::record::{Found, Verdict};
use crate::format::{LOCK_KEY, NameKey};

pub use self::readers::ReadLock;
pub use self::record::LockRecord;

const HEARTBEAT: Duration = Duration::from_secs(30);
/// A record the store has not seen rewritten for this long belongs to a dead or cut-off run.
const STALE_AFTER: Duration = Duration::from_mins(5);
const RETRY: Duration = Duration::from_millis(500);

/// What a run asks of the lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// What holds it: `backup`, `prune`, `restore`.
    pub owner: String,
    /// How long to wait while another live run holds it (`[backup] lock-wait`).
    pub wait: Duration,
    /// The local store's directory, also locked with an OS lock (None for S3).
    pub os_lock_dir: Option<PathBuf>,
    /// How often the record is renewed.
    pub heartbeat: Duration,
}

impl LockRequest {
    pub fn new(owner: &str, wait: Duration, os_lock_dir: Option<&Path>) -> Self {
        Self {
            owner: owner.to_owned(),
            wait,
            os_lock_dir: os_lock_dir.map(Path::to_path_buf),
            heartbeat: HEARTBEAT,
        }
    }
}

/// A held lock; call `ensure_held` before each destructive step and `release` at the end. If
/// the process dies instead, the next run finds the record stale and takes it over.
#[derive(Debug)]
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    name_key: NameKey,
    record: LockRecord,
    state: Shared,
    heartbeat: tokio::task::JoinHandle<()>,
    _os_lock: Option<File>,
    sole_writer: bool,
    conditions_honoured: bool,
}

impl StoreLock {
    /// Takes the lock, waiting up to `request.wait` while another live holder has it.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        name_key: &NameKey,
        request: &LockRequest,
    ) -> Result<Self> {
        let deadline = Instant::now() + request.wait;
        let record = LockRecord::for_this_process(&request.owner);
        let sealed = Bytes::from(name_key.seal(&record)?);
        loop {
            let os_lock = match request
                .os_lock_dir
                .as_deref()
                .map(try_os_lock)
                .transpose()?
            {
                // Another process on this host holds the directory.
                Some(None) => {
                    let holder = record::read(store.as_ref(), name_key).await?;
                    wait_or_fail(deadline, holder.and_then(|f| f.record).as_ref()).await?;
                    continue;
                }
                Some(Some(file)) => Some(file),
                None => None,
            };
            let created = store
                .put_bytes_if(LOCK_KEY, sealed.clone(), WriteCondition::Absent)
                .await;
            let (written, sole_writer) = match created {
                Ok(meta) => (meta, true),
                Err(e) if e.is_condition_failed() => {
                    match take_over(store.as_ref(), name_key, &sealed).await? {
                        Attempt::Won(meta, gone) => (meta, gone),
                        Attempt::Vanished => continue,
                        Attempt::Lost(holder) => {
                            drop(os_lock);
                            wait_or_fail(deadline, holder.as_ref()).await?;
                            continue;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            };
            let mut etag = held::etag_after_write(store.as_ref(), written).await?;
            let conditions_honoured = match probe_conditions(store.as_ref(), &sealed).await? {
                None => true,
                Some(rewritten) => {
                    etag = held::etag_after_write(store.as_ref(), rewritten).await?;
                    false
                }
            };
            let state: Shared = Arc::new(Mutex::new(Held {
                etag,
                renewed: Instant::now(),
                lost: None,
            }));
            let heartbeat = tokio::spawn(held::beat(
                Arc::clone(&store),
                name_key.clone(),
                record.clone(),
                Arc::clone(&state),
                request.heartbeat,
            ));
            return Ok(Self {
                store,
                name_key: name_key.clone(),
                record,
                state,
                heartbeat,
                _os_lock: os_lock,
                sole_writer,
                conditions_honoured,
            });
        }
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// No earlier holder can still be writing: the lock was free, or its holder's process is
    /// provably gone from this machine. (A holder that only went silent may be alive on
    /// another host.) Only then are a dead run's leftovers swept at once.
    pub fn sole_writer(&self) -> bool {
        self.sole_writer
    }

    /// Whether the store refused a conditional create of the existing lock, as it must. When
    /// it did not, the lock was still taken but is not exclusive there (a warning says so).
    pub fn conditions_honoured(&self) -> bool {
        self.conditions_honoured
    }

    /// Waits up to `wait` while a verify reads the store, then fails naming it: call it
    /// before a prune deletes anything.
    pub async fn wait_for_readers(&self, wait: Duration) -> Result<()> {
        readers::wait_for_readers(self.store.as_ref(), &self.name_key, wait).await
    }

    /// Fails (ErrorKind::Locked) when the lock is no longer this run's: call it right before
    /// each step that deletes or commits something in the store or swaps a database.
    pub async fn ensure_held(&self) -> Result<()> {
        held::ensure_held(
            self.store.as_ref(),
            &self.name_key,
            &self.state,
            STALE_AFTER,
        )
        .await
    }

    /// Stops the heartbeat and removes the record if it is still ours.
    pub async fn release(self) -> Result<()> {
        // The heartbeat renews under the state's lock: taking it waits out a renewal in
        // flight, so the ETag compared below is the last one written.
        let held = self.state.lock().await;
        self.heartbeat.abort();
        if held.lost.is_some() {
            return Ok(());
        }
        match self.store.get_bytes_meta(LOCK_KEY).await {
            Ok((_, meta)) if meta.etag.as_deref() == Some(held.etag.as_str()) => {
                self.store.delete(LOCK_KEY).await?;
            }
            Ok(_) => tracing::warn!("the store lock was taken over before it was released"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
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

enum Attempt {
    /// Taken over: the write's answer, and whether the holder's process is provably gone.
    Won(vigia_core::ports::store::ObjectMeta, bool),
    /// The record disappeared between the create and the read: try again at once.
    Vanished,
    /// Held by a live run, or taken over by another run first.
    Lost(Option<LockRecord>),
}

/// Someone's record is there: take it over if it is stale, naming its ETag so that only one
/// of several runs judging it stale at once wins.
async fn take_over(store: &dyn ObjectStore, name_key: &NameKey, sealed: &Bytes) -> Result<Attempt> {
    let Some(found) = record::read(store, name_key).await? else {
        return Ok(Attempt::Vanished);
    };
    let gone = match record::judge(store, &found, STALE_AFTER).await? {
        Verdict::Live => return Ok(Attempt::Lost(found.record)),
        Verdict::Stale { gone } => gone,
    };
    let Found { record, etag, .. } = found;
    let Some(etag) = etag else {
        return Err(Error::new(
            ErrorKind::Storage,
            format!(
                "{} gives no ETag for {LOCK_KEY}: the stale lock cannot be taken over safely; \
                 remove it by hand once no vigia runs against this store",
                store.location()
            ),
        ));
    };
    let described = record
        .as_ref()
        .map_or_else(|| "an unreadable record".to_owned(), LockRecord::describe);
    match store
        .put_bytes_if(LOCK_KEY, sealed.clone(), WriteCondition::Matches(etag))
        .await
    {
        Ok(meta) => {
            tracing::warn!("took over a stale store lock held by {described}");
            Ok(Attempt::Won(meta, gone))
        }
        Err(e) if e.is_condition_failed() => Ok(Attempt::Lost(record)),
        Err(e) => Err(e.into()),
    }
}

/// Tries to create the lock again, which a store honouring `If-None-Match` refuses. Some
/// S3-compatible servers ignore the header and overwrite: then the lock cannot be exclusive
/// there, and the operator is told. Returns the write's answer when it was not refused.
async fn probe_conditions(
    store: &dyn ObjectStore,
    sealed: &Bytes,
) -> Result<Option<vigia_core::ports::store::ObjectMeta>> {
    match store
        .put_bytes_if(LOCK_KEY, sealed.clone(), WriteCondition::Absent)
        .await
    {
        Err(e) if e.is_condition_failed() => Ok(None),
        Err(e) => Err(e.into()),
        Ok(meta) => {
            tracing::warn!(
                "{} ignores conditional writes (If-None-Match): the store lock is not exclusive \
                 there; make sure only one vigia runs against this store at a time",
                store.location()
            );
            Ok(Some(meta))
        }
    }
}

async fn wait_or_fail(deadline: Instant, holder: Option<&LockRecord>) -> Result<()> {
    if Instant::now() >= deadline {
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
