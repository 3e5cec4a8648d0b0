//! The S3 store against a server that fails on purpose (500, 503 SlowDown, dropped
//! connections): transient faults are retried and the work completes; a server that keeps
//! failing gives a clear error and leaves no object.

use crate::common::{Fixture, PatternReader, check_pattern};
use vigia_backup::PART_SIZE;
use vigia_core::ports::store::StoreError;
use vigia_sandbox::s3::{Fault, FaultPlan};

async fn survives(fault: Fault, every: u64) {
    let fixture = Fixture::s3().await;
    let server = fixture.s3_server();
    let store = fixture.store();
    server.set_faults(Some(FaultPlan { every, fault }));
    let len = 2 * PART_SIZE as u64 + 1000;
    store
        .put("big/dump.age", Box::pin(PatternReader::new(len)))
        .await
        .unwrap();
    store
        .put("small/index.json", Box::pin(PatternReader::new(300)))
        .await
        .unwrap();
    assert_eq!(store.head("big/dump.age").await.unwrap().size_bytes, len);
    assert_eq!(store.list("").await.unwrap().len(), 2);
    assert_eq!(
        check_pattern(store.get("small/index.json", None).await.unwrap(), 0).await,
        300
    );
    assert!(
        server.faults_injected() >= 3,
        "faults were injected: {}",
        server.faults_injected()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried() {
    survives(Fault::SlowDown, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_are_retried() {
    survives(Fault::InternalError, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried() {
    survives(Fault::Reset, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_gives_a_clear_error_and_no_object() {
    let fixture = Fixture::s3().await;
    let server = fixture.s3_server();
    server.set_faults(Some(FaultPlan {
        every: 1,
        fault: Fault::SlowDown,
    }));
    let err = fixture
        .store()
        .put("backups/x/index.json", Box::pin(PatternReader::new(100)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Backend { action: "put", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("SlowDown"), "{err}");
    assert_eq!(server.faults_injected(), 8, "eight attempts, then give up");
    server.set_faults(None);
    assert!(
        fixture
            .store()
            .head("backups/x/index.json")
            .await
            .unwrap_err()
            .is_not_found()
    );
}
