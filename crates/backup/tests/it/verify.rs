//! verify at every level against real backups: a good backup passes quick, full and drill
//! (local store and S3); a flipped byte, a deleted object, a truncated dump and a manifest
//! whose counts lie are each reported with the object and what is wrong.

use crate::common::Fixture;
use crate::common::odoo::{Stack, stack};
use vigia_backup::{BackupList, Selection, VerifyLevel, VerifyReport};
use vigia_core::{ErrorKind, Outcome};

fn local_path(fixture: &Fixture, key: &str) -> std::path::PathBuf {
    match fixture {
        Fixture::Local(dir, _) => dir.path().join("store").join(key),
        Fixture::S3(..) => panic!("on-disk faults are for the local store"),
    }
}

async fn verify(s: &Stack, level: VerifyLevel) -> VerifyReport {
    s.verify_job(Some(level), Selection::Newest)
        .run()
        .await
        .unwrap()
}

async fn list(s: &Stack) -> BackupList {
    s.access(false).list_backups().await.unwrap()
}

fn drill_databases(s: &Stack) -> String {
    s.cluster
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'vigia_drill%'",
        )
        .unwrap()
}

async fn good_backup_passes_every_level(fixture: Fixture) {
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    assert!(list(&s).await.backups[0].verified.is_none());

    for level in [VerifyLevel::Quick, VerifyLevel::Full, VerifyLevel::Drill] {
        let report = verify(&s, level).await;
        assert_eq!(report.results.len(), 1);
        let result = &report.results[0];
        assert_eq!((&result.id, result.level), (&backup.id, level));
        assert!(result.ok, "{level}: {:?}", result.problems);
        assert!(report.failure().is_none());
        let verified = list(&s).await.backups[0].verified.clone().unwrap();
        assert_eq!((verified.level, verified.ok), (level, true));
    }
    assert_eq!(
        drill_databases(&s).trim(),
        "",
        "the scratch database is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_backup_passes_every_level_in_the_local_store() {
    good_backup_passes_every_level(Fixture::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_backup_passes_every_level_in_s3() {
    good_backup_passes_every_level(Fixture::s3().await).await;
}

/// The failed result for the newest backup at `level`, with its single problem.
async fn failure(s: &Stack, level: VerifyLevel) -> (String, String) {
    let report = verify(s, level).await;
    let error = report.failure().expect("verification must fail");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    let result = &report.results[0];
    assert!(!result.ok);
    assert_eq!(result.problems.len(), 1, "{:?}", result.problems);
    let p = &result.problems[0];
    (p.object.clone(), p.problem.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_fails_full_naming_the_object() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let index = s.access(false).show_backup(&backup.id).await.unwrap().index;
    let object = index
        .objects
        .iter()
        .find(|o| o.key.starts_with("objects/"))
        .unwrap()
        .key
        .clone();
    let path = local_path(&fixture, &object);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    assert!(
        verify(&s, VerifyLevel::Quick).await.results[0].ok,
        "sizes are intact"
    );
    let (key, problem) = failure(&s, VerifyLevel::Full).await;
    assert_eq!(key, object);
    assert!(problem.starts_with("sha256 mismatch"), "{problem}");
    let verified = list(&s).await.backups[0].verified.clone().unwrap();
    assert_eq!((verified.level, verified.ok), (VerifyLevel::Full, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_object_fails_quick() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    let object = fixture
        .store()
        .list("objects/")
        .await
        .unwrap()
        .remove(3)
        .key;
    fixture.store().delete(&object).await.unwrap();
    let (key, problem) = failure(&s, VerifyLevel::Quick).await;
    assert_eq!(
        (key.as_str(), problem.as_str()),
        (object.as_str(), "missing from the store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_dump_fails_full() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let rows = s.rows_key(&backup.id).await;
    let path = local_path(&fixture, &rows);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (key, problem) = failure(&s, VerifyLevel::Full).await;
    assert_eq!(key, rows);
    assert!(problem.starts_with("size:"), "{problem}");
}

/// Found by review of issue 17: format 1 manifests written before `dump_bytes` existed say 0
/// there; a drill must not read that as "no byte may be restored".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_a_format_1_backup_older_than_dump_bytes_passes() {
    let fixture = Fixture::local();
    let mut s = stack(&fixture);
    s.job.layout = vigia_backup::DumpLayout::OneArchive;
    let backup = s.job.run().await.unwrap();
    s.rewrite_manifest(&backup.id, |m| m.dump_bytes = 0).await;
    let report = verify(&s, VerifyLevel::Drill).await;
    assert!(report.results[0].ok, "{:?}", report.results[0]);
}

/// A manifest that claims one more partner than the dump holds, sealed and indexed as a real
/// one would be: only the drill's restore can catch it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_catches_row_counts_that_do_not_match() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    s.rewrite_manifest(&backup.id, |m| {
        *m.row_counts.get_mut("public.res_partner").unwrap() += 1;
    })
    .await;

    assert!(verify(&s, VerifyLevel::Full).await.results[0].ok);
    let (object, problem) = failure(&s, VerifyLevel::Drill).await;
    assert_eq!(object, s.dump_keys(&backup.id).await[0]);
    assert_eq!(
        problem,
        "table public.res_partner: 51 rows restored, the manifest says 52"
    );
    assert_eq!(drill_databases(&s).trim(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_identity_the_default_is_quick_and_says_so() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    let mut job = s.verify_job(None, Selection::All);
    job.access = s.access(false);
    let report = job.run().await.unwrap();
    assert_eq!(report.results[0].level, VerifyLevel::Quick);
    assert!(
        report.notes[0].contains("no identity"),
        "{:?}",
        report.notes
    );

    let mut job = s.verify_job(Some(VerifyLevel::Full), Selection::Newest);
    job.access = s.access(false);
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(
        err.context().key.as_deref(),
        Some("backup.encryption.identity")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_that_is_not_a_recipient_is_a_crypto_error() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.job.run().await.unwrap();
    std::fs::write(
        s.keys.path().join("identity.key"),
        vigia_backup::Identity::generate().to_file_text(),
    )
    .unwrap();
    let err = s
        .verify_job(Some(VerifyLevel::Full), Selection::Newest)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto);
    assert!(
        err.message().contains("cannot decrypt"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_has_nothing_to_verify() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let err = s
        .verify_job(Some(VerifyLevel::Quick), Selection::Newest)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckFailed);
    let err = s
        .verify_job(Some(VerifyLevel::Quick), Selection::All)
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::CheckFailed,
        "--all of an empty store"
    );
}
