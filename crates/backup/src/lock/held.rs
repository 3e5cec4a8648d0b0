//! A held lock's state: the record's current ETag, renewed by the heartbeat with `If-Match`
//! (so a holder that was taken over never writes over its successor), and the check a job
//! makes before each destructive step.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Mutex;
use tokio::time::Instant;
use vigia_core::ports::store::{ObjectMeta, ObjectStore, StoreError, WriteCondition};
use vigia_core::{Error, ErrorKind, Result};

use super::record::{self, LockRecord};
use crate::format::{LOCK_KEY, NameKey};

#[derive(Debug)]
pub(super) struct Held {
    /// The ETag of our record as the store last wrote it.
    pub etag: String,
    /// When the store last accepted our renewal.
    pub renewed: Instant,
    /// Why the lock is no longer ours, once that is known.
    pub lost: Option<String>,
}

pub(super) type Shared = Arc<Mutex<Held>>;

/// The ETag of what a write just stored: the write's answer, else a read of it.
pub(super) async fn etag_after_write(store: &dyn ObjectStore, meta: ObjectMeta) -> Result<String> {
    if let Some(etag) = meta.etag {
        return Ok(etag);
    }
    let (_, read) = store.get_bytes_meta(LOCK_KEY).await?;
    read.etag.ok_or_else(|| {
        Error::new(
            ErrorKind::Storage,
            format!(
                "{} gives no ETag for {LOCK_KEY}: the store lock cannot be held safely there",
                store.location()
            ),
        )
    })
}

/// Renews the record every `every` until it is lost or the task is aborted.
pub(super) async fn beat(
    store: Arc<dyn ObjectStore>,
    name_key: NameKey,
    mut record: LockRecord,
    state: Shared,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let mut held = state.lock().await;
        if held.lost.is_some() {
            return;
        }
        record.heartbeat_at = Timestamp::now();
        let sealed = match name_key.seal(&record) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::warn!("cannot renew the store lock: {e}");
                continue;
            }
        };
        let condition = WriteCondition::Matches(held.etag.clone());
        let renewed = match store.put_bytes_if(LOCK_KEY, sealed.into(), condition).await {
            Ok(meta) => etag_after_write(store.as_ref(), meta).await.map_err(Some),
            Err(e) if e.is_condition_failed() => Err(None),
            Err(e) => Err(Some(e.into())),
        };
        match renewed {
            Ok(etag) => {
                held.etag = etag;
                held.renewed = Instant::now();
            }
            Err(None) => {
                let why = taken_by(store.as_ref(), &name_key).await;
                tracing::error!(
                    "the store lock was lost: {why}; this run stops before its next change to the store"
                );
                held.lost = Some(why);
                return;
            }
            Err(Some(e)) => tracing::warn!("cannot renew the store lock: {e}"),
        }
    }
}

/// Fails when the lock is no longer ours: taken over, removed, or not renewed for so long
/// that another run may judge it stale. Call before each destructive step.
pub(super) async fn ensure_held(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    state: &Shared,
    stale_after: Duration,
) -> Result<()> {
    let mut held = state.lock().await;
    if held.lost.is_none() && held.renewed.elapsed() > stale_after / 2 {
        held.lost = Some(format!(
            "it was not renewed for {} s (is the store reachable?), and another run may soon \
             judge it stale",
            held.renewed.elapsed().as_secs()
        ));
    }
    if held.lost.is_none() {
        match store.get_bytes_meta(LOCK_KEY).await {
            Ok((_, meta)) if meta.etag.as_deref() == Some(held.etag.as_str()) => return Ok(()),
            Ok(_) => held.lost = Some(taken_by(store, name_key).await),
            Err(StoreError::NotFound { .. }) => {
                held.lost = Some("its record was removed from the store".to_owned());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let why = held.lost.as_deref().unwrap_or_default();
    Err(Error::new(
        ErrorKind::Locked,
        format!(
            "the store lock was lost ({why}); this run stopped before its next change (a \
             deletion, an index, a swap). What it wrote without an index is swept by a later \
             backup"
        ),
    ))
}

/// Who holds the lock now, for the message of a run that lost it.
async fn taken_by(store: &dyn ObjectStore, name_key: &NameKey) -> String {
    match record::read(store, name_key).await {
        Ok(Some(found)) => format!("taken over by {}", found.describe()),
        Ok(None) => "its record was removed from the store".to_owned(),
        Err(e) => format!("its record changed and cannot be read: {e}"),
    }
}
