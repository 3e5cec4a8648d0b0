//! Odoo's user owns `<data-dir>/filestore` and may plant links there. Regression (issue 9 item
//! 3): a dangling link planted as the restore's folder, whose target appeared while the dump
//! spooled, made the restore write every file into the planted folder. A restore (from a
//! backup or an Odoo zip) now writes nothing through a link.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{Stack, stack};
use vigia_restore::RestoreSource;
use vigia_sandbox::odoo::{OdooDump, ZipManifest};

/// Plants `root/<name>` -> a new folder as soon as the dump's spool file appears (after the
/// restore checked that its folder does not exist, before it makes it).
fn plant_link_while_spooling(
    s: &Stack,
    root: &Path,
    name: &str,
) -> (PathBuf, std::thread::JoinHandle<bool>) {
    let planted = tempfile::tempdir().unwrap().keep();
    let (link, target) = (root.join(name), planted.clone());
    let spool = s.keys.path().join("spool");
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_mins(1);
        while !std::fs::read_dir(&spool).is_ok_and(|mut d| d.next().is_some())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        // False when the restore made its folder first (the race was lost, not the test).
        std::os::unix::fs::symlink(&target, &link).is_ok()
    });
    (planted, watcher)
}

fn files_in(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_planted_while_the_dump_spools_gets_no_file() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (planted, watcher) = plant_link_while_spooling(&s, root.path(), "odoo_restored");
    let result = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await;
    let planted_in_time = watcher.join().unwrap();
    assert_eq!(
        files_in(&planted),
        0,
        "files written through the link: {result:?}"
    );
    if planted_in_time {
        assert!(
            result.is_err(),
            "the restore cannot use a folder it did not make"
        );
    }
}

/// The zip import makes its folder the same way: a link in the way is refused, nothing is
/// written through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_import_writes_nothing_through_a_link() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("odoo.zip");
    OdooDump::new(
        &s.cluster,
        "odoo",
        Some(s.filestore.path()),
        &ZipManifest::default(),
    )
    .unwrap()
    .zip(&zip, true)
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let planted = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(planted.path(), root.path().join("odoo_from_zip")).unwrap();
    let mut job = s.restore_job(
        &"20261128T000000Z-abcd".parse().unwrap(),
        "odoo_from_zip",
        root.path(),
    );
    job.source = RestoreSource::OdooZip(zip);
    let err = job.run().await.unwrap_err();
    assert!(
        err.message().contains("already exists"),
        "{}",
        err.message()
    );
    assert_eq!(files_in(planted.path()), 0);
}

/// A link already there is refused before anything is created (it does not "not exist").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_link_in_the_way_is_refused_before_anything_is_created() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        "/nonexistent/vigia-planted",
        root.path().join("odoo_restored"),
    )
    .unwrap();
    let err = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        vigia_core::ErrorKind::InvalidInput,
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("already exists"),
        "{}",
        err.message()
    );
}

/// Found by review of issue 9: Odoo's user, who may own the data dir, swaps the filestore root
/// itself for a link; the restore then wrote its folder where the link pointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filestore_root_that_is_a_link_gets_no_folder() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = data.path().join("filestore");
    std::os::unix::fs::symlink(elsewhere.path(), &root).unwrap();
    let err = s
        .restore_job(&backup.id, "odoo_restored", &root)
        .run()
        .await
        .unwrap_err();
    assert!(err.message().contains("is a link"), "{}", err.message());
    assert_eq!(files_in(elsewhere.path()), 0);
    assert!(!elsewhere.path().join("odoo_restored").exists());
}
