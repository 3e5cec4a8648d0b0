//! How fresh the store's backups are, for health checks: the newest backup whose index
//! authenticates, and the newest full or drill verifications. Two LISTs and a few GETs, never
//! every index, and no identity: a monitoring host needs only the name key.

use jiff::Timestamp;
use serde::Serialize;
use vigia_core::Result;
use vigia_core::ports::store::ObjectStore;

use crate::catalog::open_index;
use crate::format::{BackupId, NameKey, VerificationLog, VerificationRecord, VerifyLevel};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// The newest backup whose index authenticates, and when it finished.
    pub newest: Option<(BackupId, Timestamp)>,
    /// Newer indexes that failed their mac (skipped on the way to `newest`).
    pub damaged_newer: usize,
    /// The most recent full or drill verification of any backup, passed or not.
    pub latest_verification: Option<VerificationRecord>,
    /// The most recent full or drill verification that passed.
    pub newest_passed: Option<VerificationRecord>,
}

impl Freshness {
    pub async fn read(store: &dyn ObjectStore, name_key: &NameKey) -> Result<Self> {
        let mut fresh = Self::default();
        let mut indexes: Vec<String> = store
            .list("backups/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .filter(|k| k.ends_with("/index.json"))
            .collect();
        // Ids begin with their compact UTC time: the newest sorts last.
        indexes.sort();
        for key in indexes.iter().rev() {
            let bytes = store.get_bytes(key).await?;
            match open_index(name_key, &bytes, key) {
                Ok(index) => {
                    fresh.newest = Some((index.id, index.finished_at));
                    break;
                }
                Err(_) => fresh.damaged_newer += 1,
            }
        }
        let log = VerificationLog::read(store).await?;
        let mut records = Vec::new();
        for id in log.ids() {
            if let Some(record) = log.latest(store, name_key, id, VerifyLevel::Full).await? {
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.at);
        fresh.latest_verification = records.last().cloned();
        fresh.newest_passed = records.into_iter().rev().find(|r| r.ok);
        Ok(fresh)
    }
}
