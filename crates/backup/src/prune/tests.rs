//! The prune plan against an in-memory store and a fixed clock: no server.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vigia_core::config::{RetentionConfig, Secret};
use vigia_core::ports::clock::FixedClock;
use vigia_core::ports::store::ObjectStore;
use vigia_core::testing::{FaultyStore, MemoryStore};

use super::PruneJob;
use crate::access::StoreAccess;
use crate::format::{
    BackupId, BackupIndex, FORMAT, NameKey, SealedObject, dump_key, index_key, manifest_key,
};

const IDS: [&str; 4] = [
    "20261101T020000Z-aaaa",
    "20261102T020000Z-bbbb",
    "20261103T020000Z-cccc",
    "20261104T020000Z-dddd",
];

/// What `store_of_four` holds: per backup its index, dump, manifest and own object, and the
/// object they share.
const STORED: usize = 4 * 4 + 1;

fn name_key() -> NameKey {
    NameKey::from_secret(&Secret::new("ab".repeat(32))).unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Four daily backups, each with its own filestore object and one object all share; the
/// objects written on the day of their backup.
async fn store_of_four() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new(at("2026-11-01T02:00:00Z")));
    for (day, id) in IDS.iter().enumerate() {
        let id: BackupId = id.parse().unwrap();
        store.set_time(at(&format!("2026-11-0{}T02:00:00Z", day + 1)));
        let keys = [
            dump_key(&id),
            manifest_key(&id),
            format!("objects/own-{day}"),
            "objects/shared".to_owned(),
        ];
        let mut objects = Vec::new();
        for key in keys {
            store.put_bytes(&key, vec![1u8; 10].into()).await.unwrap();
            objects.push(SealedObject {
                key,
                size_bytes: 10,
                sha256: String::new(),
                plain_bytes: 0,
            });
        }
        let index = BackupIndex {
            format: FORMAT,
            started_at: id.started_at(),
            finished_at: id.started_at(),
            id: id.clone(),
            database: "odoo".into(),
            vigia_version: "0.1.0".into(),
            objects,
        };
        let sealed = name_key().seal(&index).unwrap();
        store
            .put_bytes(&index_key(&id), sealed.into())
            .await
            .unwrap();
    }
    store
}

fn job(store: Arc<dyn ObjectStore>, keep_last: u32) -> PruneJob {
    PruneJob {
        access: StoreAccess {
            store,
            name_key: name_key(),
            identity: None,
        },
        retention: RetentionConfig {
            keep_last,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
        },
        timezone: TimeZone::UTC,
        grace_period: Duration::from_hours(24),
        dry_run: true,
        lock_wait: Duration::ZERO,
        os_lock_dir: None,
        clock: Arc::new(FixedClock(at("2026-11-05T12:00:00Z"))),
    }
}

#[tokio::test]
async fn the_plan_deletes_old_backups_index_first_and_keeps_what_kept_ones_share() {
    let store = store_of_four().await;
    let plan = job(store.clone(), 2).plan().await.unwrap();
    let ids = |list: &[BackupId]| {
        list.iter()
            .map(|i| i.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&plan.report.delete), IDS[..2]);
    assert_eq!(ids(&plan.report.keep), IDS[2..]);
    let keys: Vec<&str> = plan.deletions.iter().map(|m| m.key.as_str()).collect();
    // Each deleted backup's index goes first, so that a prune killed halfway never leaves
    // half a backup listed.
    assert!(
        keys[0].ends_with(&format!("{}/index.json", IDS[0])),
        "{keys:?}"
    );
    assert!(keys.contains(&"objects/own-0") && keys.contains(&"objects/own-1"));
    assert!(!keys.contains(&"objects/shared"));
    assert!(!plan.report.applied);
    insta::assert_json_snapshot!(plan);
    // Planning wrote nothing.
    assert_eq!(store.keys().len(), STORED);
}

#[tokio::test]
async fn objects_inside_the_grace_period_are_counted_not_deleted() {
    let store = store_of_four().await;
    store.set_time(at("2026-11-05T11:00:00Z"));
    store
        .put_bytes("objects/uploaded-by-a-running-backup", vec![0u8; 3].into())
        .await
        .unwrap();
    let plan = job(store, 4).plan().await.unwrap();
    assert!(plan.report.delete.is_empty());
    assert_eq!(plan.report.objects_in_grace, 1);
    assert!(plan.deletions.is_empty());
}

#[tokio::test]
async fn a_store_that_answers_503_fails_the_plan_naming_it() {
    let store = Arc::new(FaultyStore::new(store_of_four().await));
    store.set_unavailable(true);
    let err = job(store, 2).plan().await.unwrap_err();
    assert!(err.message().contains("503"), "{err}");
}

#[tokio::test]
async fn a_prune_applies_exactly_its_plan_under_the_lock() {
    let memory = store_of_four().await;
    let mut prune = job(memory.clone(), 2);
    prune.dry_run = false;
    let report = prune.run().await.unwrap();
    assert!(report.applied);
    let left = memory.keys();
    assert!(
        left.iter()
            .all(|k| !k.contains(IDS[0]) && !k.contains(IDS[1])),
        "{left:?}"
    );
    assert!(left.contains(&"objects/shared".to_owned()));
    assert!(!left.iter().any(|k| k.starts_with("locks/")), "{left:?}");
}

#[tokio::test]
async fn a_lock_that_cannot_be_written_deletes_nothing() {
    let memory = store_of_four().await;
    let faulty = Arc::new(FaultyStore::new(memory.clone()));
    faulty.fail_put(1);
    let mut prune = job(faulty, 2);
    prune.dry_run = false;
    prune.run().await.unwrap_err();
    assert_eq!(memory.keys().len(), STORED);
}
