//! `p12:<company id>` and `p12:config` against keys `openssl` makes as Hacienda's are: a
//! `.p12` with the legacy RC2-40 / 3DES encryption and one with AES-256, a PEM pair, a wrong
//! PIN, another company's cedula; read from a file and from Odoo's attachments.

use std::path::Path;
use std::process::Command;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_sandbox::fixture::OdooStack;
use vigia_sandbox::odoo::write_file;

use crate::{config, config_with, run};

const PIN: &str = "4321";

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is missing: install the Debian package openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cert.pem` and `key.pem` for `serial` (the subject's serialNumber), valid `days`, and
/// the `.p12` of them twice: `legacy.p12` (RC2-40 / 3DES) and `modern.p12` (AES-256).
fn keys(dir: &Path, serial: &str, days: &str) {
    let subject = format!("/CN=SOLUCIONES GMS SOCIEDAD ANONIMA/serialNumber={serial}");
    openssl(
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days, "-subj", &subject,
            "-keyout", "key.pem", "-out", "cert.pem",
        ],
        dir,
    );
    let pass = format!("pass:{PIN}");
    openssl(
        &[
            "pkcs12",
            "-export",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-passout",
            &pass,
            "-out",
            "modern.p12",
        ],
        dir,
    );
    openssl(
        &[
            "pkcs12",
            "-export",
            "-legacy",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-passout",
            &pass,
            "-out",
            "legacy.p12",
        ],
        dir,
    );
}

async fn from_file(dir: &Path, file: &str, pin: &str, cedula: &str) -> CheckResult {
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, pin).unwrap();
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let hacienda = format!(
        "[hacienda]\ncertificate = \"{}\"\npin = \"file:{}\"\ncedula = \"{cedula}\"",
        dir.join(file).display(),
        pin_file.display()
    );
    let report = run(&config(dir, None, "", &hacienda), &["p12"]).await;
    assert_eq!(report.checks.len(), 1, "{report:?}");
    report.checks[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_and_modern_keys_open_and_a_wrong_pin_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path(), "CPJ-3-101-123456", "400");
    for file in ["legacy.p12", "modern.p12"] {
        let r = from_file(dir.path(), file, PIN, "3101123456").await;
        assert_eq!(
            (r.name.as_str(), r.status),
            ("p12:config", CheckStatus::Ok),
            "{file}: {r:?}"
        );
        assert_eq!(r.evidence["key_matches"], true);
        assert_eq!(r.evidence["serial_number"], "CPJ-3-101-123456");
    }
    let wrong = from_file(dir.path(), "legacy.p12", "9999", "3101123456").await;
    assert_eq!(wrong.status, CheckStatus::Critical, "{wrong:?}");
    assert!(wrong.summary.contains("legacy.p12"), "{}", wrong.summary);
    let shown = serde_json::to_string(&wrong).unwrap();
    assert!(!shown.contains("9999") && !shown.contains(PIN), "{shown}");

    let other = from_file(dir.path(), "modern.p12", PIN, "3101999999").await;
    assert_eq!(other.status, CheckStatus::Critical);
    assert!(
        other.summary.contains("cedula 3101999999"),
        "{}",
        other.summary
    );

    // A file that asks for hours of key derivation is refused before any round runs.
    let pass = format!("pass:{PIN}");
    openssl(
        &[
            "pkcs12",
            "-export",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-passout",
            &pass,
            "-iter",
            "3000000",
            // The MAC asks for one round: only the bags' own rounds give it away.
            "-nomaciter",
            "-out",
            "rounds.p12",
        ],
        dir.path(),
    );
    let rounds = from_file(dir.path(), "rounds.p12", PIN, "3101123456").await;
    assert_eq!(rounds.status, CheckStatus::Critical, "{rounds:?}");
    assert!(
        rounds.summary.contains("3000000 key-derivation rounds"),
        "{}",
        rounds.summary
    );
    std::fs::write(dir.path().join("garbage.p12"), b"not a key at all").unwrap();
    let garbage = from_file(dir.path(), "garbage.p12", PIN, "3101123456").await;
    assert_eq!(garbage.status, CheckStatus::Critical);
    let missing = from_file(dir.path(), "absent.p12", PIN, "3101123456").await;
    assert_eq!(missing.status, CheckStatus::Critical);
    assert!(
        missing.summary.contains("absent.p12"),
        "{}",
        missing.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_ending_soon_warns_then_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path(), "CPJ-3-101-123456", "20");
    let r = from_file(dir.path(), "modern.p12", PIN, "3101123456").await;
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    let soon = tempfile::tempdir().unwrap();
    keys(soon.path(), "CPJ-3-101-123456", "5");
    let r = from_file(soon.path(), "modern.p12", PIN, "3101123456").await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
}

/// Where Odoo keeps them: the company's attachments in the filestore, its PIN in
/// `l10n_cr_key_password` (the fixture's company 1: vat 3101123456).
#[tokio::test(flavor = "multi_thread")]
async fn each_companys_attached_key_is_judged_on_its_own() {
    let s = OdooStack::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    keys(&keys_dir, "CPJ-3-101-123456", "400");
    let filestore = dir.path().join("data/filestore/odoo");
    std::fs::create_dir_all(&filestore).unwrap();
    let attach = |file: &str, company: i32, field: &str| {
        let bytes = std::fs::read(keys_dir.join(file)).unwrap();
        let fname = write_file(&filestore, &bytes).unwrap();
        s.cluster
            .psql(
                "odoo",
                &format!(
                    "INSERT INTO ir_attachment (name, res_model, res_field, res_id, store_fname) \
                     VALUES ('{file}', 'res.company', '{field}', {company}, '{fname}')"
                ),
            )
            .unwrap();
        fname
    };
    s.cluster
        .psql(
            "odoo",
            &format!("UPDATE res_company SET l10n_cr_key_password = '{PIN}'"),
        )
        .unwrap();
    attach("legacy.p12", 1, "l10n_cr_certificate");
    // Company 2: a PEM certificate with its separate PEM key, and another company's cedula.
    s.cluster
        .psql(
            "odoo",
            "INSERT INTO res_company (id, name, vat) VALUES (2, 'Sucursal', '3101777777')",
        )
        .unwrap();
    attach("cert.pem", 2, "l10n_cr_certificate");
    attach("key.pem", 2, "l10n_cr_private_key");
    let data_dir = format!("data-dir = \"{}\"", dir.path().join("data").display());
    let config = config_with(dir.path(), Some(&s.cluster), &data_dir, "", "");
    let report = run(&config, &["p12"]).await;
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["p12:1", "p12:2"], "{report:?}");
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Ok,
        "{:?}",
        report.checks[0]
    );
    assert_eq!(report.checks[0].evidence["format"], "PKCS#12");
    let second = &report.checks[1];
    assert_eq!(second.status, CheckStatus::Critical, "{second:?}");
    assert_eq!(second.evidence["format"], "PEM");
    assert_eq!(second.evidence["key_matches"], true);
    assert!(
        second.summary.contains("cedula 3101777777"),
        "{}",
        second.summary
    );

    // --only picks one company.
    let one = run(&config, &["p12:2"]).await;
    assert_eq!(one.checks.len(), 1);
    assert_eq!(one.checks[0].name, "p12:2");

    // A file swapped under its name is not read.
    let swapped = attach("modern.p12", 1, "l10n_cr_certificate");
    std::fs::write(filestore.join(&swapped), b"tampered").unwrap();
    let report = run(&config, &["p12:1"]).await;
    assert_eq!(report.checks[0].status, CheckStatus::Critical);
    assert!(
        report.checks[0].summary.contains("does not hold the bytes"),
        "{:?}",
        report.checks[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_module_the_check_is_skipped() {
    let s = OdooStack::start().unwrap();
    s.cluster.create_database("plain").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), Some(&s.cluster), "database = \"plain\"", "", "");
    let report = run(&config, &["p12"]).await;
    assert_eq!(report.checks[0].status, CheckStatus::Skipped, "{report:?}");
    assert_eq!(report.checks[0].summary, "l10n_cr_einvoice not installed");
}
