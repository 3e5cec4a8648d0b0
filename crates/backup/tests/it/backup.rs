//! A whole backup against a real PostgreSQL and filestore, to the local store and to S3:
//! the index is the commit, the second run uploads no filestore bytes, the manifest holds
//! the snapshot's counts, nothing secret is stored in the clear.

use std::sync::Arc;

use crate::common::odoo::{SECRET_FILE, SECRET_ROW, attach, read_all, stack};
use crate::common::{Fixture, odoo_file};
use vigia_backup::format::{
    BackupManifest, DumpObjects, NAME_KEY_KEY, SealedObject, index_key, manifest_key,
};
use vigia_backup::{Catalog, DumpLayout, Selection, VerifyLevel};
use vigia_sandbox::s3::{Fault, FaultPlan};

async fn backup_round(fixture: Fixture) {
    let s = stack(&fixture);
    let first = s.job.run().await.unwrap();
    assert_eq!((first.filestore.files, first.filestore.new_files), (31, 31));

    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    assert_eq!(catalog.backups.len(), 1);
    let index = &catalog.backups[0];
    assert_eq!(index.id, first.id);
    assert_eq!(index.format, s.job.layout.format());
    let dump = DumpObjects::of(index).unwrap().all();
    assert_eq!(
        index.objects.len(),
        dump.len() + 2 + 31,
        "the dump's objects, manifest, extra and every filestore object"
    );
    assert_eq!(index.size_bytes(), first.size_bytes);
    dump_holds_rows_where_its_format_says(&fixture, &s, &dump).await;

    let manifest: BackupManifest = s
        .job
        .name_key
        .open(
            &read_all(&fixture, &manifest_key(&first.id), &s.identity).await,
            "manifest",
        )
        .unwrap();
    assert_eq!(manifest.row_counts["public.res_partner"], 51);
    assert_eq!(manifest.row_counts["public.ir_attachment"], 31);
    assert_eq!(manifest.filestore.len(), 31);
    assert_eq!(manifest.modules["base"], "19.0.1.3");
    let name_key_copy = read_all(&fixture, NAME_KEY_KEY, &s.identity).await;
    assert_eq!(
        String::from_utf8(name_key_copy).unwrap().trim(),
        s.job.name_key.to_hex().as_str()
    );

    let second = s.job.run().await.unwrap();
    assert_eq!(
        (second.filestore.new_files, second.filestore.new_bytes),
        (0, 0),
        "unchanged filestore: 0 bytes"
    );
    let added: Vec<String> = (0..3)
        .map(|i| odoo_file(s.filestore.path(), format!("nuevo {i}").as_bytes()))
        .collect();
    attach(&s.cluster, &added);
    let third = s.job.run().await.unwrap();
    assert_eq!(third.filestore.new_files, 3);
    assert_eq!(
        Catalog::read(fixture.store(), &s.job.name_key)
            .await
            .unwrap()
            .backups
            .len(),
        3
    );

    for meta in fixture.store().list("").await.unwrap() {
        let bytes = fixture.store().get_bytes(&meta.key).await.unwrap();
        assert!(
            !contains(&bytes, SECRET_ROW.as_bytes()),
            "{} holds a row in the clear",
            meta.key
        );
        assert!(
            !contains(&bytes, SECRET_FILE),
            "{} holds a file in the clear",
            meta.key
        );
    }
}

/// Format 1: the one archive holds the rows; format 2: the schema holds none and exactly one
/// data stream holds the secret row (its table's rows are in one stream only).
async fn dump_holds_rows_where_its_format_says(
    fixture: &Fixture,
    s: &crate::common::odoo::Stack,
    dump: &[&SealedObject],
) {
    let mut holding = Vec::new();
    for object in dump {
        let plain = read_all(fixture, &object.key, &s.identity).await;
        assert!(
            plain.starts_with(b"PGDMP"),
            "{}: a pg_dump archive",
            object.key
        );
        if contains(&plain, SECRET_ROW.as_bytes()) {
            holding.push(object.key.clone());
        }
    }
    let expected = match s.job.layout {
        DumpLayout::OneArchive => vec![dump[0].key.clone()],
        DumpLayout::Parts { streams } => {
            assert_eq!(
                dump.len(),
                1 + streams,
                "the schema and {streams} data streams"
            );
            assert!(dump[0].key.ends_with("/schema.age"));
            assert_eq!(holding.len(), 1, "{holding:?}");
            vec![holding[0].clone()]
        }
    };
    assert_eq!(holding, expected);
    assert!(!holding[0].ends_with("/schema.age"));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_the_local_store() {
    backup_round(Fixture::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_s3() {
    backup_round(Fixture::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_not_listed() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    std::fs::remove_file(s.filestore.path().join(&s.files[0])).unwrap();
    let err = s.job.run().await.unwrap_err();
    assert!(err.message().contains("(missing)"), "{}", err.message());
    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    assert!(catalog.backups.is_empty(), "no index, no backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_index_is_reported_damaged() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let report = s.job.run().await.unwrap();
    let key = index_key(&report.id);
    let text = String::from_utf8(fixture.store().get_bytes(&key).await.unwrap()).unwrap();
    let tampered = text.replacen("\"database\":\"odoo\"", "\"database\":\"odoo2\"", 1);
    assert_ne!(text, tampered);
    fixture
        .store()
        .put_bytes(&key, tampered.into_bytes().into())
        .await
        .unwrap();
    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    assert!(catalog.backups.is_empty());
    assert_eq!(catalog.damaged.len(), 1);
    assert!(
        catalog.damaged[0].1.contains("mac does not match"),
        "{:?}",
        catalog.damaged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_fails_clearly_while_the_store_is_locked() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let held = vigia_backup::StoreLock::acquire(
        Arc::clone(&s.job.store),
        &s.job.name_key,
        &vigia_backup::LockRequest::new(
            "prune",
            std::time::Duration::ZERO,
            s.job.os_lock_dir.as_deref(),
        ),
    )
    .await
    .unwrap();
    let err = s.job.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked);
    assert!(
        err.message()
            .contains(&format!("prune (pid {}", std::process::id())),
        "{}",
        err.message()
    );
    held.release().await.unwrap();
    s.job.run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backup_stores_no_index_and_releases_the_lock() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.cancel.cancel();
    let err = s.job.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Cancelled);
    assert!(
        Catalog::read(fixture.store(), &s.job.name_key)
            .await
            .unwrap()
            .backups
            .is_empty()
    );
    s.job.cancel.reset();
    s.job.run().await.expect("the lock was released");
}

/// A whole backup against an S3 server failing every third request (500, 503, dropped
/// connections): retried, completed, and every object reads back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_through_a_faulty_s3_server_completes_and_verifies() {
    for fault in [Fault::InternalError, Fault::SlowDown, Fault::Reset] {
        let fixture = Fixture::s3().await;
        let s = stack(&fixture);
        fixture
            .s3_server()
            .set_faults(Some(FaultPlan { every: 3, fault }));
        let report = s.job.run().await.unwrap();
        assert!(fixture.s3_server().faults_injected() > 5, "{fault:?}");
        fixture.s3_server().set_faults(None);
        let verify = s
            .verify_job(Some(VerifyLevel::Full), Selection::One(report.id))
            .run()
            .await
            .unwrap();
        assert!(verify.results[0].ok, "{fault:?}: {:?}", verify.results[0]);
    }
}

/// A server that fails every request: the backup fails clearly and nothing is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_to_a_failing_s3_server_fails_clearly_and_is_not_listed() {
    let fixture = Fixture::s3().await;
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    fixture.s3_server().set_faults(Some(FaultPlan {
        every: 1,
        fault: Fault::InternalError,
    }));
    let err = s.job.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Storage, "{err}");
    assert!(err.message().contains("InternalError"), "{}", err.message());
    fixture.s3_server().set_faults(None);
    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    assert_eq!(catalog.backups.len(), 1, "only the first, complete backup");
}

/// Runs `action` once, the first time the job writes its manifest (after the dump and the
/// filestore, before the index).
fn at_manifest<F>(
    inner: Arc<dyn vigia_core::ports::store::ObjectStore>,
    action: F,
) -> Arc<dyn vigia_core::ports::store::ObjectStore>
where
    F: Fn(
            Arc<dyn vigia_core::ports::store::ObjectStore>,
        ) -> futures::future::BoxFuture<'static, ()>
        + Send
        + Sync
        + 'static,
{
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let target = Arc::clone(&inner);
    crate::common::hooked::Hooked::wrap(
        inner,
        Arc::new(move |op, key| {
            let now = op == "put"
                && key.ends_with("/manifest.age")
                && !fired.swap(true, std::sync::atomic::Ordering::SeqCst);
            if now {
                action(Arc::clone(&target))
            } else {
                Box::pin(async {})
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_lock_was_taken_over_writes_no_index() {
    let fixture = Fixture::s3().await;
    let mut s = stack(&fixture);
    let name_key = s.job.name_key.clone();
    s.job.store = at_manifest(fixture.shared_store(), move |store| {
        let name_key = name_key.clone();
        Box::pin(
            async move { crate::common::take_lock_over(store.as_ref(), &name_key, "backup").await },
        )
    });
    let err = s.job.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked, "{err}");
    assert!(
        err.message()
            .contains("taken over by backup (pid 1 on host another-host"),
        "{err}"
    );
    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    assert!(
        catalog.backups.is_empty(),
        "no index: the backup does not exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_object_removed_during_a_backup_keeps_its_index_out() {
    let fixture = Fixture::local();
    let mut s = stack(&fixture);
    let first = s.job.run().await.unwrap();
    let victim = fixture.store().list("objects/").await.unwrap()[0]
        .key
        .clone();
    let gone = victim.clone();
    // A prune that ran without the lock (a store ignoring conditional writes) collects it.
    s.job.store = at_manifest(fixture.shared_store(), move |store| {
        let gone = gone.clone();
        Box::pin(async move { store.delete(&gone).await.unwrap() })
    });
    let err = s.job.run().await.unwrap_err();
    assert!(err.message().contains(&victim), "{err}");
    assert!(err.message().contains("run it again"), "{err}");
    let catalog = Catalog::read(fixture.store(), &s.job.name_key)
        .await
        .unwrap();
    let ids: Vec<_> = catalog.backups.iter().map(|b| b.id.clone()).collect();
    assert_eq!(ids, [first.id], "the second backup has no index");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_probe_a_killed_run_left_is_swept_by_the_next_backup() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let store = fixture.store();
    for name in ["locks/clock-old", "locks/clock-fresh"] {
        store.put_bytes(name, b"{}".to_vec().into()).await.unwrap();
    }
    let Fixture::Local(dir, _) = &fixture else {
        unreachable!()
    };
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("store/locks/clock-old"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_hours(2))
        .unwrap();
    s.job.run().await.unwrap();
    let left: Vec<String> = store
        .list("locks/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(left, ["locks/clock-fresh"], "only the old probe goes");
}
