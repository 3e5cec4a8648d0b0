//! The lock record in the store, and the verdict on a record someone else holds: alive, or
//! stale and taken over. Age is judged on the store's clock (its LastModified against a
//! probe object written now), never by comparing two hosts' clocks.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vigia_core::Result;
use vigia_core::ports::store::{ObjectStore, StoreError};
use vigia_core::process::ProcessIdentity;

use crate::format::NameKey;

/// Where the store's own clock is read: a tiny object written, looked at and removed.
const CLOCK_PREFIX: &str = "locks/clock-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// What holds it: `backup`, `prune`, `restore`.
    pub owner: String,
    /// Host, pid, boot id, pid namespace and start time of the holder.
    #[serde(flatten)]
    pub process: ProcessIdentity,
    pub started_at: Timestamp,
    /// The holder's own clock, for people reading it; staleness is judged by the store's.
    pub heartbeat_at: Timestamp,
    /// Tells two holders with the same identity apart.
    pub nonce: String,
}

impl LockRecord {
    /// A record for this process, now.
    pub fn for_this_process(owner: &str) -> Self {
        let now = Timestamp::now();
        Self {
            owner: owner.to_owned(),
            process: ProcessIdentity::current(),
            started_at: now,
            heartbeat_at: now,
            nonce: hex::encode(vigia_core::random_bytes::<8>()),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on host {} since {}, last heartbeat {})",
            self.owner, self.process.pid, self.process.host, self.started_at, self.heartbeat_at
        )
    }
}

/// The record found in the store, with the ETag a takeover must name.
#[derive(Debug)]
pub(super) struct Found {
    /// None when it cannot be read: a damaged record protects nothing.
    pub record: Option<LockRecord>,
    pub etag: Option<String>,
    pub modified: Option<Timestamp>,
}

impl Found {
    /// Whether it is `mine` (same nonce): ours even if a renewal's answer was lost.
    pub fn is_ours(&self, mine: &LockRecord) -> bool {
        self.record.as_ref().is_some_and(|r| r.nonce == mine.nonce)
    }

    pub fn describe(&self) -> String {
        self.record.as_ref().map_or_else(
            || "an unreadable lock record".to_owned(),
            LockRecord::describe,
        )
    }
}

/// What to do about someone else's record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Live,
    /// Take it over; `gone` when its process is provably dead (nothing of it still writes).
    Stale {
        gone: bool,
    },
}

/// The record under `key` (the lock's, or a reader's).
pub(super) async fn read(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    key: &str,
) -> Result<Option<Found>> {
    match store.get_bytes_meta(key).await {
        Ok((bytes, meta)) => {
            let record = name_key
                .open(&bytes, key)
                .inspect_err(|e| tracing::warn!("the store lock record {key} is damaged: {e}"))
                .ok();
            Ok(Some(Found {
                record,
                etag: meta.etag,
                modified: meta.modified,
            }))
        }
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Judges a record held by someone else. A holder whose record the store has not seen
/// rewritten for `stale_after` is stale; so is an unreadable record (damaged, or sealed with
/// another name key), by the same measure.
pub(super) async fn judge(
    store: &dyn ObjectStore,
    clock: &mut StoreClock,
    found: &Found,
    stale_after: Duration,
) -> Result<Verdict> {
    if found.record.as_ref().is_some_and(|r| r.process.is_gone()) {
        return Ok(Verdict::Stale { gone: true });
    }
    let silent = match (found.modified, &found.record) {
        (Some(modified), _) => clock.now(store).await?.duration_since(modified),
        (None, Some(record)) => {
            // A store that does not say when it was written: the holder's clock is all
            // there is.
            tracing::warn!("the store gives no modification time: judging the lock by clocks");
            Timestamp::now().duration_since(record.heartbeat_at)
        }
        (None, None) => return Ok(Verdict::Stale { gone: false }),
    };
    Ok(if silent.unsigned_abs() > stale_after {
        Verdict::Stale { gone: false }
    } else {
        Verdict::Live
    })
}

/// The store's clock, read once (a probe object) and then followed on ours: a waiting run
/// polls every half second and must not write a probe each time.
#[derive(Debug, Default)]
pub(super) struct StoreClock {
    /// Store time minus our time, once measured.
    offset: Option<jiff::SignedDuration>,
}

impl StoreClock {
    async fn now(&mut self, store: &dyn ObjectStore) -> Result<Timestamp> {
        let offset = if let Some(offset) = self.offset {
            offset
        } else {
            let before = Timestamp::now();
            let offset = probe_store_time(store).await?.duration_since(before);
            *self.offset.insert(offset)
        };
        Ok(Timestamp::now()
            .saturating_add(offset)
            .unwrap_or_else(|_| Timestamp::now()))
    }
}

/// Removes clock probes a killed run left (a probe lives for a few milliseconds; one an hour
/// old is nobody's). Returns how many.
pub async fn sweep_clock_probes(store: &dyn ObjectStore) -> Result<u64> {
    let cutoff = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let mut removed = 0;
    for probe in store.list(CLOCK_PREFIX).await? {
        if probe.modified.is_some_and(|m| m < cutoff) {
            store.delete(&probe.key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The store's clock now: the modification time of an object written for the purpose.
async fn probe_store_time(store: &dyn ObjectStore) -> Result<Timestamp> {
    let key = format!(
        "{CLOCK_PREFIX}{}",
        hex::encode(vigia_core::random_bytes::<8>())
    );
    store
        .put_bytes(&key, bytes::Bytes::from_static(b"{}"))
        .await?;
    let meta = store.head(&key).await;
    if let Err(e) = store.delete(&key).await {
        tracing::warn!("cannot remove the clock probe {key}: {e}");
    }
    Ok(meta?.modified.unwrap_or_else(Timestamp::now))
}
