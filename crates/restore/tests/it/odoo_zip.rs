//! `--from-odoo-zip`: a zip made the way Odoo's database manager makes it (`pg_dump
//! --no-owner` as dump.sql, the filestore, manifest.json, Python's zipfile) restored beside
//! and in place with every table and file intact; an SQL error or a damaged entry commits
//! nothing; a zip of another Odoo series, or older than the live e-invoices, is refused.

use std::path::{Path, PathBuf};

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{Stack, checksums, databases, sha1_set, stack};
use vigia_core::ErrorKind;
use vigia_restore::{RestoreJob, RestoreSource};
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

/// An e-invoice accepted by Hacienda in the live database, created after any zip of it.
fn accept_a_newer_einvoice(s: &Stack) {
    s.cluster
        .psql(
            "odoo",
            "INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total, \
             create_date) VALUES ('50628112600310112345600100001010000000099100000099', \
             'accepted', 'FE', 5000, now() AT TIME ZONE 'UTC' + interval '1 minute')",
        )
        .unwrap();
}

/// A zip of the live database whose dump.sql has `sql` inserted before `CREATE TABLE
/// public.res_partner`: what someone handing over a zip may have written.
fn zip_with(s: &Stack, dir: &Path, sql: &str) -> PathBuf {
    zip_edited(s, dir, sql, false)
}

/// `zip_with`, and with `hand_made` without pg_dump's own `\restrict` pair.
fn zip_edited(s: &Stack, dir: &Path, sql: &str, hand_made: bool) -> PathBuf {
    let odoo_dump = dump(s, &ZipManifest::default());
    let mut text = std::fs::read_to_string(odoo_dump.sql_path()).unwrap();
    if hand_made {
        text = text
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect();
    }
    let at = text.find("CREATE TABLE public.res_partner").unwrap();
    text.insert_str(at, &format!("{sql}\n"));
    std::fs::write(odoo_dump.sql_path(), text).unwrap();
    let zip = dir.join("handed-over.zip");
    odoo_dump.zip(&zip, true).unwrap();
    zip
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
    // Odoo's own restore (psql without ON_ERROR_STOP) would go on past this line.
    let zip = zip_with(&s, work.path(), "SELECT no_such_function();");

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
    accept_a_newer_einvoice(&s);
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

/// Regression (issue 9): `\! id` ran a shell as root and `\connect odoo` escaped the
/// transaction to drop a live table. No meta-command from a zip ever reaches psql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_in_a_zip_never_run() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("the-shell-ran");
    let live = checksums(&s, "odoo");
    let attacks = [
        format!("\\! touch {}", marker.display()),
        "\\connect odoo\nDROP TABLE public.ir_cron;".to_owned(),
        "\\unrestrict anything\n\\! true".to_owned(),
    ];
    for (sql, hand_made) in attacks.iter().flat_map(|a| [(a, true), (a, false)]) {
        let zip = zip_edited(&s, work.path(), sql, hand_made);
        let (err, tables) = failed_import(&s, &zip).await;
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{sql}: {}",
            err.message()
        );
        assert!(err.message().contains("meta-command"), "{}", err.message());
        assert_eq!(tables, "0", "{sql}: nothing imported");
        assert!(!marker.exists(), "{sql}: the shell ran");
        assert_eq!(
            checksums(&s, "odoo"),
            live,
            "{sql}: the live database changed"
        );
        s.cluster
            .psql("postgres", "DROP DATABASE odoo_from_zip")
            .unwrap();
    }
}

/// pg_dump 15.14+ writes its own `\restrict KEY` ... `\unrestrict KEY` pair: a real dump
/// still imports (the pair is dropped, nothing else is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pg_dump_with_its_restrict_pair_imports() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let odoo_dump = dump(&s, &ZipManifest::default());
    let sql = std::fs::read_to_string(odoo_dump.sql_path()).unwrap();
    assert!(sql.contains("\n\\restrict ") && sql.contains("\n\\unrestrict "));
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("real.zip");
    odoo_dump.zip(&zip, true).unwrap();
    let tables = checksums(&s, "odoo");
    let root = tempfile::tempdir().unwrap();
    zip_job(&s, &zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap();
    assert_eq!(checksums(&s, "odoo_from_zip"), tables);
}

/// Regression (issue 9): `ALTER ROLE ... SET default_transaction_read_only = on` in a zip
/// committed with --target-db and turned the live Odoo's new sessions read-only. The zip's
/// SQL runs as a throwaway role that owns the new database and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_cannot_alter_a_role_or_another_database() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let settings = "SELECT count(*) FROM pg_db_role_setting";
    for sql in [
        format!(
            "ALTER ROLE {} SET default_transaction_read_only = on;",
            s.cluster.user()
        ),
        "ALTER DATABASE odoo SET default_transaction_read_only = on;".to_owned(),
        "RESET ROLE; CREATE ROLE intruder SUPERUSER;".to_owned(),
    ] {
        let zip = zip_with(&s, work.path(), &sql);
        let (err, _) = failed_import(&s, &zip).await;
        assert_eq!(err.kind(), ErrorKind::Database, "{sql}: {}", err.message());
        assert!(
            !err.message().contains("nothing of it was committed"),
            "{}",
            err.message()
        );
        assert_eq!(
            s.cluster.psql("postgres", settings).unwrap().trim(),
            "0",
            "{sql}"
        );
        let intruders = s
            .cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_roles WHERE rolname = 'intruder'",
            )
            .unwrap();
        assert_eq!(intruders.trim(), "0", "{sql}");
        s.cluster
            .psql("postgres", "DROP DATABASE odoo_from_zip")
            .unwrap();
    }
    assert_eq!(
        s.throwaway_roles(),
        "0",
        "every throwaway role is dropped, even after a failed import"
    );
}

/// The new database's owner may give it settings (read-only sessions, no connections) that
/// would follow it through the swap: they are reset before anything uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_a_zip_gives_its_own_database_are_reset() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = zip_with(
        &s,
        work.path(),
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', \
         current_database()); EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 0', \
         current_database()); END $$;",
    );
    let root = tempfile::tempdir().unwrap();
    zip_job(&s, &zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap();
    let state = s
        .cluster
        .psql(
            "postgres",
            "SELECT datconnlimit, pg_get_userbyid(datdba), (SELECT count(*) FROM \
             pg_db_role_setting WHERE setdatabase = d.oid) FROM pg_database d \
             WHERE datname = 'odoo_from_zip'",
        )
        .unwrap();
    assert_eq!(state.trim(), format!("-1|{}|0", s.cluster.user()));
    assert_eq!(s.throwaway_roles(), "0");
}

/// A configured role that cannot create roles cannot contain the zip: refused, unless the
/// operator says the zip is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_createrole_a_zip_is_refused_unless_trusted() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.cluster
        .psql(
            "postgres",
            "CREATE ROLE importer LOGIN CREATEDB IN ROLE pg_read_all_data",
        )
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let zip = zipped(&s, work.path());
    let before = databases(&s);
    let root = tempfile::tempdir().unwrap();
    let mut job = zip_job(&s, &zip, Some("odoo_from_zip"), root.path());
    job.target.user = "importer".into();
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.message());
    assert!(err.message().contains("--trust-zip"), "{}", err.message());
    assert_eq!(databases(&s), before, "nothing was created");

    job.trust_zip = true;
    job.run().await.unwrap();
    let owner = s
        .cluster
        .psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'odoo_from_zip'",
        )
        .unwrap();
    assert_eq!(owner.trim(), "importer");
}

/// Functions and triggers a hostile zip defines to run only once the throwaway role is gone:
/// a `public.quote_ident(name)` that beats the built-in in an unguarded session, and a
/// trigger on `ir_cron` that neutralization's UPDATE fires.
const LATE_PAYLOAD: &str = r"
CREATE FUNCTION public.strike() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_user NOT LIKE 'vigia_tmp_%' THEN
    EXECUTE 'ALTER ROLE victim VALID UNTIL ''2000-01-01''';
  END IF;
END $$;
CREATE FUNCTION public.quote_ident(n name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.strike(); RETURN pg_catalog.quote_ident(n::text); END $$;
CREATE FUNCTION public.on_cron() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM public.strike(); RETURN NEW; END $$;
CREATE TRIGGER strike BEFORE UPDATE ON public.ir_cron FOR EACH ROW EXECUTE FUNCTION public.on_cron();
";

/// Found by review of issue 9: after the import, vigia's own ANALYZE, row counts and
/// neutralization ran in the copy as the configured user, and so did the zip's functions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_zip_defines_runs_with_the_configured_users_rights() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    s.cluster.psql("postgres", "CREATE ROLE victim").unwrap();
    let odoo_dump = dump(&s, &ZipManifest::default());
    let mut sql = std::fs::read_to_string(odoo_dump.sql_path()).unwrap();
    sql.push_str(LATE_PAYLOAD);
    std::fs::write(odoo_dump.sql_path(), sql).unwrap();
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("late.zip");
    odoo_dump.zip(&zip, true).unwrap();

    let root = tempfile::tempdir().unwrap();
    let mut job = zip_job(&s, &zip, Some("odoo_from_zip"), root.path());
    job.neutralize = true;
    let result = job.run().await;
    let victim = s
        .cluster
        .psql(
            "postgres",
            "SELECT rolvaliduntil IS NULL FROM pg_roles WHERE rolname = 'victim'",
        )
        .unwrap();
    assert_eq!(
        victim, "t",
        "the zip's code ran as the configured user: {result:?}"
    );
    result.unwrap();
    assert_eq!(s.throwaway_roles(), "0");
}

/// Found by review of issue 9: a zip whose newest e-invoice document claims a date in the
/// future (`infinity`) made every live document look older, and the guard let it replace the
/// live database. Documents dated after now say nothing about when the zip was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_dated_in_the_future_does_not_pass_the_einvoice_guard() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("future.zip");
    let odoo_dump = dump(&s, &ZipManifest::default());
    let mut sql = std::fs::read_to_string(odoo_dump.sql_path()).unwrap();
    sql.push_str(
        "INSERT INTO public.l10n_cr_einvoice_document (clave, state, document_type, \
         amount_total, create_date) VALUES ('50628112600310112345600100001010000000098100000098', \
         'accepted', 'FE', 1, 'infinity');\n",
    );
    std::fs::write(odoo_dump.sql_path(), sql).unwrap();
    odoo_dump.zip(&zip, true).unwrap();
    accept_a_newer_einvoice(&s);
    let live = checksums(&s, "odoo");
    let root = tempfile::tempdir().unwrap();
    let err = zip_job(&s, &zip, None, root.path())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.message());
    assert_eq!(
        checksums(&s, "odoo"),
        live,
        "the live database is untouched"
    );
}

/// The copy goes to the live database's owner (Odoo's role, which must own what it will
/// serve), not to the configured user, who may be a superuser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_is_handed_to_the_live_databases_owner() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    for sql in [
        "CREATE ROLE odoo_app",
        "ALTER DATABASE odoo OWNER TO odoo_app",
    ] {
        s.cluster.psql("postgres", sql).unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let zip = zipped(&s, work.path());
    let root = tempfile::tempdir().unwrap();
    zip_job(&s, &zip, Some("odoo_from_zip"), root.path())
        .run()
        .await
        .unwrap();
    let owners = s
        .cluster
        .psql(
            "odoo_from_zip",
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' UNION \
             SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'odoo_from_zip'",
        )
        .unwrap();
    assert_eq!(owners, "odoo_app");
    assert_eq!(s.throwaway_roles(), "0");
}
