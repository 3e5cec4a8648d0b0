//! A store written by someone holding the name key (every backup host has it) and the public
//! key (issue 9): manifests naming files outside the filestore, indexes copied over other
//! backups' keys, and dumps the index does not vouch for are refused before they act.

mod common;

use std::path::{Path, PathBuf};

use common::Fixture;
use common::odoo::{Stack, databases, stack};
use vigia_backup::format::{BackupId, index_key, manifest_key};
use vigia_backup::{Selection, VerifyLevel};
use vigia_core::ErrorKind;

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(entry.path().strip_prefix(dir).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// A backup whose re-sealed manifest names three hostile entries: an absolute path under
/// `outside`, `../../../etc/x`, and a well-formed name whose sha1 is not the entry's.
/// Returns the backup and the three names.
async fn backup_with_hostile_names(s: &Stack, outside: &Path) -> (BackupId, [String; 3]) {
    let id = s.job.run().await.unwrap().id;
    let absolute = format!("{}/planted", outside.display());
    let climbing = "../../../etc/x".to_owned();
    let mut other_sha1 = String::new();
    s.rewrite_manifest(&id, |m| {
        m.filestore[0].store_fname.clone_from(&absolute);
        m.filestore[1].store_fname.clone_from(&climbing);
        let sha1 = &m.filestore[2].sha1;
        let last = if sha1.ends_with('0') { "1" } else { "0" };
        other_sha1 = format!("{}{last}", &sha1[..39]);
        m.filestore[2].store_fname = format!("{}/{other_sha1}", &other_sha1[..2]);
    })
    .await;
    let mismatched = format!("{}/{other_sha1}", &other_sha1[..2]);
    (id, [absolute, climbing, mismatched])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_names_every_manifest_entry_that_is_not_an_odoo_filestore_name() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let outside = tempfile::tempdir().unwrap();
    let (id, names) = backup_with_hostile_names(&s, outside.path()).await;

    let report = s
        .verify_job(Some(VerifyLevel::Full), Selection::Newest)
        .run()
        .await
        .unwrap();
    let result = &report.results[0];
    assert!(!result.ok, "a hostile manifest must not verify");
    let problem = &result.problems[0];
    assert_eq!(problem.object, manifest_key(&id));
    for name in &names {
        assert!(
            problem.problem.contains(name),
            "{name}: {}",
            problem.problem
        );
    }

    let err = s.access(true).show_backup(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_a_manifest_with_hostile_names_creates_nothing() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let outside = tempfile::tempdir().unwrap();
    let (id, names) = backup_with_hostile_names(&s, outside.path()).await;
    // `root/odoo_restored/../../../etc/x` is `outside/etc/x`.
    let root = outside.path().join("a/b");
    std::fs::create_dir_all(&root).unwrap();

    let err = s
        .restore_job(&id, "odoo_restored", &root)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    assert!(err.message().contains(&names[0]), "{}", err.message());
    assert_eq!(
        tree(outside.path()),
        [PathBuf::from("a"), PathBuf::from("a/b")],
        "nothing written"
    );
    assert!(!databases(&s).contains("odoo_restored"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_index_copied_over_the_newest_is_damaged_and_does_not_hide_it() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let old = s.job.run().await.unwrap().id;
    let newest = s.job.run().await.unwrap().id;
    let old_index = fixture.store().get_bytes(&index_key(&old)).await.unwrap();
    fixture
        .store()
        .put_bytes(&index_key(&newest), old_index.into())
        .await
        .unwrap();

    let list = s.access(false).list_backups().await.unwrap();
    let ids: Vec<&BackupId> = list.backups.iter().map(|b| &b.id).collect();
    assert_eq!(ids, [&old], "the copy is not listed as a backup");
    assert_eq!(list.damaged.len(), 1, "{:?}", list.damaged);
    assert_eq!(list.damaged[0].key, index_key(&newest));
    assert!(
        list.damaged[0]
            .problem
            .contains(&format!("describes backup {old}")),
        "{}",
        list.damaged[0].problem
    );

    let err = s.access(false).read_index(&newest).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    let report = s
        .verify_job(Some(VerifyLevel::Quick), Selection::One(newest.clone()))
        .run()
        .await
        .unwrap();
    assert_eq!(report.results.len(), 1);
    assert!(!report.results[0].ok);
}
