//! The store lock on an in-memory store (conditional writes honoured) and on one that fails:
//! no server.

use std::sync::Arc;
use std::time::Duration;

use vigia_core::ErrorKind;
use vigia_core::config::Secret;
use vigia_core::ports::store::ObjectStore;
use vigia_core::testing::{FaultyStore, MemoryStore};

use super::{LockRequest, StoreLock};
use crate::format::NameKey;

fn name_key() -> NameKey {
    NameKey::from_secret(&Secret::new("cd".repeat(32))).unwrap()
}

fn request(owner: &str) -> LockRequest {
    LockRequest::new(owner, Duration::ZERO, None)
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_lock_is_free_once_released() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
    let held = StoreLock::acquire(Arc::clone(&store), &name_key(), &request("backup"))
        .await
        .unwrap();
    let refused = StoreLock::acquire(Arc::clone(&store), &name_key(), &request("prune"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Locked);
    assert!(refused.message().contains("backup"), "{refused}");
    held.ensure_held().await.unwrap();
    held.release().await.unwrap();
    StoreLock::acquire(store, &name_key(), &request("prune"))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_store_that_answers_503_is_an_error_and_holds_no_lock() {
    let memory = Arc::new(MemoryStore::default());
    let faulty = Arc::new(FaultyStore::new(memory.clone()));
    faulty.set_unavailable(true);
    let err = StoreLock::acquire(faulty, &name_key(), &request("backup"))
        .await
        .unwrap_err();
    assert!(err.message().contains("503"), "{err}");
    assert!(memory.keys().is_empty(), "{:?}", memory.keys());
}

/// The first put is the lock record; the next ones probe that the store honours
/// conditional writes. Whichever fails, no record is left to block the next run.
#[tokio::test]
async fn a_failed_write_during_acquisition_leaves_no_record() {
    for nth in 1..=3 {
        let memory = Arc::new(MemoryStore::default());
        let faulty = Arc::new(FaultyStore::new(memory.clone()));
        faulty.fail_put(nth);
        let err = StoreLock::acquire(faulty, &name_key(), &request("backup"))
            .await
            .unwrap_err();
        assert!(err.message().contains("injected"), "put {nth}: {err}");
        let records: Vec<String> = memory
            .keys()
            .into_iter()
            .filter(|k| !k.starts_with("locks/clock-"))
            .collect();
        assert!(records.is_empty(), "put {nth}: {records:?}");
    }
}
