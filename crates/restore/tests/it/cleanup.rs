//! `restore --cleanup`: it removes only what this environment's restores and drills recorded
//! on this cluster, never an aside copy while the live database is missing, and never a
//! folder outside `<data-dir>/filestore`.

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{databases, stack, target};
use vigia_backup::{CopyKind, CopyRecords};
use vigia_core::ErrorKind;

/// Regression (issue 9 item 6): after a crash between the swap's renames the live database
/// is missing and the aside copy is the only copy of the live data; cleanup dropped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_never_drops_the_aside_copy_while_the_live_database_is_missing() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let report = s.swap_job(&backup.id, root.path()).run().await.unwrap();
    let aside = report.aside.unwrap().database;
    // The state a crash between the two renames leaves: the live name is gone.
    s.cluster
        .psql(
            "postgres",
            "ALTER DATABASE odoo RENAME TO odoo_half_swapped",
        )
        .unwrap();

    let err = s.cleanup_job(root.path(), true).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.message());
    assert!(err.message().contains("odoo"), "{}", err.message());
    assert!(databases(&s).contains(&aside), "the aside copy is kept");
}

/// Regression (issue 9 item 6): a staging cleanup dropped production's drill in progress
/// because its name looked like a drill's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_leaves_what_it_did_not_record_alone() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let root = tempfile::tempdir().unwrap();
    for name in [
        "vigia_drill_20261128t021530z_k3f9",
        "vigia_restore_20261128t021530z_k3f9",
        "odoo_pre_restore_20261128t021530z_k3f9",
    ] {
        s.cluster.create_database(name).unwrap();
    }
    // Another environment's aside copy, recorded in the same state-dir.
    let other = CopyRecords::new(
        &s.keys.path().join("restores"),
        Some("staging"),
        &target(&s.cluster),
    );
    other
        .write(
            CopyKind::Aside,
            "odoo_pre_restore_20261128t021530z_k3f9",
            None,
            None,
        )
        .unwrap();
    let before = databases(&s);

    let report = s.cleanup_job(root.path(), true).run().await.unwrap();
    assert!(report.databases.is_empty(), "{:?}", report.databases);
    assert_eq!(databases(&s), before);
}

/// What a record names is removed, and the record with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_a_recorded_aside_copy_and_its_folder() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("odoo_pre_restore_x");
    std::fs::create_dir(&folder).unwrap();
    s.cluster.create_database("odoo_pre_restore_x").unwrap();
    let records = CopyRecords::new(&s.keys.path().join("restores"), None, &target(&s.cluster));
    records
        .write(CopyKind::Aside, "odoo_pre_restore_x", Some(&folder), None)
        .unwrap();

    let listed = s.cleanup_job(root.path(), false).run().await.unwrap();
    assert_eq!(listed.databases, ["odoo_pre_restore_x"]);
    assert_eq!(listed.filestores, std::slice::from_ref(&folder));
    s.cleanup_job(root.path(), true).run().await.unwrap();
    assert!(!databases(&s).contains("odoo_pre_restore_x"));
    assert!(!folder.exists());
    assert!(records.abandoned().is_empty(), "the record is removed");
}

/// Regression (issue 9 item 7): a record naming `<data-dir>/filestore/..` made cleanup remove
/// the whole data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_no_folder_outside_the_filestore_root() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("filestore");
    std::fs::create_dir_all(root.join("odoo")).unwrap();
    std::fs::write(data.path().join("keep.txt"), "Odoo's data").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
    let records = CopyRecords::new(&s.keys.path().join("restores"), None, &target(&s.cluster));
    for (db, dir) in [
        ("a", root.join("..")),
        ("b", root.join("odoo/..")),
        ("c", root.join("link")),
    ] {
        records
            .write(CopyKind::Aside, db, Some(&dir), None)
            .unwrap();
    }

    let report = s.cleanup_job(&root, true).run().await.unwrap();
    assert!(report.filestores.is_empty(), "{:?}", report.filestores);
    assert!(data.path().join("keep.txt").exists());
    assert!(root.join("odoo").exists());
    assert!(outside.path().exists() && root.join("link").exists());
}

/// Regression (issue 9 item 7): `--target-db ..` was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_names_that_are_path_tricks_are_refused() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let before = databases(&s);
    for name in ["..", ".", "-x", "_x", ".hidden"] {
        let err = s
            .restore_job(&backup.id, name, root.path())
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert!(
            err.message().contains("start with a letter or digit"),
            "{name}: {}",
            err.message()
        );
    }
    assert_eq!(databases(&s), before);
}

/// A killed zip import leaves its throwaway role: listed, then dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_drops_the_throwaway_role_a_killed_import_left() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let root = tempfile::tempdir().unwrap();
    let role = vigia_pg::ThrowawayRole::new_name();
    for sql in [
        format!("CREATE ROLE {role}"),
        format!("CREATE DATABASE odoo_from_zip OWNER {role}"),
    ] {
        s.cluster.psql("postgres", &sql).unwrap();
    }
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let record = vigia_backup::CopyRecord {
        kind: CopyKind::Restore,
        environment: None,
        cluster: format!("{}:{}", target(&s.cluster).host, target(&s.cluster).port),
        database: "odoo_from_zip".into(),
        filestore: None,
        role: Some(role.clone()),
        pid,
    };
    let dir = s.keys.path().join("restores");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("base.odoo_from_zip.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();

    let listed = s.cleanup_job(root.path(), false).run().await.unwrap();
    assert_eq!(listed.roles, std::slice::from_ref(&role));
    assert_eq!(listed.databases, ["odoo_from_zip"]);
    s.cleanup_job(root.path(), true).run().await.unwrap();
    let left = s
        .cluster
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"),
        )
        .unwrap();
    assert_eq!(left.trim(), "0");
    assert!(!databases(&s).contains("odoo_from_zip"));
}

/// Found by review of issue 9: cleanup removed every spool file, also the one a running
/// restore (of another environment sharing the state dir) was reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_leaves_a_spool_file_in_use_alone() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let root = tempfile::tempdir().unwrap();
    let spool = s.keys.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let (in_use, left) = (spool.join("a-in-use.dump"), spool.join("b-left.dump"));
    let held = std::fs::File::create(&in_use).unwrap();
    held.lock().unwrap();
    std::fs::write(&left, "killed restore").unwrap();

    let report = s.cleanup_job(root.path(), true).run().await.unwrap();
    assert_eq!(report.spool_files, std::slice::from_ref(&left));
    assert!(in_use.exists() && !left.exists());
}

/// Found by review of issue 9: when the restore's CREATE DATABASE failed (here: the user has
/// no CREATEDB; in life: someone made that name while the dump spooled), its record stayed,
/// and cleanup would later drop whatever database has that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_never_drops_a_database_the_restore_could_not_create() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    s.cluster
        .psql(
            "postgres",
            "CREATE ROLE restorer LOGIN CREATEROLE IN ROLE pg_read_all_data",
        )
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_restored", root.path());
    job.target.user = "restorer".into();
    let err = job.run().await.unwrap_err();
    assert!(err.message().contains("CREATEDB"), "{}", err.message());

    // The restore's process has ended (its records would now be leftovers)...
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    for record in std::fs::read_dir(s.keys.path().join("restores"))
        .unwrap()
        .flatten()
    {
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record.path()).unwrap()).unwrap();
        json["pid"] = pid.into();
        std::fs::write(record.path(), json.to_string()).unwrap();
    }
    // ...and someone else's database with that name is made afterwards.
    s.cluster.create_database("odoo_restored").unwrap();
    let report = s.cleanup_job(root.path(), true).run().await.unwrap();
    assert!(report.databases.is_empty(), "{:?}", report.databases);
    assert!(databases(&s).contains("odoo_restored"));
}
