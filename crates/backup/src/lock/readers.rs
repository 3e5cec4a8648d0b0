//! Shared holds on the store: a run that only reads backups (verify) must not have them
//! deleted under it by a prune. A reader writes `locks/readers/<nonce>.json` and then looks at
//! the exclusive lock; a prune takes the exclusive lock and then looks at the readers. Each
//! writes before it reads, and the store is read-after-write consistent, so at least one of
//! the two sees the other and backs off. A reader renews its record with `If-Match` and
//! checks it before it records a result: a prune that judged it stale removed it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vigia_core::ports::store::{ObjectStore, WriteCondition};
use vigia_core::{Error, ErrorKind, Result};

use super::hold::{self, Hold};
use super::record::{self, LockRecord, StoreClock, Verdict};
use super::{LockRequest, RETRY, STALE_AFTER};
use crate::format::{LOCK_KEY, NameKey};

const READERS_PREFIX: &str = "locks/readers/";
/// The exclusive holder that deletes what readers read.
const DELETER: &str = "prune";

/// A shared hold; call `ensure_held` before recording what was read, and `release`.
#[derive(Debug)]
pub struct ReadLock {
    hold: Hold,
}

impl ReadLock {
    /// Registers a reader, waiting up to `request.wait` while a live prune holds the store.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        name_key: &NameKey,
        request: &LockRequest,
    ) -> Result<Self> {
        let deadline = Instant::now() + request.wait;
        let record = LockRecord::for_this_process(&request.owner);
        let key = format!("{READERS_PREFIX}{}.json", record.nonce);
        let sealed = bytes::Bytes::from(name_key.seal(&record)?);
        let mut clock = StoreClock::default();
        loop {
            let written = store
                .put_bytes_if(&key, sealed.clone(), WriteCondition::Absent)
                .await?;
            let checked = async {
                let etag = hold::etag_after_write(store.as_ref(), &key, written).await?;
                let pruning = live_deleter(store.as_ref(), name_key, &mut clock).await?;
                Ok::<_, Error>((etag, pruning))
            }
            .await;
            let pruning = match checked {
                Ok((etag, None)) => {
                    let hold = Hold::start(
                        store,
                        name_key,
                        (&key, "shared hold"),
                        record,
                        etag,
                        request.heartbeat,
                    );
                    return Ok(Self { hold });
                }
                Ok((_, Some(pruning))) => pruning,
                Err(e) => {
                    let _ = store.delete(&key).await;
                    return Err(e);
                }
            };
            store.delete(&key).await?;
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "the backup store is being pruned by {}; verify again once it is done, \
                         or set [backup] lock-wait to wait for it",
                        pruning.describe()
                    ),
                ));
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Fails (ErrorKind::Locked) when a prune removed this hold (it judged it stale): what
    /// was read since may have been deleted, so it must not be recorded.
    pub async fn ensure_held(&self) -> Result<()> {
        self.hold.ensure_held().await
    }

    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}

/// The prune holding the exclusive lock, if it is alive.
async fn live_deleter(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    clock: &mut StoreClock,
) -> Result<Option<LockRecord>> {
    let Some(found) = record::read(store, name_key, LOCK_KEY).await? else {
        return Ok(None);
    };
    if found.record.as_ref().is_none_or(|r| r.owner != DELETER) {
        return Ok(None);
    }
    Ok(
        match record::judge(store, clock, &found, STALE_AFTER).await? {
            Verdict::Live => found.record,
            Verdict::Stale { .. } => None,
        },
    )
}

/// Under the exclusive lock: waits up to `wait` for the live readers to finish (new ones
/// back off from the lock meanwhile), then fails naming one.
pub(super) async fn wait_for_readers(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    wait: Duration,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    let mut clock = StoreClock::default();
    loop {
        match refuse_live_readers(store, name_key, &mut clock).await {
            Err(e) if e.kind() == ErrorKind::Locked && Instant::now() < deadline => {
                tokio::time::sleep(RETRY).await;
            }
            done => return done,
        }
    }
}

/// Fails while a live reader holds the store; removes the records of readers that are dead
/// or silent.
async fn refuse_live_readers(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    clock: &mut StoreClock,
) -> Result<()> {
    for meta in store.list(READERS_PREFIX).await? {
        let Some(found) = record::read(store, name_key, &meta.key).await? else {
            continue;
        };
        match record::judge(store, clock, &found, STALE_AFTER).await? {
            Verdict::Live => {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "the backup store is being read by {}; try again once it is done, or \
                         set [backup] lock-wait to wait for it",
                        found.describe()
                    ),
                ));
            }
            Verdict::Stale { .. } => {
                tracing::warn!("removing the record of a dead reader: {}", found.describe());
                store.delete(&meta.key).await?;
            }
        }
    }
    Ok(())
}
