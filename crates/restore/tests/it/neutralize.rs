//! `--neutralize`: the restored copy can send no e-invoice and no e-mail (crons, mail
//! servers, Hacienda credentials and certificate), is marked and re-identified like Odoo's own
//! neutralization does it, and the live database keeps everything. Refused in production; a
//! failing `[restore] neutralize-sql` leaves the copy unneutralized and says so.

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{Stack, stack};
use vigia_core::ErrorKind;

const CERTIFICATE: &[u8] = b"0\x82\x0a\x1f PKCS#12 llave criptografica";

const PRIVATE_KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nllave privada\n";

/// Attaches the certificate and the separate PEM private key to the company the way the
/// module's binary fields store them; returns their files.
fn attach_certificate(s: &Stack) -> Vec<String> {
    [
        ("llave.p12", "l10n_cr_certificate", CERTIFICATE),
        ("llave.pem", "l10n_cr_private_key", PRIVATE_KEY),
    ]
    .into_iter()
    .map(|(name, field, bytes)| {
        let fname = crate::common::odoo_file(s.filestore.path(), bytes);
        s.cluster
            .psql(
                "odoo",
                &format!(
                    "INSERT INTO ir_attachment (name, res_model, res_field, res_id, \
                         store_fname, checksum) VALUES ('{name}', 'res.company', '{field}', 1, \
                         '{fname}', '{}')",
                    &fname[3..]
                ),
            )
            .unwrap();
        fname
    })
    .collect()
}

/// A credential DOMAIN.md does not list: found by its name.
fn add_unlisted_credential(s: &Stack) {
    s.cluster
        .psql(
            "odoo",
            "ALTER TABLE res_company ADD COLUMN l10n_cr_sinpe_api_token varchar; \
             UPDATE res_company SET l10n_cr_sinpe_api_token = 'live-sinpe-token'",
        )
        .unwrap();
}

fn query(s: &Stack, database: &str, sql: &str) -> String {
    s.cluster.psql(database, sql).unwrap().trim().to_owned()
}

/// What must hold in a copy that can send nothing, as one string per fact.
fn sending_state(s: &Stack, database: &str) -> Vec<String> {
    [
        "SELECT string_agg(cron_name || '=' || active, ', ' ORDER BY id) FROM ir_cron",
        "SELECT string_agg(smtp_host || '=' || active, ', ' ORDER BY id) FROM ir_mail_server",
        "SELECT bool_or(active) FROM fetchmail_server",
        "SELECT concat_ws('|', l10n_cr_hacienda_env, l10n_cr_hacienda_username, \
         l10n_cr_hacienda_password, l10n_cr_key_password, l10n_cr_auto_submit_einvoice, \
         l10n_cr_certificate_filename) FROM res_company",
        "SELECT string_agg(key, ', ' ORDER BY key) FROM ir_config_parameter",
        "SELECT count(*) FROM ir_attachment WHERE res_model = 'res.company'",
    ]
    .iter()
    .map(|sql| query(s, database, sql))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neutralized_copy_can_send_nothing_and_the_live_database_keeps_everything() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let certificates = attach_certificate(&s);
    add_unlisted_credential(&s);
    let backup = s.job.run().await.unwrap();
    let live_before = sending_state(&s, "odoo");

    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_staging", root.path());
    job.neutralize = true;
    job.base_url = Some("https://staging.example.cr".into());
    job.neutralize_sql = vec!["UPDATE res_partner SET vat = NULL".into()];
    let report = job.run().await.unwrap();

    let phases: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases.last(), Some(&"neutralize"));
    let done = report.neutralized.unwrap();
    assert_eq!(
        done.set,
        [
            "res_company.l10n_cr_hacienda_env = 'sandbox'",
            "res_company.l10n_cr_auto_submit_einvoice = false",
        ]
    );
    assert_eq!(
        done.cleared,
        [
            "ir_config_parameter:l10n_cr_einvoice.hacienda_api_token",
            "res_company.l10n_cr_hacienda_username",
            "res_company.l10n_cr_hacienda_password",
            "res_company.l10n_cr_key_password",
            "res_company.l10n_cr_sinpe_api_token",
            "ir_attachment:res.company.l10n_cr_certificate",
            "ir_attachment:res.company.l10n_cr_private_key",
        ]
    );
    let mut removed = done.removed_files.clone();
    removed.sort();
    let mut expected = certificates.clone();
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(done.statements, 1);

    let copy = sending_state(&s, "odoo_staging");
    assert_eq!(
        copy[0],
        "Base: Auto-vacuum internal data=true, Hacienda: submit signed documents=false, \
         Hacienda: check document status=false, Mail: Email Queue Manager=false",
        "every cron off but Odoo's autovacuum"
    );
    assert_eq!(copy[1], "smtp.office365.com=false, invalid=true");
    assert_eq!(copy[2], "f");
    assert_eq!(
        copy[3], "sandbox|f|llave.p12",
        "pointed at Hacienda's sandbox, no automatic submission, credentials cleared, the rest kept"
    );
    assert_eq!(copy[5], "0");
    assert_eq!(
        query(
            &s,
            "odoo_staging",
            "SELECT count(l10n_cr_sinpe_api_token) FROM res_company"
        ),
        "0",
        "a credential DOMAIN.md does not name is found by its name"
    );
    let param = |db: &str, key: &str| {
        query(
            &s,
            db,
            &format!("SELECT value FROM ir_config_parameter WHERE key = '{key}'"),
        )
    };
    assert_eq!(param("odoo_staging", "database.is_neutralized"), "True");
    assert_eq!(
        param("odoo_staging", "web.base.url"),
        "https://staging.example.cr"
    );
    assert_ne!(
        param("odoo_staging", "database.uuid"),
        param("odoo", "database.uuid")
    );
    assert_eq!(
        query(&s, "odoo_staging", "SELECT count(vat) FROM res_partner"),
        "0"
    );
    for file in &certificates {
        assert!(!root.path().join("odoo_staging").join(file).exists());
    }

    assert_eq!(
        sending_state(&s, "odoo"),
        live_before,
        "the live one is as it was"
    );
    for file in &certificates {
        assert!(s.filestore.path().join(file).exists());
    }
    assert_eq!(param("odoo", "database.is_neutralized"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neutralize_is_refused_in_production_before_anything_is_created() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let databases = || {
        query(
            &s,
            "postgres",
            "SELECT string_agg(datname, ',') FROM pg_database",
        )
    };
    let before = databases();
    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_staging", root.path());
    job.neutralize = true;
    job.production = true;
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("production"), "{}", err.message());
    assert_eq!(databases(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_neutralize_statement_neutralizes_nothing_and_says_so() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut job = s.restore_job(&backup.id, "odoo_staging", root.path());
    job.neutralize = true;
    job.neutralize_sql = vec!["UPDATE no_such_table SET x = 1".into()];
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database);
    let message = err.message();
    assert!(message.contains("neutralize-sql statement 1"), "{message}");
    assert!(message.contains("NOT neutralized"), "{message}");
    assert!(message.contains("--cleanup --apply"), "{message}");
    assert_eq!(
        sending_state(&s, "odoo_staging"),
        sending_state(&s, "odoo"),
        "one transaction: nothing half-neutralized"
    );
}
