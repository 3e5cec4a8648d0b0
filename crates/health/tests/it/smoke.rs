//! `vigia smoke`'s checks against a real nginx (configs and certificates made here) in front
//! of the Odoo-like server with its two ports: each check passes on the good site and fails
//! on the mistake it is there for.

use std::path::Path;

use vigia_core::ports::check::CheckStatus;
use vigia_health::{HealthReport, HealthRun, SmokeRequest};
use vigia_sandbox::nginx::{NginxServer, OdooSite};
use vigia_sandbox::odoo_http::{Health, OdooServer};
use vigia_sandbox::odoo_site::Site;
use vigia_sandbox::tls::{Leaf, TestCa};

use crate::{check, config};

const HOST: &str = "erp.example.cr";

/// An Odoo-like server behind nginx, with a certificate for HOST from a test CA.
struct Stack {
    _odoo: OdooServer,
    nginx: NginxServer,
    ca_pem: String,
}

async fn stack(odoo: Site, nginx: &OdooSite) -> Stack {
    stack_with(Health::Pass { db_socket: None }, odoo, nginx).await
}

async fn stack_with(health: Health, odoo: Site, nginx: &OdooSite) -> Stack {
    let server = OdooServer::start_site(0, 0, health, odoo).await.unwrap();
    let root = TestCa::new("Vigia Smoke Root").unwrap();
    let issuing = root.intermediate("Vigia Smoke Issuing CA", None).unwrap();
    let leaf = issuing
        .leaf(&Leaf {
            names: &[HOST],
            common_name: Some(HOST),
            valid_days: Some((-10, 80)),
        })
        .unwrap();
    let chain = format!("{}{}", leaf.cert_pem, issuing.cert_pem());
    let nginx = NginxServer::odoo(
        &server.url(),
        &server.gevent_url(),
        (&chain, &leaf.key_pem),
        nginx,
    )
    .unwrap();
    Stack {
        _odoo: server,
        nginx,
        ca_pem: root.cert_pem(),
    }
}

async fn smoke(dir: &Path, stack: &Stack, extra: &str) -> HealthReport {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &stack.ca_pem).unwrap();
    let odoo = format!("url = \"https://{HOST}:{}\"", stack.nginx.port());
    let tables = format!(
        "[health]\nresolve = {{ \"{HOST}\" = \"127.0.0.1\" }}\nca-file = \"{}\"\n\
         [smoke]\nhttp-url = \"http://{HOST}:{}\"\n{extra}",
        ca.display(),
        stack.nginx.http_port().unwrap()
    );
    let config = config(dir, None, &odoo, &tables);
    HealthRun::smoke(&config, &SmokeRequest::default())
        .unwrap()
        .run()
        .await
}

fn status(report: &HealthReport, name: &str) -> CheckStatus {
    check(report, name).status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_site_passes_every_check_and_writes_its_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack(Site::default(), &OdooSite::default()).await;
    let report = smoke(dir.path(), &stack, "").await;
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vigia_health::names::SMOKE);
    for c in &report.checks {
        assert_eq!(c.status, CheckStatus::Ok, "{}: {}", c.name, c.summary);
    }
    assert_eq!(check(&report, "smoke.score").evidence["score"], 80);
    let tls = &check(&report, "smoke.tls").evidence;
    assert_eq!(tls["TLS 1.3"]["accepted"], true, "{tls}");
    assert_eq!(tls["TLS 1.1"]["accepted"], false, "{tls}");
    let textfile = dir.path().join("state/vigia-smoke.prom");
    crate::promtool_accepts(&textfile);
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains("vigia_smoke_status{check=\"smoke.websocket\"} 0\n"),
        "{metrics}"
    );
    assert!(
        !dir.path().join("state/vigia-health.prom").exists(),
        "a smoke run leaves health's file alone"
    );
    // nginx leaves no worker behind to answer on its ports.
    let ports = [stack.nginx.port(), stack.nginx.http_port().unwrap()];
    drop(stack);
    for port in ports {
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        assert!(gone, "something still answers on port {port}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn weak_tls_is_critical_and_names_what_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let weak = OdooSite {
        weak_tls: true,
        ..OdooSite::default()
    };
    let stack = stack(Site::default(), &weak).await;
    let report = smoke(dir.path(), &stack, "").await;
    let tls = check(&report, "smoke.tls");
    assert_eq!(tls.status, CheckStatus::Critical, "{}", tls.summary);
    for seen in [
        "TLS 1.0 accepted",
        "TLS 1.1 accepted",
        "DHE on TLS 1.2 accepted",
        "CBC on TLS 1.2 accepted",
    ] {
        assert!(tls.summary.contains(seen), "{seen}: {}", tls.summary);
    }
    assert!(
        tls.summary.contains("TLS 1.3 not offered"),
        "{}",
        tls.summary
    );
    // The rest of the site still works.
    assert_eq!(status(&report, "smoke.login"), CheckStatus::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_header_traps_are_found_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let traps = OdooSite {
        assets_drop_headers: true,
        duplicate_frame_options: true,
        ..OdooSite::default()
    };
    let stack = stack(Site::default(), &traps).await;
    let report = smoke(dir.path(), &stack, "").await;
    let headers = check(&report, "smoke.headers");
    assert_eq!(headers.status, CheckStatus::Warning, "{}", headers.summary);
    assert!(
        headers.summary.contains("bundle: HSTS missing"),
        "{}",
        headers.summary
    );
    assert!(
        headers
            .summary
            .contains("login page: x-frame-options sent 2 times"),
        "{}",
        headers.summary
    );
    assert!(!headers.summary.contains("404:"), "{}", headers.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_sent_to_the_http_workers_names_the_routing_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = OdooSite {
        websocket_to_main: true,
        ..OdooSite::default()
    };
    let stack = stack(Site::default(), &wrong).await;
    let report = smoke(dir.path(), &stack, "").await;
    let ws = check(&report, "smoke.websocket");
    assert_eq!(ws.status, CheckStatus::Critical);
    assert!(ws.summary.contains("evented port"), "{}", ws.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_101_without_the_accept_of_our_key_is_not_odoo() {
    let dir = tempfile::tempdir().unwrap();
    let canned = Site {
        canned_upgrade: true,
        ..Site::default()
    };
    let stack = stack(canned, &OdooSite::default()).await;
    let report = smoke(dir.path(), &stack, "").await;
    let ws = check(&report, "smoke.websocket");
    assert_eq!(ws.status, CheckStatus::Critical);
    assert!(
        ws.summary
            .contains("answered 101 without the Sec-WebSocket-Accept of our key"),
        "{}",
        ws.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_manager_that_odoo_itself_refuses_passes() {
    let dir = tempfile::tempdir().unwrap();
    let open = OdooSite {
        database_open: true,
        ..OdooSite::default()
    };
    let stack = stack(Site::default(), &open).await;
    let report = smoke(dir.path(), &stack, "").await;
    let db = check(&report, "smoke.dbmanager");
    assert_eq!(db.status, CheckStatus::Ok, "{}", db.summary);
    // Odoo's own answers, not nginx's 404: a 403 page and a JSON-RPC error.
    assert_eq!(db.evidence["manager_status"], 403);
    assert_eq!(db.evidence["list_status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_database_manager_a_missing_bundle_and_another_series_fail() {
    let dir = tempfile::tempdir().unwrap();
    let odoo = Site {
        list_db: true,
        missing_asset: true,
        ..Site::default()
    };
    let open = OdooSite {
        database_open: true,
        ..OdooSite::default()
    };
    let stack = stack(odoo, &open).await;
    let report = smoke(dir.path(), &stack, "expect-series = \"18.0\"\n").await;
    let db = check(&report, "smoke.dbmanager");
    assert_eq!(db.status, CheckStatus::Critical, "{}", db.summary);
    assert!(db.summary.contains("lists 1 database"), "{}", db.summary);
    let login = check(&report, "smoke.login");
    assert_eq!(login.status, CheckStatus::Critical, "{}", login.summary);
    assert!(
        login
            .summary
            .contains("web.assets_frontend_lazy.min.js answered 404"),
        "{}",
        login.summary
    );
    let version = check(&report, "smoke.version");
    assert_eq!(version.status, CheckStatus::Critical);
    assert!(
        version.summary.contains("runs Odoo 19.0"),
        "{}",
        version.summary
    );
    assert_eq!(report.status, CheckStatus::Critical);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_is_no_tls_and_no_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let odoo = OdooServer::start_site(0, 0, Health::Pass { db_socket: None }, Site::default())
        .await
        .unwrap();
    let config = config(dir.path(), None, "", "");
    let request = SmokeRequest {
        url: Some(odoo.url()),
    };
    let report = HealthRun::smoke(&config, &request).unwrap().run().await;
    for name in ["tls", "smoke.tls"] {
        let c = check(&report, name);
        assert_eq!(c.status, CheckStatus::Critical, "{name}");
        assert!(c.summary.starts_with("no TLS"), "{name}: {}", c.summary);
    }
    let headers = check(&report, "smoke.headers");
    assert!(
        headers.summary.contains("HSTS missing (not https)"),
        "{}",
        headers.summary
    );
    assert!(
        headers.summary.contains("plain HTTP is not redirected"),
        "nothing answers on port 80: {}",
        headers.summary
    );
    // Odoo's own session cookie is not Secure without the proxy's X-Forwarded-Proto.
    assert_eq!(status(&report, "smoke.login"), CheckStatus::Warning);
    let score = check(&report, "smoke.score");
    assert_eq!(score.status, CheckStatus::Warning, "{}", score.summary);
    assert!(score.evidence["score"].as_u64() < Some(70));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_port_that_answers_plain_http_is_critical_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let odoo = OdooServer::start(0, Health::Pass { db_socket: None })
        .await
        .unwrap();
    let url = odoo.url().replace("http://", "https://");
    let config = config(dir.path(), None, "", "[health]\ntimeout = \"5s\"\n");
    let report = HealthRun::smoke(&config, &SmokeRequest { url: Some(url) })
        .unwrap()
        .run()
        .await;
    for name in [
        "smoke.health",
        "smoke.login",
        "smoke.websocket",
        "smoke.version",
    ] {
        let c = check(&report, name);
        assert_eq!(c.status, CheckStatus::Critical, "{name}: {}", c.summary);
        assert!(
            c.summary.contains("no answer from"),
            "{name}: {}",
            c.summary
        );
    }
    let tls = check(&report, "smoke.tls");
    assert_eq!(tls.status, CheckStatus::Critical);
    assert!(
        tls.summary.ends_with("wrong version number"),
        "openssl's words for plain HTTP: {}",
        tls.summary
    );
    let cert = check(&report, "tls");
    assert_eq!(cert.status, CheckStatus::Critical, "{}", cert.summary);
    assert!(
        cert.summary.starts_with("no certificate from"),
        "{}",
        cert.summary
    );
    assert_eq!(report.status, CheckStatus::Critical);
}

#[tokio::test(flavor = "multi_thread")]
async fn odoo_failing_behind_nginx_fails_health_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_with(Health::Fail, Site::default(), &OdooSite::default()).await;
    let report = smoke(dir.path(), &stack, "").await;
    assert_eq!(status(&report, "smoke.health"), CheckStatus::Critical);
    let latency = check(&report, "smoke.latency");
    assert_eq!(latency.status, CheckStatus::Critical, "{}", latency.summary);
    assert!(
        latency.summary.contains("20 of 20 failed (first: 500)"),
        "{}",
        latency.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_odoo_is_a_latency_warning() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Health::Slow(std::time::Duration::from_millis(1050));
    let stack = stack_with(slow, Site::default(), &OdooSite::default()).await;
    let report = smoke(dir.path(), &stack, "").await;
    let latency = check(&report, "smoke.latency");
    assert_eq!(latency.status, CheckStatus::Warning, "{}", latency.summary);
    assert!(latency.evidence["p95_ms"].as_u64() >= Some(1050));
    assert_eq!(status(&report, "smoke.health"), CheckStatus::Ok);
}
