//! Restore beside the live database (`--target-db`): the fidelity test (every table's logical
//! checksum and the filestore's sha1 set equal those at backup time, after the live data
//! changed), on both stores; a damaged backup is refused before anything is created; an
//! existing target is never overwritten.

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{checksums, databases, sha1_set, stack};
use vigia_core::ErrorKind;

async fn restores_what_was_backed_up(fixture: Fixture) {
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let tables_then = checksums(&s, "odoo");
    let files_then = sha1_set(s.filestore.path());
    assert_eq!(files_then.len(), 31);

    s.cluster
        .psql(
            "odoo",
            "UPDATE res_partner SET name = 'cambiado'; \
             DELETE FROM l10n_cr_einvoice_document WHERE id <= 5; \
             INSERT INTO ir_module_module (name, state) VALUES ('nuevo', 'installed')",
        )
        .unwrap();
    std::fs::remove_file(s.filestore.path().join(&s.files[0])).unwrap();
    assert_ne!(checksums(&s, "odoo"), tables_then);

    let root = tempfile::tempdir().unwrap();
    let report = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap();
    assert_eq!(report.target_database, "odoo_restored");
    assert!(!report.swapped);
    let phases: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        phases,
        [
            "check the backup",
            "spool the dump",
            "restore the database and the filestore",
            "analyze and compare row counts"
        ]
    );
    assert_eq!(checksums(&s, "odoo_restored"), tables_then);
    assert_eq!(sha1_set(&root.path().join("odoo_restored")), files_then);
    assert!(
        std::fs::read_dir(s.keys.path().join("spool"))
            .unwrap()
            .next()
            .is_none(),
        "the spool file is removed"
    );
    assert_ne!(
        checksums(&s, "odoo"),
        tables_then,
        "the live database is untouched"
    );

    let err = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.message().contains("never overwrites"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_what_was_backed_up_from_the_local_store() {
    restores_what_was_backed_up(Fixture::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_what_was_backed_up_from_s3() {
    restores_what_was_backed_up(Fixture::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_refused_before_anything_is_created() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let rows = s.rows_key(&backup.id).await;
    let path = match &fixture {
        Fixture::Local(dir, _) => dir.path().join("store").join(&rows),
        Fixture::S3(..) => unreachable!(),
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let before = databases(&s);

    let root = tempfile::tempdir().unwrap();
    let err = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.message().contains(&rows), "{}", err.message());
    assert!(
        err.message().contains("sha256 mismatch"),
        "{}",
        err.message()
    );
    assert_eq!(databases(&s), before, "no database was created");
    assert!(!root.path().join("odoo_restored").exists());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// In place: the restored database and filestore are swapped in, the live ones kept aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_the_live_database_and_keeps_it_aside() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let tables_then = checksums(&s, "odoo");
    let files_then = sha1_set(s.filestore.path());
    let root = tempfile::tempdir().unwrap();
    copy_dir(s.filestore.path(), &root.path().join("odoo"));
    s.cluster
        .psql("odoo", "UPDATE res_partner SET name = 'cambiado'")
        .unwrap();
    std::fs::remove_file(root.path().join("odoo").join(&s.files[0])).unwrap();
    let tables_changed = checksums(&s, "odoo");

    let report = s.swap_job(&backup.id, root.path()).run().await.unwrap();
    assert!(report.swapped);
    assert_eq!(report.target_database, "odoo");
    let aside = report.aside.unwrap();
    let suffix = backup.id.as_str().to_lowercase().replace('-', "_");
    assert_eq!(aside.database, format!("odoo_pre_restore_{suffix}"));
    assert_eq!(checksums(&s, "odoo"), tables_then);
    assert_eq!(
        checksums(&s, &aside.database),
        tables_changed,
        "nothing dropped"
    );
    assert_eq!(sha1_set(&root.path().join("odoo")), files_then);
    assert_eq!(
        sha1_set(&aside.filestore.unwrap()).len(),
        files_then.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_accepted_einvoices_refuse_the_swap_unless_accepted() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    s.cluster
        .psql(
            "odoo",
            "INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total) \
             VALUES ('50628112600310112345600100001010000000099100000099', 'accepted', 'FE', 5000)",
        )
        .unwrap();
    let tables_now = checksums(&s, "odoo");
    let before = databases(&s);
    let root = tempfile::tempdir().unwrap();
    let mut job = s.swap_job(&backup.id, root.path());
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.message();
    assert!(
        message.contains(
            "FE: 1 documents (1 accepted by Hacienda), last consecutive 00100001010000000099"
        ),
        "{message}"
    );
    assert!(message.contains("--accept-einvoice-loss"), "{message}");
    assert_eq!(databases(&s), before, "refused before anything was created");
    assert_eq!(checksums(&s, "odoo"), tables_now);

    job.accept_einvoice_loss = true;
    assert!(job.run().await.unwrap().swapped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_needs_confirm_to_replace_the_live_database() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut job = s.swap_job(&backup.id, root.path());
    job.production = true;
    let err = job.run().await.unwrap_err();
    assert!(
        err.message().contains("--confirm odoo"),
        "{}",
        err.message()
    );
    job.confirm = Some("odoo2".into());
    assert_eq!(job.run().await.unwrap_err().kind(), ErrorKind::InvalidInput);
    job.confirm = Some("odoo".into());
    assert!(job.run().await.unwrap().swapped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_that_cannot_decrypt_is_refused_before_anything_is_created() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    std::fs::write(
        s.keys.path().join("identity.key"),
        vigia_backup::Identity::generate().to_file_text(),
    )
    .unwrap();
    let before = databases(&s);
    let root = tempfile::tempdir().unwrap();
    let err = s
        .restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{}", err.message());
    assert!(
        err.message().contains("this identity cannot decrypt"),
        "{}",
        err.message()
    );
    assert_eq!(databases(&s), before);
    assert!(!root.path().join("odoo_restored").exists());
}

/// A backup's dump runs as a throwaway role, which only a user with CREATEROLE can make:
/// without it the restore is refused before anything is spooled or created, naming the way
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_by_a_user_without_createrole_is_refused_naming_the_way_out() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    s.cluster
        .psql(
            "postgres",
            "CREATE ROLE restorer LOGIN CREATEDB IN ROLE pg_read_all_data",
        )
        .unwrap();
    let before = databases(&s);
    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_restored", root.path());
    job.target.user = "restorer".into();
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.message());
    assert!(err.message().contains("CREATEROLE"), "{}", err.message());
    assert!(
        err.message().contains("no-owner = false"),
        "{}",
        err.message()
    );
    assert_eq!(databases(&s), before, "nothing was created");
}

/// `[restore] no-owner = false` keeps the dump's owners, which only a privileged user can
/// set: the dump then runs as the configured user, no throwaway role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_the_dumps_owners_restores_as_the_configured_user() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.cluster
        .psql("postgres", "CREATE ROLE partners_owner")
        .unwrap();
    s.cluster
        .psql("odoo", "ALTER TABLE res_partner OWNER TO partners_owner")
        .unwrap();
    let backup = s.job.run().await.unwrap();
    let tables = checksums(&s, "odoo");
    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_restored", root.path());
    job.options.no_owner = false;
    job.run().await.unwrap();
    assert_eq!(checksums(&s, "odoo_restored"), tables);
    let owner = s
        .cluster
        .psql(
            "odoo_restored",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'res_partner'",
        )
        .unwrap();
    assert_eq!(owner, "partners_owner", "the dump's owner is kept");
    assert_eq!(s.throwaway_roles(), "0");
}
