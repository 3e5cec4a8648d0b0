//! pg_dump in one snapshot with the filestore list and row counts, sealed into the store,
//! and restorable by pg_restore.

use std::io::Read;
use std::process::Command;

use crate::common::Fixture;
use vigia_backup::{Identity, open_sealed, put_sealed};
use vigia_core::config::SslMode;
use vigia_pg::{DumpScope, PgDump, PgTarget, SnapshotSession};
use vigia_sandbox::postgres::PgCluster;

fn odoo_cluster() -> (PgCluster, PgTarget) {
    let cluster = crate::common::odoo::odoo_cluster();
    cluster
        .psql(
            "odoo",
            "INSERT INTO ir_attachment (name, res_model, store_fname, checksum) VALUES \
             ('a.pdf', 'account.move', 'ab/ab01', 'ab01'), ('b.xml', 'account.move', 'cd/cd02', 'cd02'), \
             ('b-copy.xml', 'account.move', 'cd/cd02', 'cd02'), ('inline', 'res.partner', NULL, NULL)",
        )
        .unwrap();
    let target = crate::common::odoo::target(&cluster);
    (cluster, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_filestore_list_and_counts_are_one_point_in_time() {
    let (cluster, target) = odoo_cluster();
    let session = SnapshotSession::open(&target, "odoo").await.unwrap();
    target
        .check_client_version(session.server_version_num())
        .unwrap();
    // Written after the snapshot: in neither the dump nor the lists.
    cluster
        .psql(
            "odoo",
            "INSERT INTO res_partner (name) VALUES ('late'); \
                       INSERT INTO ir_attachment (name, store_fname) VALUES ('late', 'ef/ef03')",
        )
        .unwrap();
    let refs = vigia_odoo::schema::filestore_refs(session.client())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refs, ["ab/ab01", "cd/cd02"]);
    let modules = vigia_odoo::schema::module_versions(session.client())
        .await
        .unwrap();
    assert_eq!(
        modules.get("l10n_cr_einvoice").map(String::as_str),
        Some("19.0.2.1.0")
    );
    assert!(!modules.contains_key("website"), "only installed modules");
    let counts = session.row_counts().await.unwrap();
    assert_eq!(counts["public.res_partner"], 50);
    assert_eq!(counts["public.l10n_cr_einvoice_document"], 20);

    let fixture = Fixture::local();
    let identity = Identity::generate();
    let (dump_target, snapshot) = (target.clone(), session.snapshot_id().to_owned());
    let sealed = put_sealed(
        fixture.store(),
        "backups/x/dump.age",
        &identity.recipients(),
        move || {
            PgDump::spawn(&dump_target, "odoo", Some(&snapshot), &DumpScope::Whole)
                .map(|d| Box::new(d) as Box<dyn Read>)
        },
    )
    .await
    .unwrap();
    session.close().await.unwrap();
    assert!(sealed.plain_bytes > 0);

    let spool = tempfile::NamedTempFile::new().unwrap();
    let mut reader = open_sealed(fixture.store(), "backups/x/dump.age", &identity)
        .await
        .unwrap();
    let mut file = spool.reopen().unwrap();
    tokio::task::spawn_blocking(move || std::io::copy(&mut reader, &mut file).unwrap())
        .await
        .unwrap();
    cluster.create_database("restored").unwrap();
    let restore = Command::new(cluster.bin_dir().join("pg_restore"))
        .args([
            "--exit-on-error",
            "-h",
            &target.host,
            "-U",
            "postgres",
            "-d",
            "restored",
        ])
        .arg(spool.path())
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_eq!(
        cluster
            .psql("restored", "SELECT count(*) FROM res_partner")
            .unwrap(),
        "50"
    );
    assert_eq!(
        cluster
            .psql("restored", "SELECT count(*) FROM ir_attachment")
            .unwrap(),
        "4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pg_dump_stores_nothing_and_says_why() {
    let (_cluster, target) = odoo_cluster();
    let fixture = Fixture::local();
    let err = put_sealed(
        fixture.store(),
        "backups/x/dump.age",
        &Identity::generate().recipients(),
        move || {
            PgDump::spawn(&target, "no_such_db", None, &DumpScope::Whole)
                .map(|d| Box::new(d) as Box<dyn Read>)
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.message().contains("pg_dump exited"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("no_such_db"), "{}", err.message());
    assert!(fixture.store().list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_odoo_tables_has_no_filestore_list() {
    let (cluster, target) = odoo_cluster();
    cluster.create_database("plain").unwrap();
    let session = SnapshotSession::open(&target, "plain").await.unwrap();
    assert_eq!(
        vigia_odoo::schema::filestore_refs(session.client())
            .await
            .unwrap(),
        None
    );
    assert!(
        vigia_odoo::schema::module_versions(session.client())
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_pg_dump_older_than_the_server_is_refused_naming_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.4'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let target = PgTarget {
        host: "localhost".into(),
        port: 5432,
        user: "odoo".into(),
        password: None,
        bin_dir: Some(dir.path().to_path_buf()),
        sslmode: SslMode::Prefer,
        sslrootcert: None,
    };
    let err = target.check_client_version(160_004).unwrap_err();
    assert!(
        err.message().contains("postgresql-client-16"),
        "{}",
        err.message()
    );
    assert_eq!(err.context().key.as_deref(), Some("postgres.bin-dir"));
    target.check_client_version(130_010).unwrap();
}

/// The `pg_restore` children of this process (running or zombie, or still `nice` or
/// `ionice` before they exec it), as `/proc` shows them.
fn pg_restore_children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1);
            let runs_restore = ["(pg_restore", "(nice", "(ionice"]
                .iter()
                .any(|c| comm.ends_with(c));
            runs_restore && ppid == Some(me.as_str())
        })
        .collect()
}

/// Yields `n` bytes of `data`, then fails: a store that breaks mid-object.
struct Breaks<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Breaks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.n == 0 {
            return Err(std::io::Error::other("the store broke"));
        }
        let take = buf.len().min(self.n).min(self.data.len());
        buf[..take].copy_from_slice(&self.data[..take]);
        self.data = &self.data[take..];
        self.n -= take;
        Ok(take)
    }
}

/// Regression (issue 10 item 8): when reading the dump failed, `pg_restore` was left behind
/// (running, then a zombie) until vigia exited.
#[test]
fn pg_restore_is_killed_and_reaped_when_the_dump_breaks() {
    let cluster = PgCluster::start().unwrap();
    vigia_sandbox::odoo::create_odoo_database(&cluster, "odoo").unwrap();
    let dump = Command::new(cluster.bin_dir().join("pg_dump"))
        .args(["-Fc", "-d"])
        .arg(cluster.conninfo("odoo"))
        .output()
        .unwrap()
        .stdout;
    cluster.create_database("scratch").unwrap();
    let target = crate::common::odoo::target(&cluster);
    let mut broken = Breaks {
        data: &dump,
        n: dump.len() / 2,
    };
    let into = vigia_pg::RestoreMode::Into {
        database: "scratch".into(),
        section: vigia_pg::Section::All,
        options: vigia_pg::RestoreOptions::untrusted(1),
    };
    let err = vigia_pg::pg_restore_stream(&target, &into, &mut broken).unwrap_err();
    assert!(err.to_string().contains("the store broke"), "{err}");
    assert_eq!(pg_restore_children(), Vec::<String>::new());
}
