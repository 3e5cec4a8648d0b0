//! `--from-odoo-zip`: a zip made the way Odoo's database manager makes it (`pg_dump
//! --no-owner` as dump.sql, the filestore, manifest.json, Python's zipfile) restored beside
//! and in place with every table and file intact; an SQL error or a damaged entry commits
//! nothing; a zip of another Odoo series, or older than the live e-invoices, is refused.

mod common;

use std::path::{Path, PathBuf};

use common::Fixture;
use common::odoo::{Stack, checksums, databases, sha1_set, stack};
use vigia_backup::{RestoreJob, RestoreSource};
use vigia_core::ErrorKind;
use vigia_sandbox::odoo::{OdooDump, ZipManifest};

fn dump(s: &Stack, manifest: &ZipManifest) -> OdooDump {
    OdooDump::new(&s.cluster, "odoo", Some(s.filestore.path()), manifest).unwrap()
}

fn zipped(s: &Stack, dir: &Path) -> PathBuf {
    let zip = dir.join("odoo_2026-11-28.zip");
    dump(s, &ZipManifest::default()).zip(&zip, true).unwrap();
    zip
}

fn zip_job(s: &Stack, zip: &Path, target_db: Option<&str>, root: &Path) -> RestoreJob {
    let mut job = s.restore_job(
        &"20261128T000000Z-abcd".parse().unwrap(),
        target_db.unwrap_or("unused"),
        root,
    );
    job.source = RestoreSource::OdooZip(zip.to_path_buf());
    job.target_db = target_db.map(str::to_owned);
    job
}

/// Imports `zip` beside the live database into `odoo_from_zip`, which must fail: the error,
/// and how many tables the new database was left with.
async fn failed_import(s: &Stack, zip: &Path) -> (vigia_core::Error, String) {
    let root = tempfile::tempdir().unwrap();
    let err = zip_job(s, zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap_err();
    let tables = s
        .cluster
        .psql(
            "odoo_from_zip",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        )
        .unwrap();
    (err, tables.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odoo_zip_is_restored_beside_with_every_table_and_file() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = zipped(&s, work.path());
    let tables = checksums(&s, "odoo");
    let files = sha1_set(s.filestore.path());

    let root = tempfile::tempdir().unwrap();
    let report = zip_job(&s, &zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap();
    assert!(report.id.is_none());
    let info = report.odoo_zip.unwrap();
    assert_eq!(info.version.as_deref(), Some("19.0"));
    assert_eq!(info.db_name.as_deref(), Some("odoo"));
    assert_eq!(info.modules, 3);
    assert_eq!(info.filestore_files, files.len());
    let phases: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        phases,
        [
            "check the zip",
            "import the database and the filestore",
            "analyze"
        ]
    );
    assert_eq!(checksums(&s, "odoo_from_zip"), tables);
    assert_eq!(sha1_set(&root.path().join("odoo_from_zip")), files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odoo_zip_replaces_the_live_database_which_is_kept_aside() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = zipped(&s, work.path());
    let tables = checksums(&s, "odoo");
    s.cluster
        .psql("odoo", "UPDATE res_partner SET name = 'cambiado'")
        .unwrap();
    let changed = checksums(&s, "odoo");

    let root = tempfile::tempdir().unwrap();
    let report = zip_job(&s, &zip, None, root.path()).run().await.unwrap();
    assert!(report.swapped);
    let aside = report.aside.unwrap();
    assert!(
        aside.database.starts_with("odoo_pre_restore_zip_"),
        "{}",
        aside.database
    );
    assert_eq!(checksums(&s, "odoo"), tables);
    assert_eq!(checksums(&s, &aside.database), changed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sql_error_in_the_dump_commits_nothing() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let odoo_dump = dump(&s, &ZipManifest::default());
    let mut sql = std::fs::read_to_string(odoo_dump.sql_path()).unwrap();
    // Odoo's own restore (psql without ON_ERROR_STOP) would go on past this line.
    let middle = sql.find("CREATE TABLE public.res_partner").unwrap();
    sql.insert_str(middle, "SELECT no_such_function();\n");
    std::fs::write(odoo_dump.sql_path(), sql).unwrap();
    let zip = work.path().join("broken.zip");
    odoo_dump.zip(&zip, true).unwrap();

    let (err, tables) = failed_import(&s, &zip).await;
    assert_eq!(err.kind(), ErrorKind::Database, "{}", err.message());
    assert!(
        err.message().contains("no_such_function"),
        "{}",
        err.message()
    );
    assert_eq!(tables, "0", "one transaction: nothing committed");
}

/// A byte changed inside the stored (uncompressed) dump.sql: the SQL stays valid, only the
/// zip's CRC tells; psql must be killed before its end of input commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_dump_entry_is_caught_before_psql_commits() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("damaged.zip");
    dump(&s, &ZipManifest::default()).zip(&zip, false).unwrap();
    let mut bytes = std::fs::read(&zip).unwrap();
    let at = bytes
        .windows(10)
        .position(|w| w == b"Cliente 17")
        .expect("the stored dump holds the partner rows");
    bytes[at + 9] = b'8';
    std::fs::write(&zip, bytes).unwrap();

    let (err, tables) = failed_import(&s, &zip).await;
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    assert!(err.message().contains("dump.sql"), "{}", err.message());
    assert_eq!(tables, "0", "psql never reached its commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_of_another_odoo_series_or_not_a_zip_is_refused_before_anything_is_created() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("odoo17.zip");
    let series = ZipManifest {
        version: "17.0".into(),
        major_version: "17.0".into(),
    };
    dump(&s, &series).zip(&zip, true).unwrap();
    let before = databases(&s);
    let root = tempfile::tempdir().unwrap();
    let err = zip_job(&s, &zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("Odoo 17.0"), "{}", err.message());
    assert!(err.message().contains("upgrade"), "{}", err.message());

    let not_zip = work.path().join("dump.sql");
    std::fs::write(&not_zip, "CREATE TABLE x ();").unwrap();
    let err = zip_job(&s, &not_zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.message().contains("not a readable zip"),
        "{}",
        err.message()
    );
    assert_eq!(databases(&s), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_older_than_the_live_einvoices_is_not_swapped_in() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = zipped(&s, work.path());
    s.cluster
        .psql(
            "odoo",
            "INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total, \
             create_date) VALUES ('50628112600310112345600100001010000000099100000099', \
             'accepted', 'FE', 5000, now() AT TIME ZONE 'UTC' + interval '1 minute')",
        )
        .unwrap();
    let live = checksums(&s, "odoo");
    let root = tempfile::tempdir().unwrap();
    let mut job = zip_job(&s, &zip, None, root.path());
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.message();
    assert!(message.contains("FE: 1 documents (1 accepted"), "{message}");
    assert!(message.contains("--cleanup --apply"), "{message}");
    assert_eq!(
        checksums(&s, "odoo"),
        live,
        "the live database is untouched"
    );

    job.accept_einvoice_loss = true;
    assert!(job.run().await.unwrap().swapped);
}
