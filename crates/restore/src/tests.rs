//! A restore job against the test doubles: its plan and its refusals reach neither the
//! store, nor the runtime, nor PostgreSQL (the target names a server that does not exist).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigia_backup::StoreAccess;
use vigia_backup::format::NameKey;
use vigia_core::config::{Secret, SslMode};
use vigia_core::ports::progress::NoProgress;
use vigia_core::testing::{MemoryStore, RecordingRuntime};
use vigia_core::{CancelToken, ErrorKind};
use vigia_pg::{PgTarget, RestoreOptions};

use crate::{HEALTH_TIMEOUT, RestoreJob, RestoreSource, swap_journal_path};

fn job(state: &Path, store: Arc<MemoryStore>, runtime: Arc<RecordingRuntime>) -> RestoreJob {
    RestoreJob {
        access: StoreAccess {
            store,
            name_key: NameKey::from_secret(&Secret::new("ab".repeat(32))).unwrap(),
            identity: None,
        },
        target: PgTarget {
            host: "/nonexistent".into(),
            port: 1,
            user: "nobody".into(),
            password: None,
            bin_dir: None,
            sslmode: SslMode::Disable,
            sslrootcert: None,
        },
        source: RestoreSource::OdooZip(state.join("odoo.zip")),
        target_db: None,
        confirm: None,
        accept_einvoice_loss: false,
        force_sessions: false,
        neutralize: false,
        base_url: None,
        neutralize_sql: Vec::new(),
        trust_zip: false,
        production: true,
        runtime,
        odoo_url: None,
        health_timeout: HEALTH_TIMEOUT,
        filestore_root: None,
        live_db: "odoo".into(),
        options: RestoreOptions {
            jobs: 1,
            no_owner: true,
            role: None,
        },
        spool_dir: state.join("spool"),
        records_dir: state.join("restores"),
        environment: None,
        swap_journal: swap_journal_path(state),
        state_dir: state.to_path_buf(),
        alert_silence: None,
        lock_wait: Duration::ZERO,
        os_lock_dir: None,
        progress: Arc::new(NoProgress),
        cancel: CancelToken::new(),
        dry_run: false,
    }
}

#[tokio::test]
async fn a_refused_restore_touches_no_store_runtime_or_server() {
    let state = tempfile::tempdir().unwrap();
    let (store, runtime) = (
        Arc::new(MemoryStore::default()),
        Arc::new(RecordingRuntime::default()),
    );
    let job = job(state.path(), store.clone(), runtime.clone());
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("needs --confirm odoo"), "{err}");
    assert!(runtime.calls().is_empty(), "{:?}", runtime.calls());
    assert!(store.ops().is_empty(), "{:?}", store.ops());
    assert!(!state.path().join("restores").exists());
}

#[tokio::test]
async fn the_plan_reads_the_runtime_kind_and_calls_nothing() {
    let state = tempfile::tempdir().unwrap();
    let (store, runtime) = (
        Arc::new(MemoryStore::default()),
        Arc::new(RecordingRuntime::default()),
    );
    let mut job = job(state.path(), store.clone(), runtime.clone());
    job.confirm = Some("odoo".into());
    let plan = job.plan().unwrap();
    assert!(plan.swaps());
    assert!(
        plan.steps.iter().any(|s| s == "stop Odoo"),
        "{:?}",
        plan.steps
    );
    assert!(runtime.calls().is_empty());
    assert!(store.ops().is_empty(), "{:?}", store.ops());
    // A dry run's job never runs.
    job.dry_run = true;
    assert_eq!(job.run().await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(runtime.calls().is_empty() && store.ops().is_empty());
}
