//! prune against real backups: the plan, then the deletions; the newest verified backup
//! survives any policy; unreferenced filestore objects go only after the grace period; the
//! leftovers of dead runs are swept; a damaged index stops object collection.

use std::time::Duration;

use crate::common::Fixture;
use crate::common::odoo::{Stack, stack};
use jiff::{SignedDuration, Timestamp};
use vigia_backup::format::{BackupId, index_key};
use vigia_backup::{Selection, VerifyLevel};

const DAYS_2: Duration = Duration::from_hours(48);

fn ids(list: &[BackupId]) -> Vec<&str> {
    list.iter().map(BackupId::as_str).collect()
}

async fn listed(s: &Stack) -> Vec<String> {
    s.access(false)
        .list_backups()
        .await
        .unwrap()
        .backups
        .into_iter()
        .map(|b| b.id.as_str().to_owned())
        .collect()
}

fn later(hours: i64) -> Timestamp {
    Timestamp::now()
        .checked_add(SignedDuration::from_hours(hours))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_verified_backup_survives_a_policy_that_would_delete_it() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let first = s.job.run().await.unwrap().id;
    let report = s
        .verify_job(Some(VerifyLevel::Full), Selection::One(first.clone()))
        .run()
        .await
        .unwrap();
    assert!(report.results[0].ok);
    let second = s.job.run().await.unwrap().id;
    let third = s.job.run().await.unwrap().id;

    let plan = s
        .prune_job([1, 0, 0, 0], DAYS_2, later(0), true)
        .run()
        .await
        .unwrap();
    assert!(!plan.applied);
    assert_eq!(ids(&plan.keep), [first.as_str(), third.as_str()]);
    assert_eq!(ids(&plan.delete), [second.as_str()]);
    assert_eq!(plan.reasons[&first], ["newest verified"]);
    assert_eq!(plan.reasons[&third], ["newest", "last 1"]);
    assert_eq!(listed(&s).await.len(), 3, "a dry run deletes nothing");

    let applied = s
        .prune_job([1, 0, 0, 0], DAYS_2, later(0), false)
        .run()
        .await
        .unwrap();
    assert!(applied.applied);
    assert_eq!(ids(&applied.delete), [second.as_str()]);
    assert_eq!(
        applied.objects_deleted, plan.objects_deleted,
        "the plan is what was applied"
    );
    assert_eq!(listed(&s).await, [first.as_str(), third.as_str()]);
    assert!(
        fixture
            .store()
            .list(&format!("backups/{second}/"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unreferenced_objects_wait_for_the_grace_period(fixture: Fixture) {
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    // The next backups no longer reference one file.
    let gone = &s.files[0];
    s.cluster
        .psql(
            "odoo",
            &format!("DELETE FROM ir_attachment WHERE store_fname = '{gone}'"),
        )
        .unwrap();
    s.job.run().await.unwrap();
    let objects_before = fixture.store().list("objects/").await.unwrap().len();

    // Within the grace period: the old backup goes, its unique object stays.
    let report = s
        .prune_job([1, 0, 0, 0], DAYS_2, later(1), false)
        .run()
        .await
        .unwrap();
    assert_eq!(report.delete.len(), 1);
    assert_eq!(report.objects_in_grace, 1);
    let objects = fixture.store().list("objects/").await.unwrap().len();
    assert_eq!(objects, objects_before);

    // Three days later it is collected, and only it.
    let report = s
        .prune_job([1, 0, 0, 0], DAYS_2, later(72), false)
        .run()
        .await
        .unwrap();
    assert_eq!((report.delete.len(), report.objects_deleted), (0, 1));
    assert!(report.bytes_freed > 0);
    let objects = fixture.store().list("objects/").await.unwrap().len();
    assert_eq!(objects, objects_before - 1);
    let verify = s
        .verify_job(Some(VerifyLevel::Full), Selection::All)
        .run()
        .await
        .unwrap();
    assert!(verify.results.iter().all(|r| r.ok), "{verify:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_objects_wait_for_the_grace_period_in_the_local_store() {
    unreferenced_objects_wait_for_the_grace_period(Fixture::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_objects_wait_for_the_grace_period_in_s3() {
    unreferenced_objects_wait_for_the_grace_period(Fixture::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_dead_run_are_swept_after_the_grace_period() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    let dead = "backups/20261101T000000Z-dead/dump.age";
    fixture
        .store()
        .put_bytes(dead, vec![7u8; 1000].into())
        .await
        .unwrap();
    let young = s
        .prune_job([7, 14, 8, 12], DAYS_2, later(1), false)
        .run()
        .await
        .unwrap();
    assert!(young.swept.is_empty());
    let old = s
        .prune_job([7, 14, 8, 12], DAYS_2, later(72), false)
        .run()
        .await
        .unwrap();
    assert_eq!(old.swept, ["backups/20261101T000000Z-dead/"]);
    assert_eq!((old.objects_deleted, old.bytes_freed), (1, 1000));
    assert!(fixture.store().head(dead).await.unwrap_err().is_not_found());
    assert_eq!(listed(&s).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_index_stops_object_collection() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let first = s.job.run().await.unwrap().id;
    s.job.run().await.unwrap();
    let key = index_key(&first);
    let text = String::from_utf8(fixture.store().get_bytes(&key).await.unwrap()).unwrap();
    fixture
        .store()
        .put_bytes(&key, text.replacen("odoo", "odoo2", 1).into_bytes().into())
        .await
        .unwrap();
    let report = s
        .prune_job([1, 0, 0, 0], Duration::ZERO, later(72), false)
        .run()
        .await
        .unwrap();
    assert_eq!(report.objects_deleted, 0);
    assert!(report.notes[0].contains("damaged"), "{:?}", report.notes);
    assert!(
        fixture.store().head(&key).await.is_ok(),
        "a damaged index is left for a person"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_whose_lock_was_taken_over_deletes_nothing() {
    let fixture = Fixture::s3().await;
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    s.job.run().await.unwrap();
    let mut prune = s.prune_job([1, 0, 0, 0], Duration::ZERO, later(1), false);
    let name_key = s.job.name_key.clone();
    let inner = fixture.shared_store();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // While the prune plans, another host judges its lock stale and takes it over.
    prune.access.store = crate::common::hooked::Hooked::wrap(
        fixture.shared_store(),
        std::sync::Arc::new(move |op, prefix| {
            let now = op == "list"
                && prefix == "objects/"
                && !fired.swap(true, std::sync::atomic::Ordering::SeqCst);
            let (store, name_key) = (std::sync::Arc::clone(&inner), name_key.clone());
            Box::pin(async move {
                if now {
                    crate::common::take_lock_over(store.as_ref(), &name_key, "prune").await;
                }
            })
        }),
    );
    let err = prune.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked, "{err}");
    assert_eq!(
        listed(&s).await.len(),
        2,
        "nothing was deleted after the loss"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_and_a_verify_never_overlap() {
    let fixture = Fixture::s3().await;
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    s.job.run().await.unwrap();
    let store = fixture.shared_store();
    let key = s.job.name_key.clone();
    let ask = |owner: &str| vigia_backup::LockRequest::new(owner, Duration::ZERO, None);

    // A verify reading the store: a prune deletes nothing and names it.
    let reading = vigia_backup::ReadLock::acquire(store.clone(), &key, &ask("verify"))
        .await
        .unwrap();
    let err = s
        .prune_job([1, 0, 0, 0], Duration::ZERO, later(1), false)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked, "{err}");
    assert!(err.message().contains("being read by verify (pid"), "{err}");
    assert_eq!(listed(&s).await.len(), 2);
    reading.release().await.unwrap();

    // A prune holding the store: a verify does not start; a backup's hold does not stop it.
    let pruning = vigia_backup::StoreLock::acquire(store.clone(), &key, &ask("prune"))
        .await
        .unwrap();
    let err = s.verify_job(None, Selection::All).run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked, "{err}");
    assert!(
        err.message().contains("being pruned by prune (pid"),
        "{err}"
    );
    pruning.release().await.unwrap();
    let backing_up = vigia_backup::StoreLock::acquire(store.clone(), &key, &ask("backup"))
        .await
        .unwrap();
    let report = s.verify_job(None, Selection::All).run().await.unwrap();
    assert!(report.results.iter().all(|r| r.ok));
    backing_up.release().await.unwrap();
    assert!(
        store.list("locks/").await.unwrap().is_empty(),
        "every hold is released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_verify_does_not_block_a_prune() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    s.job.run().await.unwrap();
    let now = Timestamp::now();
    let dead = vigia_backup::LockRecord {
        owner: "verify".into(),
        process: vigia_core::process::ProcessIdentity {
            pid: 999_999_999,
            ..vigia_core::process::ProcessIdentity::current()
        },
        started_at: now,
        heartbeat_at: now,
        nonce: "dead".into(),
    };
    let sealed = s.job.name_key.seal(&dead).unwrap();
    fixture
        .store()
        .put_bytes("locks/readers/dead.json", sealed.into())
        .await
        .unwrap();
    let report = s
        .prune_job([1, 0, 0, 0], Duration::ZERO, later(1), false)
        .run()
        .await
        .unwrap();
    assert_eq!(report.delete.len(), 1);
    assert!(
        fixture
            .store()
            .list("locks/readers/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_whose_hold_was_removed_records_nothing() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    let mut verify = s.verify_job(None, Selection::All);
    let inner = fixture.shared_store();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // While it reads, a prune judges the verify dead (a VM paused for ten minutes) and
    // removes its hold: what it read may be deleted next.
    verify.access.store = crate::common::hooked::Hooked::wrap(
        fixture.shared_store(),
        std::sync::Arc::new(move |op, prefix| {
            let now = op == "list"
                && prefix == "backups/"
                && !fired.swap(true, std::sync::atomic::Ordering::SeqCst);
            let store = std::sync::Arc::clone(&inner);
            Box::pin(async move {
                if now {
                    for reader in store.list("locks/readers/").await.unwrap() {
                        store.delete(&reader.key).await.unwrap();
                    }
                }
            })
        }),
    );
    let err = verify.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::Locked, "{err}");
    assert!(err.message().contains("shared hold was lost"), "{err}");
    assert!(
        fixture
            .store()
            .list("verifications/")
            .await
            .unwrap()
            .is_empty(),
        "no result recorded"
    );
}
