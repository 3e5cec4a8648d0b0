//! `odoo.internal` and `odoo.public` against the Odoo-like server in each mode, over real
//! sockets.

use vigia_core::ports::check::CheckStatus;
use vigia_sandbox::nginx::NginxServer;
use vigia_sandbox::odoo_http::{Health, OdooServer};

use crate::{check, config, run, status};

async fn server(health: Health) -> OdooServer {
    OdooServer::start(0, health).await.unwrap()
}

#[tokio::test]
async fn a_passing_odoo_is_ok_and_a_failing_one_critical() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (
        server(Health::Pass { db_socket: None }).await,
        server(Health::Fail).await,
    );
    let odoo = format!("internal-url = \"{}\"\nurl = \"{}\"", good.url(), bad.url());
    let report = run(
        &config(dir.path(), None, &odoo, ""),
        &["odoo.internal", "odoo.public"],
    )
    .await;
    assert_eq!(status(&report, "odoo.internal"), CheckStatus::Ok);
    let public = check(&report, "odoo.public");
    assert_eq!(public.status, CheckStatus::Critical);
    assert!(public.summary.contains("500"), "{}", public.summary);
}

/// The old script counted nginx's 301 as "Odoo healthy" (DOMAIN.md 6).
#[tokio::test]
async fn a_redirect_is_critical_and_names_where_it_points() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = server(Health::Redirect("https://erp.example.cr/web/health".into())).await;
    let odoo = format!("internal-url = \"{}\"", nginx.url());
    let report = run(&config(dir.path(), None, &odoo, ""), &["odoo.internal"]).await;
    let internal = check(&report, "odoo.internal");
    assert_eq!(internal.status, CheckStatus::Critical);
    assert!(internal.summary.contains("301"), "{}", internal.summary);
    assert_eq!(
        internal.evidence["location"],
        "https://erp.example.cr/web/health"
    );
}

/// Through a real nginx, as `[odoo] url` reaches Odoo in production: a healthy Odoo behind
/// it passes, nginx forcing HTTPS (301) and nginx with Odoo down (502) are critical, and
/// `[health] resolve` pins the public name to the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn through_nginx_only_odoos_own_pass_counts() {
    let dir = tempfile::tempdir().unwrap();
    let odoo = server(Health::Pass { db_socket: None }).await;
    let proxy = NginxServer::proxy(&odoo.url()).unwrap();
    let https_only = NginxServer::redirect_to_https().unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let to_nothing = NginxServer::proxy(&format!("http://127.0.0.1:{dead_port}")).unwrap();
    let pinned = "[health]\nresolve = { \"erp.example.cr\" = \"127.0.0.1\" }";
    let public = async |port: u16| {
        let odoo = format!(
            "internal-url = \"{}\"\nurl = \"http://erp.example.cr:{port}\"",
            odoo.url()
        );
        let report = run(&config(dir.path(), None, &odoo, pinned), &["odoo.public"]).await;
        check(&report, "odoo.public").clone()
    };
    let through = public(proxy.port()).await;
    assert_eq!(through.status, CheckStatus::Ok, "{through:?}");
    let redirected = public(https_only.port()).await;
    assert_eq!(redirected.status, CheckStatus::Critical, "{redirected:?}");
    assert_eq!(
        redirected.evidence["location"],
        "https://erp.example.cr/web/health?db_server_status=1"
    );
    let down = public(to_nothing.port()).await;
    assert_eq!(down.status, CheckStatus::Critical, "{down:?}");
    assert!(down.summary.contains("502"), "{}", down.summary);
}

#[tokio::test]
async fn a_hanging_odoo_is_critical_at_the_timeout_never_a_hung_run() {
    let dir = tempfile::tempdir().unwrap();
    let stuck = server(Health::Hang).await;
    let odoo = format!("internal-url = \"{}\"", stuck.url());
    let config = config(dir.path(), None, &odoo, "[health]\ntimeout = \"1s\"");
    let started = std::time::Instant::now();
    let report = run(&config, &["odoo.internal", "memory"]).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let internal = check(&report, "odoo.internal");
    assert_eq!(internal.status, CheckStatus::Critical);
    assert_eq!(internal.summary, "no answer within 1 s");
    // The other check finished in its own time.
    assert!(check(&report, "memory").duration_ms < 1000);
}

#[tokio::test]
async fn nobody_listening_is_critical_and_an_unset_url_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let odoo = format!("internal-url = \"http://127.0.0.1:{port}\"");
    let report = run(
        &config(dir.path(), None, &odoo, ""),
        &["odoo.internal", "odoo.public"],
    )
    .await;
    let internal = check(&report, "odoo.internal");
    assert_eq!(internal.status, CheckStatus::Critical);
    assert!(
        internal.summary.contains("no answer"),
        "{}",
        internal.summary
    );
    let public = check(&report, "odoo.public");
    assert_eq!(public.status, CheckStatus::Skipped);
    assert_eq!(public.summary, "[odoo] url is not set");
}

#[tokio::test]
async fn resolve_pins_a_name_to_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let odoo_server = server(Health::Pass { db_socket: None }).await;
    let port = odoo_server.url().rsplit(':').next().unwrap().to_owned();
    let odoo = format!("url = \"http://erp.vigia.invalid:{port}\"");
    let tables = "[health]\nresolve = { \"erp.vigia.invalid\" = \"127.0.0.1\" }";
    let report = run(&config(dir.path(), None, &odoo, tables), &["odoo.internal"]).await;
    assert_eq!(status(&report, "odoo.internal"), CheckStatus::Ok);
    // Without the pin the name does not resolve.
    let report = run(&config(dir.path(), None, &odoo, ""), &["odoo.internal"]).await;
    assert_eq!(status(&report, "odoo.internal"), CheckStatus::Critical);
}

#[tokio::test]
async fn a_password_in_the_url_never_reaches_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let odoo = format!("internal-url = \"http://admin:s3cr3t-pw@127.0.0.1:{refused}\"");
    let report = run(&config(dir.path(), None, &odoo, ""), &["odoo.internal"]).await;
    let text = serde_json::to_string(&report).unwrap();
    assert_eq!(status(&report, "odoo.internal"), CheckStatus::Critical);
    assert!(
        !text.contains("s3cr3t-pw") && !text.contains("admin"),
        "{text}"
    );
}

/// A busy Odoo that answers within the budget passes; one slower than the budget is critical.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_odoo_passes_within_the_budget_only() {
    let dir = tempfile::tempdir().unwrap();
    let slow = server(Health::Slow(std::time::Duration::from_millis(1500))).await;
    let odoo = format!("internal-url = \"{}\"", slow.url());
    let patient = config(dir.path(), None, &odoo, "[health]\ntimeout = \"3s\"");
    assert_eq!(
        status(&run(&patient, &["odoo.internal"]).await, "odoo.internal"),
        CheckStatus::Ok
    );
    let hasty = config(dir.path(), None, &odoo, "[health]\ntimeout = \"1s\"");
    let report = run(&hasty, &["odoo.internal"]).await;
    assert_eq!(
        check(&report, "odoo.internal").summary,
        "no answer within 1 s"
    );
}
