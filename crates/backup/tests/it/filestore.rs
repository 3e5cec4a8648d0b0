//! The incremental filestore: new files uploaded once, unchanged ones never again, damaged
//! and missing files named, and nothing read outside the filestore.

use std::collections::HashMap;
use std::io::Read;

use crate::common::{Fixture, odoo_file};
use vigia_backup::format::NameKey;
use vigia_backup::{FilestoreBackup, FilestoreProblem, Identity, SealedObject, open_sealed};
use vigia_core::ErrorKind;
use vigia_core::config::Secret;

struct Setup {
    fixture: Fixture,
    dir: tempfile::TempDir,
    name_key: NameKey,
    identity: Identity,
    known: std::sync::Mutex<HashMap<String, SealedObject>>,
}

impl Setup {
    fn new() -> Self {
        Self {
            fixture: Fixture::local(),
            dir: tempfile::tempdir().unwrap(),
            name_key: NameKey::from_secret(&Secret::new(hex::encode([9u8; 32]))).unwrap(),
            identity: Identity::generate(),
            known: std::sync::Mutex::default(),
        }
    }

    /// Runs with every object earlier runs stored as known, the way the catalog of earlier
    /// backups' indexes would list them.
    async fn run(
        &self,
        refs: &[String],
        allow_missing: bool,
    ) -> vigia_core::Result<vigia_backup::FilestoreReport> {
        let recipients = self.identity.recipients();
        let known = self.known.lock().unwrap().clone();
        let report = FilestoreBackup {
            store: self.fixture.store(),
            dir: self.dir.path(),
            name_key: &self.name_key,
            recipients: &recipients,
            allow_missing,
        }
        .run(refs, &known)
        .await?;
        let mut known = self.known.lock().unwrap();
        known.extend(report.objects.iter().map(|o| (o.key.clone(), o.clone())));
        Ok(report)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_uploads_nothing_and_three_new_files_upload_exactly_three() {
    let s = Setup::new();
    let mut refs: Vec<String> = (0..40)
        .map(|i| odoo_file(s.dir.path(), format!("factura {i}").as_bytes()))
        .collect();
    let first = s.run(&refs, false).await.unwrap();
    assert_eq!((first.files, first.new_files), (40, 40));
    assert!(first.new_bytes > 0);
    let second = s.run(&refs, false).await.unwrap();
    assert_eq!(
        (second.files, second.new_files, second.new_bytes),
        (40, 0, 0)
    );
    refs.extend((40..43).map(|i| odoo_file(s.dir.path(), format!("factura {i}").as_bytes())));
    let third = s.run(&refs, false).await.unwrap();
    assert_eq!((third.files, third.new_files), (43, 3));
    assert_eq!(s.fixture.store().list("objects/").await.unwrap().len(), 43);
    assert_eq!(
        third.objects.len(),
        43,
        "the report lists every object the backup needs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_no_index_knows_are_uploaded_again() {
    let s = Setup::new();
    let refs = vec![odoo_file(s.dir.path(), b"left by a dead run")];
    s.run(&refs, false).await.unwrap();
    s.known.lock().unwrap().clear();
    let again = s.run(&refs, false).await.unwrap();
    assert_eq!(
        again.new_files, 1,
        "an object without a known sha256 is uploaded again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_decrypt_to_the_files_and_names_reveal_nothing() {
    let s = Setup::new();
    let content = b"<FacturaElectronica>secreta</FacturaElectronica>".to_vec();
    let store_fname = odoo_file(s.dir.path(), &content);
    let report = s
        .run(std::slice::from_ref(&store_fname), false)
        .await
        .unwrap();
    let entry = &report.entries[0];
    assert!(
        !entry.object.contains(&entry.sha1),
        "object names are keyed, not the sha1"
    );
    let mut reader = open_sealed(s.fixture.store(), &entry.object, &s.identity)
        .await
        .unwrap();
    let back = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert_eq!(back, content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_referenced_twice_is_uploaded_once() {
    let s = Setup::new();
    let store_fname = odoo_file(s.dir.path(), b"same");
    let report = s
        .run(&[store_fname.clone(), store_fname], false)
        .await
        .unwrap();
    assert_eq!(report.new_files, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_damaged_files_are_named_and_fail_the_run() {
    let s = Setup::new();
    let good = odoo_file(s.dir.path(), b"good");
    let damaged = odoo_file(s.dir.path(), b"original");
    std::fs::write(s.dir.path().join(&damaged), b"changed on disk").unwrap();
    let missing = "aa/aa00000000000000000000000000000000000000".to_owned();
    let refs = [good, damaged.clone(), missing.clone()];
    let err = s.run(&refs, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(
        err.message().contains(&format!("{missing} (missing)")),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains(&format!("{damaged} (damaged")),
        "{}",
        err.message()
    );
    assert!(err.message().contains("--allow-missing-files"));
    assert!(
        s.fixture.store().list("objects/").await.unwrap().is_empty(),
        "nothing uploaded"
    );

    let report = s.run(&refs, true).await.unwrap();
    assert_eq!((report.files, report.new_files), (1, 1));
    assert_eq!(report.problems.len(), 2);
    assert!(report.problems.contains(&FilestoreProblem::Missing {
        store_fname: missing
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fname_outside_the_filestore_is_refused() {
    let s = Setup::new();
    let err = s
        .run(&["../../../etc/passwd".to_owned()], true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.message().contains("refusing it"), "{}", err.message());
}

/// Odoo's user owns the filestore: a link planted there, even to a file whose bytes match
/// its name, is never followed (regression: it was, file and folder alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_the_filestore_are_not_followed() {
    let s = Setup::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = odoo_file(elsewhere.path(), b"readable by root only");
    let (folder, _) = outside.split_once('/').unwrap();
    std::fs::create_dir_all(s.dir.path().join(folder)).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join(&outside), s.dir.path().join(&outside))
        .unwrap();
    let err = s
        .run(std::slice::from_ref(&outside), true)
        .await
        .unwrap_err();
    assert!(err.message().contains("link"), "{err}");
    assert!(err.message().contains(&outside), "{err}");

    let s = Setup::new();
    let linked_folder = odoo_file(elsewhere.path(), b"another");
    let (folder, _) = linked_folder.split_once('/').unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join(folder), s.dir.path().join(folder)).unwrap();
    let err = s.run(&[linked_folder], true).await.unwrap_err();
    assert!(err.message().contains("link"), "{err}");
    assert!(s.fixture.store().list("objects/").await.unwrap().is_empty());
}

/// Odoo's user rewrites files while the backup runs: what is uploaded must be what was
/// hashed (regression: the file was opened again by path and read unchecked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_before_its_upload_fails_the_run() {
    let s = Setup::new();
    let refs: Vec<String> = (0..30)
        .map(|i| odoo_file(s.dir.path(), format!("adjunto {i:02}").as_bytes()))
        .collect();
    let dir = s.dir.path().to_path_buf();
    let names = refs.clone();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // At the first upload, every file is rewritten in place, same size, other bytes: the
    // uploads still to come read the new bytes.
    let store = crate::common::hooked::Hooked::wrap(
        s.fixture.shared_store(),
        std::sync::Arc::new(move |op, key| {
            if op == "put"
                && key.starts_with("objects/")
                && !fired.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                for name in &names {
                    std::fs::write(dir.join(name), b"REWRITTEN!").unwrap();
                }
            }
            Box::pin(async {})
        }),
    );
    let recipients = s.identity.recipients();
    let err = FilestoreBackup {
        store: store.as_ref(),
        dir: s.dir.path(),
        name_key: &s.name_key,
        recipients: &recipients,
        allow_missing: false,
    }
    .run(&refs, &HashMap::new())
    .await
    .unwrap_err();
    assert!(err.message().contains("changed while"), "{err}");
}
