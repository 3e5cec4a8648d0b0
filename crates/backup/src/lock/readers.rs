//! Shared holds on the store: a run that only reads backups (verify) must not have them
//! deleted under it by a prune. A reader writes `locks/readers/<nonce>.json` and then looks at
//! the exclusive lock; a prune takes the exclusive lock and then looks at the readers. Each
//! writes before it reads, and the store is read-after-write consistent, so at least one of
//! the two sees the other and backs off.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, ErrorKind, Result};

use super::record::{self, LockRecord, Verdict};
use super::{LockRequest, RETRY, STALE_AFTER};
use crate::format::NameKey;

const READERS_PREFIX: &str = "locks/readers/";
/// The exclusive holder that deletes what readers read.
const DELETER: &str = "prune";

/// A shared hold; call `release`. A reader that dies leaves a record that goes stale.
#[derive(Debug)]
pub struct ReadLock {
    store: Arc<dyn ObjectStore>,
    key: String,
    heartbeat: tokio::task::JoinHandle<()>,
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
        loop {
            store
                .put_bytes(&key, name_key.seal(&record)?.into())
                .await?;
            let Some(pruning) = live_deleter(store.as_ref(), name_key).await? else {
                let heartbeat = tokio::spawn(beat(
                    Arc::clone(&store),
                    name_key.clone(),
                    key.clone(),
                    record,
                    request.heartbeat,
                ));
                return Ok(Self {
                    store,
                    key,
                    heartbeat,
                });
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

    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        self.store.delete(&self.key).await?;
        Ok(())
    }
}

impl Drop for ReadLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// The prune holding the exclusive lock, if it is alive.
async fn live_deleter(store: &dyn ObjectStore, name_key: &NameKey) -> Result<Option<LockRecord>> {
    let Some(found) = record::read(store, name_key).await? else {
        return Ok(None);
    };
    if found.record.as_ref().is_none_or(|r| r.owner != DELETER) {
        return Ok(None);
    }
    Ok(match record::judge(store, &found, STALE_AFTER).await? {
        Verdict::Live => found.record,
        Verdict::Stale { .. } => None,
    })
}

async fn beat(
    store: Arc<dyn ObjectStore>,
    name_key: NameKey,
    key: String,
    mut record: LockRecord,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        record.heartbeat_at = Timestamp::now();
        let renewed = match name_key.seal(&record) {
            Ok(sealed) => store
                .put_bytes(&key, sealed.into())
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = renewed {
            tracing::warn!("cannot renew the verify's hold on the store: {e}");
        }
    }
}

/// Under the exclusive lock: waits up to `wait` for the live readers to finish (new ones
/// back off from the lock meanwhile), then fails naming one.
pub(super) async fn wait_for_readers(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    wait: Duration,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match refuse_live_readers(store, name_key).await {
            Err(e) if e.kind() == ErrorKind::Locked && Instant::now() < deadline => {
                tokio::time::sleep(RETRY).await;
            }
            done => return done,
        }
    }
}

/// Under the exclusive lock: fails while a live reader holds the store; removes the records
/// of readers that are dead or silent.
async fn refuse_live_readers(store: &dyn ObjectStore, name_key: &NameKey) -> Result<()> {
    for meta in store.list(READERS_PREFIX).await? {
        let found = match store.get_bytes_meta(&meta.key).await {
            Ok((bytes, meta)) => record::Found {
                record: name_key.open(&bytes, &meta.key).ok(),
                etag: meta.etag,
                modified: meta.modified,
            },
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        match record::judge(store, &found, STALE_AFTER).await? {
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
