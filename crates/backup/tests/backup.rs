//! A whole backup against a real PostgreSQL and filestore, to the local store and to S3:
//! the index is the commit, the second run uploads no filestore bytes, the manifest holds
//! the snapshot's counts, nothing secret is stored in the clear.

mod common;

use std::io::Read;
use std::sync::Arc;

use common::{Fixture, odoo_file};
use vigia_backup::format::{BackupManifest, NAME_KEY_KEY, NameKey, index_key, manifest_key};
use vigia_backup::pg::PgTarget;
use vigia_backup::{BackupJob, Catalog, Identity, open_sealed};
use vigia_core::config::Secret;
use vigia_core::ports::clock::SystemClock;
use vigia_sandbox::postgres::PgCluster;

const SECRET_ROW: &str = "Distribuidora Secreta Limitada";
const SECRET_FILE: &[u8] = b"<Clave>50628112600310112345600100001010000000001100000001</Clave>";

struct Stack {
    cluster: PgCluster,
    filestore: tempfile::TempDir,
    files: Vec<String>,
    identity: Identity,
    job: BackupJob,
}

fn stack(fixture: &Fixture) -> Stack {
    let cluster = PgCluster::start().unwrap();
    cluster.create_database("odoo").unwrap();
    cluster
        .psql("odoo", include_str!("common/odoo.sql"))
        .unwrap();
    cluster
        .psql(
            "odoo",
            &format!("INSERT INTO res_partner (name) VALUES ('{SECRET_ROW}')"),
        )
        .unwrap();
    let filestore = tempfile::tempdir().unwrap();
    let mut files: Vec<String> = (0..30)
        .map(|i| odoo_file(filestore.path(), format!("adjunto {i}").as_bytes()))
        .collect();
    files.push(odoo_file(filestore.path(), SECRET_FILE));
    attach(&cluster, &files);
    let identity = Identity::generate();
    let store: Arc<dyn vigia_core::ports::store::ObjectStore> = match fixture {
        Fixture::Local(_, s) => s.clone(),
        Fixture::S3(_, s) => s.clone(),
    };
    let job = BackupJob {
        store,
        name_key: NameKey::from_secret(&Secret::new(hex::encode([5u8; 32]))).unwrap(),
        recipients: identity.recipients(),
        target: PgTarget {
            host: cluster.socket_dir().to_str().unwrap().to_owned(),
            port: cluster.port(),
            user: cluster.user().to_owned(),
            password: None,
            bin_dir: Some(cluster.bin_dir().to_path_buf()),
        },
        database: "odoo".into(),
        filestore_dir: Some(filestore.path().to_path_buf()),
        allow_missing_files: false,
        lock_wait: std::time::Duration::ZERO,
        os_lock_dir: match fixture {
            Fixture::Local(dir, _) => Some(dir.path().join("store")),
            Fixture::S3(..) => None,
        },
        clock: Arc::new(SystemClock),
        progress: Arc::new(vigia_core::ports::progress::NoProgress),
        cancel: vigia_core::CancelToken::new(),
        state_dir: None,
        heartbeat_url: None,
    };
    Stack {
        cluster,
        filestore,
        files,
        identity,
        job,
    }
}

fn attach(cluster: &PgCluster, files: &[String]) {
    let values: Vec<String> = files
        .iter()
        .map(|f| format!("('{f}', '{f}', '{}')", &f[3..]))
        .collect();
    cluster
        .psql(
            "odoo",
            &format!(
                "INSERT INTO ir_attachment (name, store_fname, checksum) VALUES {}",
                values.join(",")
            ),
        )
        .unwrap();
}

async fn read_all(fixture: &Fixture, key: &str, identity: &Identity) -> Vec<u8> {
    let mut reader = open_sealed(fixture.store(), key, identity).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}

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
    assert_eq!(
        index.objects.len(),
        2 + 31,
        "dump, manifest and every filestore object"
    );
    assert_eq!(index.size_bytes(), first.size_bytes);

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
        "prune",
        std::time::Duration::ZERO,
        s.job.os_lock_dir.as_deref(),
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
    held.release(&s.job.name_key).await.unwrap();
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
