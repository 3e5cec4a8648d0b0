//! `tls` against a real nginx serving certificates made for each case (rcgen): the leaf is
//! judged even when a client would refuse it, so each failure says what was served.

use std::path::Path;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_sandbox::nginx::NginxServer;
use vigia_sandbox::tls::{Leaf, ServerCert, TestCa};

use crate::{check, config, run};

const HOST: &str = "erp.example.cr";

/// The check against `server`, trusting `root` (PEM) besides the system's roots.
async fn tls(dir: &Path, port: u16, root: &str) -> CheckResult {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, root).unwrap();
    let odoo = format!("url = \"https://{HOST}:{port}\"");
    let health = format!(
        "[health]\nresolve = {{ \"{HOST}\" = \"127.0.0.1\" }}\nca-file = \"{}\"",
        ca.display()
    );
    let report = run(&config(dir, None, &odoo, &health), &["tls"]).await;
    check(&report, "tls").clone()
}

struct Pki {
    root: TestCa,
    intermediate: TestCa,
}

impl Pki {
    fn new() -> Self {
        let root = TestCa::new("Vigia Test Root").unwrap();
        let intermediate = root.intermediate("Vigia Test Issuing CA", None).unwrap();
        Self { root, intermediate }
    }

    fn leaf(&self, names: &[&str], days: (i64, i64)) -> ServerCert {
        self.intermediate
            .leaf(&Leaf {
                names,
                common_name: names.first().copied(),
                valid_days: Some(days),
            })
            .unwrap()
    }

    /// nginx serving `cert` with the intermediate after it (as it must be configured).
    fn serve(&self, cert: &ServerCert) -> NginxServer {
        let chain = format!("{}{}", cert.cert_pem, self.intermediate.cert_pem());
        NginxServer::https(&chain, &cert.key_pem, "").unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_is_judged_in_days_and_as_a_share_of_the_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let root = pki.root.cert_pem();
    let cases = [
        (
            (-70, 20),
            CheckStatus::Warning,
            "a 90-day certificate with 20 days left",
        ),
        (
            (-85, 5),
            CheckStatus::Critical,
            "a 90-day certificate with 5 days left",
        ),
        (
            (-27, 20),
            CheckStatus::Ok,
            "a 47-day certificate with 20 days left",
        ),
        ((-1, 300), CheckStatus::Ok, "a fresh certificate"),
    ];
    for (days, expected, what) in cases {
        let server = pki.serve(&pki.leaf(&[HOST], days));
        let r = tls(dir.path(), server.port(), &root).await;
        assert_eq!(r.status, expected, "{what}: {r:?}");
        assert_eq!(r.evidence["verified"], true, "{what}");
        assert_eq!(r.evidence["names"][0], HOST);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_a_client_refuses_is_critical_with_what_was_served() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let root = pki.root.cert_pem();

    let expired = pki.serve(&pki.leaf(&[HOST], (-100, -3)));
    let r = tls(dir.path(), expired.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("expired 3 days ago"), "{}", r.summary);
    assert_eq!(r.evidence["verified"], false);

    let early = pki.serve(&pki.leaf(&[HOST], (2, 90)));
    let r = tls(dir.path(), early.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("not valid before"), "{}", r.summary);

    let wrong = pki.serve(&pki.leaf(&["shop.example.cr"], (-1, 90)));
    let r = tls(dir.path(), wrong.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(
        r.summary.contains("not valid for erp.example.cr"),
        "{}",
        r.summary
    );
    assert_eq!(r.evidence["names"][0], "shop.example.cr");

    // The leaf alone, without the intermediate nginx should send after it.
    let leaf = pki.leaf(&[HOST], (-1, 90));
    let alone = NginxServer::https(&leaf.cert_pem, &leaf.key_pem, "").unwrap();
    let r = tls(dir.path(), alone.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("intermediate"), "{}", r.summary);
    assert_eq!(r.evidence["chain_length"], 1);

    // Two things wrong at once: the chain and the name; both are said.
    let stray = pki.leaf(&["shop.example.cr"], (-1, 90));
    let both = NginxServer::https(&stray.cert_pem, &stray.key_pem, "").unwrap();
    let r = tls(dir.path(), both.port(), &root).await;
    assert!(
        r.summary.contains("not valid for erp.example.cr"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("intermediate"), "{}", r.summary);

    // A leaf in its dates under an intermediate out of its own.
    let lapsed = Pki {
        intermediate: pki
            .root
            .intermediate("Lapsed Issuing CA", Some((-400, -1)))
            .unwrap(),
        root: TestCa::new("unused").unwrap(),
    };
    let served = lapsed.serve(&lapsed.leaf(&[HOST], (-10, 80)));
    let r = tls(dir.path(), served.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(
        r.summary.contains("a certificate of the chain"),
        "{}",
        r.summary
    );

    // A common name and no subject alternative names: no client accepts it any more.
    let no_san = pki
        .intermediate
        .leaf(&Leaf {
            names: &[],
            common_name: Some(HOST),
            valid_days: Some((-1, 90)),
        })
        .unwrap();
    let served = pki.serve(&no_san);
    let r = tls(dir.path(), served.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert_eq!(r.evidence["names"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_tls_where_it_is_expected_is_critical_never_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("unused").unwrap().cert_pem();
    // A port that answers plain HTTP.
    let plain = NginxServer::redirect_to_https().unwrap();
    let r = tls(dir.path(), plain.port(), &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(
        r.summary.starts_with("no certificate from"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("it answered `HTTP/1.1 400 Bad Request`"),
        "{}",
        r.summary
    );
    // A server that closes the connection during the handshake.
    let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closing.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in closing.incoming().flatten() {
            drop(stream);
        }
    });
    let r = tls(dir.path(), port, &root).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    // An http:// url.
    let report = run(
        &config(dir.path(), None, "url = \"http://erp.example.cr\"", ""),
        &["tls"],
    )
    .await;
    let r = check(&report, "tls");
    assert_eq!(r.status, CheckStatus::Critical);
    assert!(r.summary.starts_with("no TLS"), "{}", r.summary);
}

/// SHA-1 and a 1024-bit RSA key: made with `openssl req` (rcgen makes neither), served by an
/// nginx told to accept them (`@SECLEVEL=0`), refused by every browser.
#[tokio::test(flavor = "multi_thread")]
async fn a_sha1_signature_and_a_short_rsa_key_are_critical() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("weak.pem"), dir.path().join("weak.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:1024", "-sha1", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=erp.example.cr",
            "-addext",
            "subjectAltName=DNS:erp.example.cr",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is missing: install the Debian package openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    let weak = NginxServer::https(
        &pem,
        &std::fs::read_to_string(&key).unwrap(),
        "ssl_ciphers DEFAULT:@SECLEVEL=0;",
    )
    .unwrap();
    let r = tls(dir.path(), weak.port(), &pem).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.summary.contains("SHA-1"), "{}", r.summary);
    assert!(r.summary.contains("1024 bits"), "{}", r.summary);
}

/// The certificate judged is the one nginx serves for the URL's host (SNI), not its default.
#[tokio::test(flavor = "multi_thread")]
async fn the_name_is_sent_so_the_sites_own_certificate_is_judged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let right = pki.leaf(&[HOST], (-1, 300));
    let other = pki.leaf(&["default.example.cr"], (-1, 300));
    let chain = |c: &ServerCert| format!("{}{}", c.cert_pem, pki.intermediate.cert_pem());
    let server = NginxServer::https_by_name(
        HOST,
        (&chain(&right), &right.key_pem),
        (&chain(&other), &other.key_pem),
    )
    .unwrap();
    let r = tls(dir.path(), server.port(), &pki.root.cert_pem()).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert_eq!(r.evidence["names"][0], HOST);
}
