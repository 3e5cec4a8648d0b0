//! A record held in the store (the exclusive lock, or a reader's shared hold): renewed by a
//! heartbeat with `If-Match` on the ETag last written, so a holder that was taken over never
//! writes over its successor, and checked by its nonce before each destructive step.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use vigia_core::ports::store::{ObjectMeta, ObjectStore, WriteCondition};
use vigia_core::{Error, ErrorKind, Result};

use super::STALE_AFTER;
use super::record::{self, LockRecord};
use crate::format::NameKey;

#[derive(Debug)]
struct State {
    /// The ETag of our record as the store last wrote it: what a renewal names.
    etag: String,
    /// When the last renewal the store accepted was sent.
    renewed: Instant,
    /// Why the record is no longer ours, once that is known.
    lost: Option<String>,
}

/// A held record; `release` it. Dropped without release, it stops beating and goes stale.
#[derive(Debug)]
pub(super) struct Hold {
    store: Arc<dyn ObjectStore>,
    name_key: NameKey,
    key: String,
    record: LockRecord,
    /// `lock` or `shared hold`, for messages.
    label: &'static str,
    state: Arc<Mutex<State>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Hold {
    /// Starts renewing `record`, just written under `key` with `etag`, every `every`.
    pub fn start(
        store: Arc<dyn ObjectStore>,
        name_key: &NameKey,
        (key, label): (&str, &'static str),
        record: LockRecord,
        etag: String,
        every: Duration,
    ) -> Self {
        let state = Arc::new(Mutex::new(State {
            etag,
            renewed: Instant::now(),
            lost: None,
        }));
        let heartbeat = tokio::spawn(beat(
            Arc::clone(&store),
            name_key.clone(),
            key.to_owned(),
            record.clone(),
            Arc::clone(&state),
            every,
        ));
        Self {
            store,
            name_key: name_key.clone(),
            key: key.to_owned(),
            record,
            label,
            state,
            heartbeat,
        }
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    pub fn store_and_key(&self) -> (&dyn ObjectStore, &NameKey) {
        (self.store.as_ref(), &self.name_key)
    }

    /// Fails (ErrorKind::Locked) when the record is no longer ours: taken over, removed, or
    /// not renewed for so long that another run may judge it stale.
    pub async fn ensure_held(&self) -> Result<()> {
        let lost = {
            let mut state = lock(&self.state);
            if state.lost.is_none() && state.renewed.elapsed() > STALE_AFTER / 2 {
                state.lost = Some(format!(
                    "it was not renewed for {} s (is the store reachable?), and another run may \
                     judge it stale",
                    state.renewed.elapsed().as_secs()
                ));
            }
            state.lost.clone()
        };
        let lost = match lost {
            Some(why) => why,
            None => match record::read(self.store.as_ref(), &self.name_key, &self.key).await? {
                Some(found) if found.is_ours(&self.record) => return Ok(()),
                Some(found) => format!("taken over by {}", found.describe()),
                None => "its record was removed from the store".to_owned(),
            },
        };
        lock(&self.state).lost.get_or_insert_with(|| lost.clone());
        Err(Error::new(
            ErrorKind::Locked,
            format!(
                "the store {} was lost ({lost}); this run stopped before its next step that \
                 changes the store or a database",
                self.label
            ),
        ))
    }

    /// Stops the heartbeat and removes the record if it is still ours. A record that was
    /// lost, or not renewed for half the stale time, is left alone: it may be a successor's
    /// by the time a delete lands.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        let fresh = {
            let state = lock(&self.state);
            state.lost.is_none() && state.renewed.elapsed() < STALE_AFTER / 2
        };
        if !fresh {
            return Ok(());
        }
        match record::read(self.store.as_ref(), &self.name_key, &self.key).await? {
            Some(found) if found.is_ours(&self.record) => self.store.delete(&self.key).await?,
            Some(_) => tracing::warn!("the store {} was taken over before its release", self.label),
            None => {}
        }
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ETag of what a write just stored under `key`: the write's answer, else a read of it.
pub(super) async fn etag_after_write(
    store: &dyn ObjectStore,
    key: &str,
    meta: ObjectMeta,
) -> Result<String> {
    if let Some(etag) = meta.etag {
        return Ok(etag);
    }
    let (_, read) = store.get_bytes_meta(key).await?;
    read.etag.ok_or_else(|| {
        Error::new(
            ErrorKind::Storage,
            format!(
                "{} gives no ETag for {key}: the store lock cannot be held safely there",
                store.location()
            ),
        )
    })
}

/// Renews the record every `every` until it is lost or the task is aborted. The network
/// calls are made without holding the state, so `ensure_held` never waits for them.
async fn beat(
    store: Arc<dyn ObjectStore>,
    name_key: NameKey,
    key: String,
    mut record: LockRecord,
    state: Arc<Mutex<State>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let etag = {
            let state = lock(&state);
            if state.lost.is_some() {
                return;
            }
            state.etag.clone()
        };
        let sent = Instant::now();
        record.heartbeat_at = Timestamp::now();
        match renew(store.as_ref(), &name_key, &key, &record, etag).await {
            Ok(etag) => {
                let mut state = lock(&state);
                state.etag = etag;
                state.renewed = sent;
            }
            Err(Renewal::Lost(why)) => {
                tracing::error!(
                    "the store lock was lost: {why}; this run stops before its next step that \
                     changes the store"
                );
                lock(&state).lost = Some(why);
                return;
            }
            Err(Renewal::Failed(e)) => tracing::warn!("cannot renew the store lock: {e}"),
        }
    }
}

enum Renewal {
    Lost(String),
    Failed(Error),
}

async fn renew(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    key: &str,
    record: &LockRecord,
    etag: String,
) -> std::result::Result<String, Renewal> {
    let sealed = name_key.seal(record).map_err(Renewal::Failed)?;
    let written = store
        .put_bytes_if(key, sealed.into(), WriteCondition::Matches(etag))
        .await;
    match written {
        Ok(meta) => etag_after_write(store, key, meta)
            .await
            .map_err(Renewal::Failed),
        Err(e) if e.is_condition_failed() => {
            // A retried request whose first attempt landed answers 412 too: the record is
            // then still ours, with the ETag of that first attempt.
            match record::read(store, name_key, key).await {
                Ok(Some(found)) if found.is_ours(record) => found
                    .etag
                    .ok_or_else(|| Renewal::Failed(Error::internal("no ETag"))),
                Ok(Some(found)) => {
                    Err(Renewal::Lost(format!("taken over by {}", found.describe())))
                }
                Ok(None) => Err(Renewal::Lost(
                    "its record was removed from the store".into(),
                )),
                Err(e) => Err(Renewal::Failed(e)),
            }
        }
        Err(e) => Err(Renewal::Failed(e.into())),
    }
}
