//! The store lock: one backup, prune or restore at a time per store. `locks/store.json` names
//! the holder. It is created with a conditional write (`If-None-Match: *`), renewed and taken
//! over with `If-Match` on its ETag, so on a store whose conditional writes are atomic (AWS
//! S3, moto, the local store) two runs never both hold it. A local store is also locked with
//! an OS file lock, which the kernel drops when its holder dies.

mod hold;
mod readers;
mod record;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use vigia_core::ports::store::{ObjectMeta, ObjectStore, WriteCondition};
use vigia_core::{Error, ErrorKind, Result};

use self::hold::Hold;
use self::record::{Found, StoreClock, Verdict};
use crate::format::{LOCK_KEY, NameKey};

pub use self::readers::ReadLock;
pub use self::record::{LockRecord, sweep_clock_probes};

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
    hold: Hold,
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
        let mut clock = StoreClock::default();
        loop {
            let os_lock = match request
                .os_lock_dir
                .as_deref()
                .map(try_os_lock)
                .transpose()?
            {
                // Another process on this host holds the directory.
                Some(None) => {
                    let holder = record::read(store.as_ref(), name_key, LOCK_KEY).await?;
                    let who = holder_text(holder.as_ref())
                        .or_else(|| Some("another run on this host".to_owned()));
                    wait_or_fail(deadline, who).await?;
                    continue;
                }
                Some(Some(file)) => Some(file),
                None => None,
            };
            let attempt = attempt(store.as_ref(), name_key, &record, &sealed, &mut clock).await?;
            let (written, gone) = match attempt {
                Attempt::Won(meta, gone) => (meta, gone),
                Attempt::Lost(holder) => {
                    drop(os_lock);
                    wait_or_fail(deadline, holder.as_ref().map(LockRecord::describe)).await?;
                    continue;
                }
            };
            let won = async {
                let etag = hold::etag_after_write(store.as_ref(), LOCK_KEY, written).await?;
                probe_conditions(store.as_ref(), &sealed, etag).await
            }
            .await;
            let (etag, conditions_honoured) = match won {
                Ok(won) => won,
                Err(e) => {
                    // Do not leave a record no heartbeat renews: it would block every run for
                    // the stale time.
                    if let Ok(Some(found)) = record::read(store.as_ref(), name_key, LOCK_KEY).await
                        && found.is_ours(&record)
                    {
                        let _ = store.delete(LOCK_KEY).await;
                    }
                    return Err(e);
                }
            };
            let hold = Hold::start(
                store,
                name_key,
                (LOCK_KEY, "lock"),
                record,
                etag,
                request.heartbeat,
            );
            return Ok(Self {
                hold,
                _os_lock: os_lock,
                // On a store that ignores the conditions, another run may hold it too.
                sole_writer: gone && conditions_honoured,
                conditions_honoured,
            });
        }
    }

    pub fn record(&self) -> &LockRecord {
        self.hold.record()
    }

    /// No earlier holder can still be writing: the lock was free, or its holder's process is
    /// provably gone from this machine. (A holder that only went silent may be alive on
    /// another host.) Only then are a dead run's files swept at once.
    pub fn sole_writer(&self) -> bool {
        self.sole_writer
    }

    /// Whether the store refused conditional writes whose condition was false, as it must.
    /// When it did not, the lock was still taken but is not exclusive there (a warning says
    /// so).
    pub fn conditions_honoured(&self) -> bool {
        self.conditions_honoured
    }

    /// Waits up to `wait` while a verify reads the store, then fails naming it: call it
    /// before a prune deletes anything.
    pub async fn wait_for_readers(&self, wait: Duration) -> Result<()> {
        let (store, name_key) = self.hold.store_and_key();
        readers::wait_for_readers(store, name_key, wait).await
    }

    /// Fails (ErrorKind::Locked) when the lock is no longer this run's: call it right before
    /// each step that deletes or commits something in the store or swaps a database.
    pub async fn ensure_held(&self) -> Result<()> {
        self.hold.ensure_held().await
    }

    /// Stops the heartbeat and removes the record if it is still ours.
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}

enum Attempt {
    /// Held: the write's answer, and whether no earlier holder can still write (the lock was
    /// free, or its holder's process is provably gone).
    Won(ObjectMeta, bool),
    /// Held by a live run (None: a record that cannot be read or vanished meanwhile).
    Lost(Option<LockRecord>),
}

/// One try: create the record if there is none, else take it over if it is stale, naming its
/// ETag so that only one of several runs judging it stale at once wins. The record is read
/// first: on a store that ignores the conditions, a blind create would overwrite a live one.
async fn attempt(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    mine: &LockRecord,
    sealed: &Bytes,
    clock: &mut StoreClock,
) -> Result<Attempt> {
    let (condition, gone, holder) = match record::read(store, name_key, LOCK_KEY).await? {
        None => (WriteCondition::Absent, true, None),
        Some(found) => {
            let gone = match record::judge(store, clock, &found, STALE_AFTER).await? {
                Verdict::Live => return Ok(Attempt::Lost(found.record)),
                Verdict::Stale { gone } => gone,
            };
            let Some(etag) = found.etag.clone() else {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "{} gives no ETag for {LOCK_KEY}: the stale lock cannot be taken over \
                         safely; remove it by hand once no vigia runs against this store",
                        store.location()
                    ),
                ));
            };
            (WriteCondition::Matches(etag), gone, Some(found.describe()))
        }
    };
    match store
        .put_bytes_if(LOCK_KEY, sealed.clone(), condition)
        .await
    {
        Ok(meta) => {
            if let Some(holder) = holder {
                tracing::warn!("took over a stale store lock held by {holder}");
            }
            Ok(Attempt::Won(meta, gone))
        }
        Err(e) if e.is_condition_failed() => {
            // Another run was faster, or our own write landed and its answer was lost (the
            // retry then finds the condition false): the nonce tells.
            match record::read(store, name_key, LOCK_KEY).await? {
                Some(found) if found.is_ours(mine) => {
                    let meta = ObjectMeta {
                        key: LOCK_KEY.to_owned(),
                        size_bytes: sealed.len() as u64,
                        modified: found.modified,
                        etag: found.etag,
                    };
                    Ok(Attempt::Won(meta, gone))
                }
                Some(found) => Ok(Attempt::Lost(found.record)),
                None => Ok(Attempt::Lost(None)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes whose condition is false, which a store honouring conditional writes refuses: a
/// create of the existing lock, and a renewal naming an ETag it never had. Some S3-compatible
/// servers ignore the headers and overwrite: then the lock cannot be exclusive there, and the
/// operator is told. Returns the record's ETag and whether both were refused.
async fn probe_conditions(
    store: &dyn ObjectStore,
    sealed: &Bytes,
    etag: String,
) -> Result<(String, bool)> {
    let bogus = format!(
        "\"vigia-probe-{}\"",
        hex::encode(vigia_core::random_bytes::<8>())
    );
    let mut last = None;
    for condition in [WriteCondition::Absent, WriteCondition::Matches(bogus)] {
        match store
            .put_bytes_if(LOCK_KEY, sealed.clone(), condition)
            .await
        {
            Err(e) if e.is_condition_failed() => {}
            Err(e) => return Err(e.into()),
            Ok(meta) => last = Some(meta),
        }
    }
    let Some(rewritten) = last else {
        return Ok((etag, true));
    };
    tracing::warn!(
        "{} ignores conditional writes (If-None-Match / If-Match): the store lock is not \
         exclusive there; make sure only one vigia runs against this store at a time",
        store.location()
    );
    let etag = hold::etag_after_write(store, LOCK_KEY, rewritten).await?;
    Ok((etag, false))
}

fn holder_text(holder: Option<&Found>) -> Option<String> {
    holder.map(Found::describe)
}

/// Sleeps before the next try, or fails naming `who` holds the lock once the wait is over.
async fn wait_or_fail(deadline: Instant, who: Option<String>) -> Result<()> {
    if Instant::now() >= deadline {
        let who = who.unwrap_or_else(|| "another run (its record cannot be read)".to_owned());
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
    vigia_core::disk::lock_exclusive(&dir.join(".lock"), Duration::ZERO)
}

/// The local store's directory, which is also locked with an OS lock; None for S3.
pub fn os_lock_dir(config: &vigia_core::Config) -> Option<PathBuf> {
    match config.backup.store {
        Some(vigia_core::config::StoreKind::Local) => config.backup.path.clone(),
        _ => None,
    }
}
