//! How fresh the store's backups are, for health checks: the newest backup whose index
//! authenticates, and the newest full or drill verifications. Two LISTs and a few GETs, never
//! every index, and no identity: a monitoring host needs only the name key.

use jiff::Timestamp;
use serde::Serialize;
use vigia_core::Result;
use vigia_core::ports::store::ObjectStore;

use crate::catalog::open_index;
use crate::format::{BackupId, NameKey, VerificationLog, VerificationRecord, VerifyLevel};

/// Indexes read, newest first, before the name key is judged not to authenticate them.
const INDEXES_TRIED: usize = 5;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// The newest backup whose index authenticates, and when it finished.
    pub newest: Option<(BackupId, Timestamp)>,
    /// Newer indexes that failed their mac (skipped on the way to `newest`; at most
    /// `INDEXES_TRIED` are read).
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
        for key in indexes.iter().rev().take(INDEXES_TRIED) {
            let bytes = store.get_bytes(key).await?;
            match open_index(name_key, &bytes, key) {
                Ok(index) => {
                    fresh.newest = Some((index.id, index.finished_at));
                    break;
                }
                Err(_) => fresh.damaged_newer += 1,
            }
        }
        // Every record, newest first (the key ends in its compact time): read until the
        // latest full or drill verification and the newest one that passed are known.
        let log = VerificationLog::read(store).await?;
        let mut keys: Vec<(&str, &BackupId, &String)> = log
            .ids()
            .flat_map(|id| log.keys_of(id).iter().map(move |k| (time_of(k), id, k)))
            .collect();
        keys.sort_by(|a, b| b.0.cmp(a.0));
        for (_, id, key) in keys {
            let record = log.open(store, name_key, id, key).await?;
            if record.level < VerifyLevel::Full {
                continue;
            }
            if fresh.latest_verification.is_none() {
                fresh.latest_verification = Some(record.clone());
            }
            if record.ok {
                fresh.newest_passed = Some(record);
                break;
            }
        }
        Ok(fresh)
    }
}

/// `verifications/<id>/<compact time>.json` -> the compact time.
fn time_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use vigia_core::config::Secret;
    use vigia_core::testing::MemoryStore;

    use super::*;
    use crate::format::{BackupIndex, FORMAT, Problem, index_key};

    fn name_key() -> NameKey {
        NameKey::from_secret(&Secret::new("12".repeat(32))).unwrap()
    }

    async fn backup(store: &MemoryStore, id: &str) -> BackupId {
        let id: BackupId = id.parse().unwrap();
        let index = BackupIndex {
            format: FORMAT,
            started_at: id.started_at(),
            finished_at: id.started_at(),
            id: id.clone(),
            database: "odoo".into(),
            vigia_version: "0.1.0".into(),
            objects: Vec::new(),
        };
        let sealed = name_key().seal(&index).unwrap();
        store
            .put_bytes(&index_key(&id), sealed.into())
            .await
            .unwrap();
        id
    }

    async fn verified(store: &MemoryStore, id: &BackupId, at: &str, level: VerifyLevel, ok: bool) {
        let problems = if ok {
            Vec::new()
        } else {
            vec![Problem::new("dump", "sha256 differs")]
        };
        VerificationRecord {
            id: id.clone(),
            level,
            at: at.parse().unwrap(),
            ok,
            problems,
        }
        .write(store, &name_key())
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_newest_authentic_backup_and_the_latest_verifications() {
        let store = MemoryStore::default();
        let old = backup(&store, "20261101T020000Z-aaaa").await;
        let new = backup(&store, "20261103T020000Z-bbbb").await;
        // A newer index that fails its mac is skipped, and counted.
        store
            .put_bytes(
                "backups/20261104T020000Z-cccc/index.json",
                b"{}".to_vec().into(),
            )
            .await
            .unwrap();
        verified(
            &store,
            &old,
            "2026-11-02T00:00:00Z",
            VerifyLevel::Drill,
            true,
        )
        .await;
        verified(
            &store,
            &new,
            "2026-11-04T00:00:00Z",
            VerifyLevel::Full,
            false,
        )
        .await;
        // Quick verifications prove nothing about restoring.
        verified(
            &store,
            &new,
            "2026-11-05T00:00:00Z",
            VerifyLevel::Quick,
            true,
        )
        .await;
        let fresh = Freshness::read(&store, &name_key()).await.unwrap();
        assert_eq!(fresh.newest.as_ref().map(|(id, _)| id), Some(&new));
        assert_eq!(fresh.damaged_newer, 1);
        let latest = fresh.latest_verification.unwrap();
        assert!(!latest.ok && latest.id == new);
        assert_eq!(fresh.newest_passed.unwrap().id, old);
    }

    #[tokio::test]
    async fn another_name_key_authenticates_nothing_and_reads_a_bounded_number() {
        let store = MemoryStore::default();
        for day in 1..=8 {
            backup(&store, &format!("2026110{day}T020000Z-aaaa")).await;
        }
        let other = NameKey::from_secret(&Secret::new("34".repeat(32))).unwrap();
        let fresh = Freshness::read(&store, &other).await.unwrap();
        assert!(fresh.newest.is_none());
        assert_eq!(fresh.damaged_newer, INDEXES_TRIED);
        let gets = store
            .ops()
            .iter()
            .filter(|op| op.starts_with("get "))
            .count();
        assert_eq!(gets, INDEXES_TRIED);
    }

    #[tokio::test]
    async fn an_empty_store_has_nothing_fresh() {
        let fresh = Freshness::read(&MemoryStore::default(), &name_key())
            .await
            .unwrap();
        assert!(fresh.newest.is_none() && fresh.latest_verification.is_none());
    }
}
