//! `vigia-sandbox serve postgres|s3 [--bucket NAME]`: starts a throwaway server, prints its
//! addresses as one JSON line on stdout, and runs until stdin closes or SIGINT / SIGTERM.
//! `vigia-sandbox serve odoo --port N [--gevent-port N] [--health pass|fail|hang|slow]
//! [--delay-ms N] [--db-socket PATH] [--site normal|missing-asset|list-db]`: the Odoo-like
//! HTTP server (its main and evented ports), run as a service would be (until SIGINT /
//! SIGTERM; stdin is ignored).
//! `vigia-sandbox serve site [--no-login-limit]`: the stack's site, HTTPS through nginx (a
//! certificate for erp.example.cr from a CA made for it) in front of the Odoo-like server; it
//! announces the url, the plain-HTTP url, the CA file and the address to pin the host to.
//! `vigia-sandbox serve hacienda [--mode normal|refuse|unavailable]`: the Hacienda-like HTTPS
//! server (token, logout, recepcion) with one account, whose username, password (made for
//! this run), URLs and CA file it announces.
//! `vigia-sandbox serve webhook [--port N] [--status CODE]`: a Slack-compatible webhook that
//! prints each POST's JSON body as one line on stdout, after the announcing line.
//! `vigia-sandbox images --pg-bin-dir DIR`: builds (once) the compose tests' release images
//! on the engine DOCKER_HOST names and prints their references as JSON. For pytest, C
//! tests, the local runtime's tests and benchmarks.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;
use tokio::io::AsyncReadExt;
use vigia_sandbox::engine::Engine;
use vigia_sandbox::hacienda::{Accounts, HaciendaServer, Mode};
use vigia_sandbox::nginx::{NginxServer, OdooSite};
use vigia_sandbox::odoo_http::{Health, OdooServer};
use vigia_sandbox::odoo_site::Site;
use vigia_sandbox::postgres::PgCluster;
use vigia_sandbox::s3::{REGION, S3Server};
use vigia_sandbox::tls::{Leaf, TestCa};
use vigia_sandbox::webhook::WebhookServer;

const USAGE: &str = "usage: vigia-sandbox serve postgres | vigia-sandbox serve s3 [--bucket NAME] \
                     | vigia-sandbox serve odoo --port N [--gevent-port N] \
                     [--health pass|fail|hang|slow] [--delay-ms N] [--db-socket PATH] \
                     [--site normal|missing-asset|list-db] \
                     | vigia-sandbox serve site [--no-login-limit] \
                     | vigia-sandbox serve hacienda [--mode normal|refuse|unavailable] \
                     | vigia-sandbox serve webhook [--port N] [--status CODE] \
                     | vigia-sandbox images --pg-bin-dir DIR";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["serve", "postgres"] => serve_postgres().await,
        ["serve", "s3"] => serve_s3("vigia").await,
        ["serve", "s3", "--bucket", bucket] => serve_s3(bucket).await,
        ["serve", "odoo", rest @ ..] => serve_odoo(rest).await,
        ["serve", "webhook", rest @ ..] => serve_webhook(rest).await,
        ["serve", "site"] => serve_site(false).await,
        ["serve", "hacienda"] => serve_hacienda(Mode::Normal).await,
        ["serve", "hacienda", "--mode", mode] => match *mode {
            "normal" => serve_hacienda(Mode::Normal).await,
            "refuse" => serve_hacienda(Mode::Refuse).await,
            "unavailable" => serve_hacienda(Mode::Unavailable).await,
            _ => Err(USAGE.to_owned()),
        },
        ["serve", "site", "--no-login-limit"] => serve_site(true).await,
        ["images", "--pg-bin-dir", dir] => images(dir),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "vigia-sandbox: {message}");
            ExitCode::FAILURE
        }
    }
}

fn images(pg_bin_dir: &str) -> Result<(), String> {
    let engine = Engine::get()?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let images = engine.stack_images(&me, std::path::Path::new(pg_bin_dir), "pass")?;
    announce(&json!({ "kind": "images", "images": images }));
    Ok(())
}

async fn serve_postgres() -> Result<(), String> {
    let cluster = PgCluster::start().map_err(|e| e.to_string())?;
    announce(&json!({
        "kind": "postgres",
        "host": cluster.socket_dir(),
        "port": cluster.port(),
        "user": cluster.user(),
        "bin_dir": cluster.bin_dir(),
        "log": cluster.log_path(),
    }));
    wait_for_stop().await;
    drop(cluster);
    Ok(())
}

async fn serve_s3(bucket: &str) -> Result<(), String> {
    let server = S3Server::start().await.map_err(|e| e.to_string())?;
    server.create_bucket(bucket).map_err(|e| e.to_string())?;
    announce(&json!({
        "kind": "s3",
        "endpoint": server.endpoint(),
        "region": REGION,
        "bucket": bucket,
        "access_key": server.access_key(),
        "secret_key": server.secret_key(),
        "bucket_dir": server.bucket_dir(bucket),
    }));
    wait_for_stop().await;
    Ok(())
}

async fn serve_odoo(args: &[&str]) -> Result<(), String> {
    let (mut port, mut health, mut db_socket, mut delay_ms) = (None, "pass", None, 2000u64);
    let (mut gevent_port, mut site) = (0u16, Site::default());
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| USAGE.to_owned())?;
        match *flag {
            "--port" => port = Some(value.parse::<u16>().map_err(|e| format!("--port: {e}"))?),
            "--health" => health = value,
            "--db-socket" => db_socket = Some(std::path::PathBuf::from(value)),
            "--delay-ms" => delay_ms = value.parse().map_err(|e| format!("--delay-ms: {e}"))?,
            "--gevent-port" => {
                gevent_port = value.parse().map_err(|e| format!("--gevent-port: {e}"))?;
            }
            "--site" => {
                site = match *value {
                    "normal" => Site::default(),
                    "missing-asset" => Site {
                        missing_asset: true,
                        ..Site::default()
                    },
                    "list-db" => Site {
                        list_db: true,
                        ..Site::default()
                    },
                    _ => return Err(USAGE.to_owned()),
                };
            }
            _ => return Err(USAGE.to_owned()),
        }
    }
    let health = match health {
        "pass" => Health::Pass { db_socket },
        "fail" => Health::Fail,
        "hang" => Health::Hang,
        "slow" => Health::Slow(std::time::Duration::from_millis(delay_ms)),
        _ => return Err(USAGE.to_owned()),
    };
    let port = port.ok_or_else(|| USAGE.to_owned())?;
    let server = OdooServer::start_site(port, gevent_port, health, site)
        .await
        .map_err(|e| e.to_string())?;
    announce(&json!({ "kind": "odoo", "url": server.url(), "gevent_url": server.gevent_url() }));
    wait_for_signal().await;
    Ok(())
}

async fn serve_site(no_login_limit: bool) -> Result<(), String> {
    const HOST: &str = "erp.example.cr";
    let odoo = OdooServer::start_site(0, 0, Health::Pass { db_socket: None }, Site::default())
        .await
        .map_err(|e| e.to_string())?;
    let root = TestCa::new("Vigia Sandbox Root").map_err(|e| e.to_string())?;
    let issuing = root
        .intermediate("Vigia Sandbox Issuing CA", None)
        .map_err(|e| e.to_string())?;
    let leaf = issuing
        .leaf(&Leaf {
            names: &[HOST],
            common_name: Some(HOST),
            valid_days: Some((-1, 90)),
        })
        .map_err(|e| e.to_string())?;
    let chain = format!("{}{}", leaf.cert_pem, issuing.cert_pem());
    let site = OdooSite {
        no_login_limit,
        ..OdooSite::default()
    };
    let nginx = NginxServer::odoo(
        &odoo.url(),
        &odoo.gevent_url(),
        (&chain, &leaf.key_pem),
        &site,
    )
    .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, root.cert_pem()).map_err(|e| e.to_string())?;
    announce(&json!({
        "kind": "site",
        "url": format!("https://{HOST}:{}", nginx.port()),
        "http_url": format!("http://{HOST}:{}", nginx.http_port().unwrap_or_default()),
        "host": HOST,
        "port": nginx.port(),
        "address": "127.0.0.1",
        "ca_file": ca_file,
    }));
    wait_for_stop().await;
    drop(nginx);
    Ok(())
}

async fn serve_hacienda(mode: Mode) -> Result<(), String> {
    let username = "cpf-01-0123-0456@stag.comprobanteselectronicos.go.cr";
    // A password made for this run: the test server's own account, announced to its caller.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let password = format!("sandbox-{nanos:x}-{}", std::process::id());
    let accounts = Accounts {
        username: username.to_owned(),
        password: password.clone(),
        claves: std::collections::BTreeMap::new(),
    };
    let server = HaciendaServer::start(0, accounts, mode)
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_file = dir.path().join("hacienda-ca.pem");
    std::fs::write(&ca_file, server.ca_pem()).map_err(|e| e.to_string())?;
    announce(&json!({
        "kind": "hacienda",
        "idp_url": server.idp_url(),
        "api_url": server.api_url(),
        "ca_file": ca_file,
        "username": username,
        "password": password,
    }));
    wait_for_stop().await;
    Ok(())
}

async fn serve_webhook(args: &[&str]) -> Result<(), String> {
    let (mut port, mut status) = (0u16, 200u16);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| USAGE.to_owned())?;
        match *flag {
            "--port" => port = value.parse().map_err(|e| format!("--port: {e}"))?,
            "--status" => status = value.parse().map_err(|e| format!("--status: {e}"))?,
            _ => return Err(USAGE.to_owned()),
        }
    }
    let server = WebhookServer::start_with(port, status, std::sync::Arc::new(|v| announce(&v)))
        .await
        .map_err(|e| e.to_string())?;
    announce(&json!({ "kind": "webhook", "url": server.url() }));
    wait_for_stop().await;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn announce(value: &serde_json::Value) {
    println!("{value}");
    let _ = std::io::stdout().flush();
}

/// Until SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
}

/// Until stdin reaches end of file, or SIGINT / SIGTERM.
async fn wait_for_stop() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    tokio::select! {
        () = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
}
