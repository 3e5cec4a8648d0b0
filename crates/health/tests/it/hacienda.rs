//! `hacienda:*` against the Hacienda-like server over HTTPS: a pass, a cached pass, a refused
//! login and its backoff, 503, a slow API, a clock that is off, a user of the other
//! environment, and a staging copy whose company still points at production. The password
//! never shows.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_sandbox::fixture::OdooStack;
use vigia_sandbox::hacienda::{Accounts, HaciendaServer, Mode};

use crate::{config, run};

const USER: &str = "cpf-01-0123-0456@stag.comprobanteselectronicos.go.cr";
const PASSWORD: &str = "S3cr3t-Hacienda";

async fn server(mode: Mode) -> HaciendaServer {
    let accounts = Accounts {
        username: USER.into(),
        password: PASSWORD.into(),
        claves: BTreeMap::new(),
    };
    HaciendaServer::start(0, accounts, mode).await.unwrap()
}

/// `[hacienda]` naming `server`, with `user` and the password (from a file).
fn hacienda_config(dir: &Path, server: &HaciendaServer, user: &str) -> String {
    let ca = dir.join("hacienda-ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let secret = dir.join("hacienda-password");
    std::fs::write(&secret, PASSWORD).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    format!(
        "[health]\nca-file = \"{}\"\n[hacienda]\nenvironment = \"sandbox\"\nusername = \"{user}\"\n\
         password = \"file:{}\"\nidp-url = \"{}\"\napi-url = \"{}\"\n",
        ca.display(),
        secret.display(),
        server.idp_url(),
        server.api_url()
    )
}

async fn probe(dir: &Path, server: &HaciendaServer, user: &str) -> CheckResult {
    let text = hacienda_config(dir, server, user);
    let report = run(&config(dir, None, "", &text), &["hacienda"]).await;
    assert_eq!(report.checks.len(), 1, "{report:?}");
    let r = report.checks[0].clone();
    let shown = serde_json::to_string(&report).unwrap();
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("t0k3n"),
        "{shown}"
    );
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_is_reused_and_a_refused_login_is_not_retried_within_the_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let good = server(Mode::Normal).await;
    let r = probe(dir.path(), &good, USER).await;
    assert_eq!(
        (r.name.as_str(), r.status),
        ("hacienda:config", CheckStatus::Ok),
        "{r:?}"
    );
    assert!(r.summary.contains("a clean 404"), "{}", r.summary);
    assert_eq!(r.evidence["logged_out"], true);
    assert_eq!(good.logins(), 1);
    let cached = probe(dir.path(), &good, USER).await;
    assert_eq!(cached.status, CheckStatus::Ok);
    assert_eq!(cached.evidence["cached"], true);
    assert_eq!(good.logins(), 1, "a cached pass logs in no more");

    let other = tempfile::tempdir().unwrap();
    let refusing = server(Mode::Refuse).await;
    let r = probe(other.path(), &refusing, USER).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    let again = probe(other.path(), &refusing, USER).await;
    assert_eq!(again.status, CheckStatus::Critical);
    assert!(again.summary.contains("backoff"), "{}", again.summary);
    assert_eq!(refusing.logins(), 1, "no second login within the backoff");
    // A new username clears it.
    let renamed = "cpf-09-9999-9999@stag.comprobanteselectronicos.go.cr";
    probe(other.path(), &refusing, renamed).await;
    assert_eq!(refusing.logins(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_log_in_once() {
    let dir = tempfile::tempdir().unwrap();
    let good = server(Mode::Slow(Duration::from_millis(300))).await;
    let text = hacienda_config(dir.path(), &good, USER);
    let config = config(dir.path(), None, "", &text);
    let (a, b) = tokio::join!(run(&config, &["hacienda"]), run(&config, &["hacienda"]));
    assert_eq!(a.checks[0].status, CheckStatus::Ok, "{a:?}");
    assert_eq!(b.checks[0].status, CheckStatus::Ok, "{b:?}");
    assert_eq!(
        good.logins(),
        1,
        "the second run found the first one's pass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hacienda_down_or_off_the_clock_is_a_warning_and_far_off_critical() {
    let dir = tempfile::tempdir().unwrap();
    let down = server(Mode::Unavailable).await;
    let r = probe(dir.path(), &down, USER).await;
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    assert!(r.summary.contains("HTTP 503"), "{}", r.summary);
    for (skew, expected) in [(120, CheckStatus::Warning), (-600, CheckStatus::Critical)] {
        let dir = tempfile::tempdir().unwrap();
        let off = server(Mode::Skewed(skew)).await;
        let r = probe(dir.path(), &off, USER).await;
        assert_eq!(r.status, expected, "{skew}: {r:?}");
        assert!(r.summary.contains("clock"), "{}", r.summary);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_hacienda_is_a_warning_within_the_checks_own_budget() {
    let dir = tempfile::tempdir().unwrap();
    let slow = server(Mode::Slow(Duration::from_secs(17))).await;
    let started = std::time::Instant::now();
    let r = probe(dir.path(), &slow, USER).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    assert!(r.summary.contains("no answer within 15 s"), "{}", r.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_of_the_other_environment_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let good = server(Mode::Normal).await;
    let prod_user = "cpj-3-101-123456@prod.comprobanteselectronicos.go.cr";
    let r = probe(dir.path(), &good, prod_user).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("production user"), "{}", r.summary);
    assert_eq!(good.logins(), 0);
}

/// The fixture's company 1 is set to production with a @prod user: in a named
/// non-production environment that is a copy pointed at the real Hacienda.
#[tokio::test(flavor = "multi_thread")]
async fn a_staging_copy_pointed_at_production_is_critical_without_a_login() {
    let s = OdooStack::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let staging = crate::config_env(dir.path(), &s.cluster, "staging");
    let report = run(&staging, &["hacienda"]).await;
    let r = &report.checks[0];
    assert_eq!(r.name, "hacienda:1");
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("must use sandbox"), "{}", r.summary);
    let shown = serde_json::to_string(&report).unwrap();
    assert!(!shown.contains("live-hacienda-password"), "{shown}");
}

/// What Odoo uses: the company's own user and password, the production-or-sandbox field,
/// and the clave of its newest submitted document, whose status Hacienda knows.
#[tokio::test(flavor = "multi_thread")]
async fn a_companys_own_credentials_and_newest_clave_are_probed() {
    let s = OdooStack::start().unwrap();
    let clave = format!("50615012700310112345600100001010000000001{:09}", 1);
    assert_eq!(clave.len(), 50);
    let accounts = Accounts {
        username: USER.into(),
        password: PASSWORD.into(),
        claves: BTreeMap::from([(clave.clone(), "aceptado".to_owned())]),
    };
    let hacienda = HaciendaServer::start(0, accounts, Mode::Normal)
        .await
        .unwrap();
    s.cluster
        .psql(
            "odoo",
            &format!(
                "UPDATE res_company SET l10n_cr_hacienda_env = 'sandbox', \
                 l10n_cr_hacienda_username = '{USER}', l10n_cr_hacienda_password = '{PASSWORD}'; \
                 ALTER TABLE l10n_cr_einvoice_document ADD COLUMN company_id int DEFAULT 1; \
                 INSERT INTO l10n_cr_einvoice_document (clave, state, document_type) \
                 VALUES ('{clave}', 'accepted', 'FE')"
            ),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, hacienda.ca_pem()).unwrap();
    let tables = format!(
        "[health]\nca-file = \"{}\"\n[hacienda]\nidp-url = \"{}\"\napi-url = \"{}\"",
        ca.display(),
        hacienda.idp_url(),
        hacienda.api_url()
    );
    let config = crate::config_with(dir.path(), Some(&s.cluster), "", "", &tables);
    let report = run(&config, &["hacienda:1"]).await;
    let r = &report.checks[0];
    assert_eq!(
        (r.name.as_str(), r.status),
        ("hacienda:1", CheckStatus::Ok),
        "{r:?}"
    );
    assert_eq!(r.evidence["ind_estado"], "aceptado");
    assert_eq!(hacienda.logins(), 1);
    let shown = serde_json::to_string(&report).unwrap();
    assert!(!shown.contains(PASSWORD), "{shown}");

    // A company that is not there is unknown, not a silent pass.
    let missing = run(&config, &["hacienda:7"]).await;
    assert_eq!(missing.checks.len(), 1, "{missing:?}");
    assert_eq!(missing.checks[0].status, CheckStatus::Unknown);

    // A state file that cannot be read stops logins instead of forgetting a backoff.
    std::fs::write(dir.path().join("state/hacienda.json"), b"{not json").unwrap();
    let report = run(&config, &["hacienda"]).await;
    assert_eq!(report.checks[0].status, CheckStatus::Warning, "{report:?}");
    assert_eq!(hacienda.logins(), 1);
}
