//! The store lock: a live holder blocks (or is waited for), a dead one is taken over.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use vigia_backup::format::{LOCK_KEY, NameKey};
use vigia_backup::{LockRecord, StoreLock};
use vigia_core::ErrorKind;
use vigia_core::config::Secret;
use vigia_core::ports::store::ObjectStore;

fn key() -> NameKey {
    NameKey::from_secret(&Secret::new(hex::encode([3u8; 32]))).unwrap()
}

fn parts(fixture: &Fixture) -> (Arc<dyn ObjectStore>, Option<std::path::PathBuf>) {
    match fixture {
        Fixture::Local(dir, s) => (s.clone(), Some(dir.path().join("store"))),
        Fixture::S3(_, s) => (s.clone(), None),
    }
}

async fn acquire(fixture: &Fixture, owner: &str, wait: Duration) -> vigia_core::Result<StoreLock> {
    let (store, dir) = parts(fixture);
    StoreLock::acquire(store, &key(), owner, wait, dir.as_deref()).await
}

async fn write_record(fixture: &Fixture, record: &LockRecord) {
    let bytes = key().seal(record).unwrap();
    fixture
        .store()
        .put_bytes(LOCK_KEY, bytes.into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_refuses_a_second_holder_naming_the_first() {
    for fixture in [Fixture::local(), Fixture::s3().await] {
        let first = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
        let err = acquire(&fixture, "prune", Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.message().contains("backup (pid"), "{}", err.message());
        first.release(&key()).await.unwrap();
        assert!(
            fixture
                .store()
                .head(LOCK_KEY)
                .await
                .unwrap_err()
                .is_not_found()
        );
        acquire(&fixture, "prune", Duration::ZERO).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_wait_waits_for_the_holder_to_finish() {
    let fixture = Fixture::s3().await;
    let first = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
    let releaser = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        first.release(&key()).await.unwrap();
    };
    let (second, ()) = tokio::join!(
        acquire(&fixture, "restore", Duration::from_secs(10)),
        releaser
    );
    assert_eq!(second.unwrap().record().owner, "restore");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_process_is_gone_is_taken_over() {
    let fixture = Fixture::s3().await;
    let now = jiff::Timestamp::now();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    write_record(
        &fixture,
        &LockRecord {
            owner: "backup".into(),
            pid: 999_999_999,
            host,
            started_at: now,
            heartbeat_at: now,
            nonce: "dead".into(),
        },
    )
    .await;
    let taken = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
    assert_eq!(taken.record().pid, std::process::id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_without_heartbeat_for_five_minutes_is_taken_over() {
    let fixture = Fixture::s3().await;
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
    write_record(
        &fixture,
        &LockRecord {
            owner: "backup".into(),
            pid: 1,
            host: "another-host".into(),
            started_at: old,
            heartbeat_at: old,
            nonce: "silent".into(),
        },
    )
    .await;
    acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lock_on_another_host_is_respected() {
    let fixture = Fixture::s3().await;
    let now = jiff::Timestamp::now();
    write_record(
        &fixture,
        &LockRecord {
            owner: "backup".into(),
            pid: 1,
            host: "another-host".into(),
            started_at: now,
            heartbeat_at: now,
            nonce: "alive".into(),
        },
    )
    .await;
    let err = acquire(&fixture, "backup", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("on host another-host"),
        "{}",
        err.message()
    );
}
