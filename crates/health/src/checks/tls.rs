//! `tls`: the certificate nginx serves for `[odoo] url` (SNI = its host), not a file on disk.
//! The leaf is recorded even when verification fails, so an expired or wrong-name
//! certificate is critical with its dates and names, not a bare handshake error. The chain
//! is verified against the system's roots and `[health] ca-file`; SHA-1 signatures and RSA
//! keys under 2048 bits are critical. Expiry thresholds are a number of days and a fraction
//! of the issued lifetime (public certificates keep getting shorter, DOMAIN.md 5).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{result, skipped, unknown};
use crate::http::shown;

const NAME: &str = "tls";
const DAY: f64 = 86_400.0;

pub(super) fn check(config: &Config) -> Arc<dyn Check> {
    for_url(config, config.odoo.url.clone())
}

/// The same check of another site (`vigia smoke --url`).
pub(super) fn for_url(config: &Config, url: Option<String>) -> Arc<dyn Check> {
    Arc::new(Tls {
        url,
        resolve: config.health.resolve.clone(),
        ca_file: config.health.ca_file.clone(),
    })
}

struct Tls {
    url: Option<String>,
    resolve: std::collections::BTreeMap<String, std::net::IpAddr>,
    ca_file: Option<std::path::PathBuf>,
}

#[async_trait]
impl Check for Tls {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let Some(url) = &self.url else {
            return skipped(NAME, "[odoo] url is not set");
        };
        let target = match Target::parse(url) {
            Ok(Some(target)) => target,
            Ok(None) => {
                return result(
                    NAME,
                    CheckStatus::Critical,
                    format!("no TLS: {} is not https", shown(url)),
                    json!({ "url": shown(url) }),
                );
            }
            Err(e) => return unknown(NAME, &e),
        };
        let ca_file = self.ca_file.clone();
        let roots = match vigia_core::task::blocking("tls", move || roots(ca_file.as_deref())).await
        {
            Ok(roots) => roots,
            Err(e) => return unknown(NAME, &e),
        };
        let addresses = match self.addresses(&target).await {
            Ok(addresses) => addresses,
            Err(e) => {
                return result(
                    NAME,
                    CheckStatus::Critical,
                    e.message(),
                    json!({ "host": target.host, "port": target.port }),
                );
            }
        };
        match handshake(&target, &addresses, roots).await {
            Ok(seen) => judge(&target, &seen, jiff::Timestamp::now()),
            Err(e) => unknown(NAME, &e),
        }
    }
}

impl Tls {
    /// `[health] resolve` first, as curl's `--resolve`; else every address the system's
    /// resolver gives (tried in turn: an IPv6 address first on a host without IPv6 is no
    /// reason to fail).
    async fn addresses(&self, target: &Target) -> Result<Vec<SocketAddr>> {
        if let Some(ip) = self.resolve.get(&target.host) {
            return Ok(vec![SocketAddr::new(*ip, target.port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| Error::internal(format!("cannot resolve {}: {e}", target.host)))?
            .collect();
        if found.is_empty() {
            return Err(Error::internal(format!("{} has no address", target.host)));
        }
        Ok(found)
    }
}

/// Where the certificate is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
}

impl Target {
    /// None when the URL is not https.
    fn parse(url: &str) -> Result<Option<Self>> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            Error::config(format!("[odoo] url is not a URL: {e}")).with_key("odoo.url")
        })?;
        if parsed.scheme() != "https" {
            return Ok(None);
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| Error::config("[odoo] url has no host").with_key("odoo.url"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Some(Self {
            host,
            port: parsed.port().unwrap_or(443),
        }))
    }
}

/// The system's roots and `ca-file`'s.
fn roots(ca_file: Option<&std::path::Path>) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = ca_file {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(Iterator::collect::<std::result::Result<Vec<_>, _>>)
            .map_err(|e| {
                Error::config(format!("{}: not PEM certificates: {e}", file.display()))
                    .with_key("health.ca-file")
            })?;
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        return Err(Error::config(
            "no trusted roots: install the Debian package ca-certificates or set [health] ca-file",
        ));
    }
    Ok(Arc::new(roots))
}

/// What the handshake showed: the chain the server presented (leaf first) and why it was
/// not trusted, or what went wrong before any certificate came.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    refused: Option<rustls::Error>,
    /// The leaf names the host, checked on its own: a chain refused for another reason
    /// first must not hide a wrong name.
    name_ok: Option<bool>,
    handshake: Option<String>,
    protocol: Option<String>,
    /// The first bytes the server sent, shown when they were not TLS.
    first_bytes: Vec<u8>,
}

/// Verifies as any client would, and keeps the chain whatever the verdict.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        seen.refused = verdict.as_ref().err().cloned();
        seen.name_ok = Some(
            rustls::server::ParsedCertificate::try_from(end_entity)
                .and_then(|leaf| rustls::client::verify_server_name(&leaf, server_name))
                .is_ok(),
        );
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connects and shakes hands; nothing is sent after it. A handshake that fails is a result
/// (in `Seen`), not an error: only a verifier that cannot be built is.
async fn handshake(
    target: &Target,
    addresses: &[SocketAddr],
    roots: Arc<RootCertStore>,
) -> Result<Seen> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|e| Error::internal(format!("cannot build a certificate verifier: {e}")))?;
    let recording = Arc::new(Recording {
        inner,
        seen: Mutex::new(Seen::default()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&recording) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| Error::config(format!("{}: not a server name: {e}", target.host)))?;
    let first = Arc::new(Mutex::new(Vec::new()));
    let outcome = match tokio::net::TcpStream::connect(addresses).await {
        Err(e) => Err(format!(
            "cannot connect to {}:{}: {e}",
            target.host, target.port
        )),
        Ok(tcp) => tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(
                name,
                FirstBytes {
                    inner: tcp,
                    seen: Arc::clone(&first),
                },
            )
            .await
            .map(|stream| {
                stream
                    .get_ref()
                    .1
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .map_err(|e| e.to_string()),
    };
    let mut seen = std::mem::take(&mut *recording.seen.lock().expect("not poisoned"));
    seen.first_bytes = std::mem::take(&mut *first.lock().expect("not poisoned"));
    match outcome {
        Ok(protocol) => seen.protocol = protocol,
        Err(e) => seen.handshake = Some(e),
    }
    Ok(seen)
}

/// The connection, keeping the first bytes the server sends: when they are not TLS, what
/// they are is the best answer to "what is on that port?".
struct FirstBytes {
    inner: tokio::net::TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

const FIRST_BYTES: usize = 80;

impl tokio::io::AsyncRead for FirstBytes {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let mut seen = self.seen.lock().expect("not poisoned");
            let room = FIRST_BYTES.saturating_sub(seen.len());
            let new = &buf.filled()[before..];
            seen.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for FirstBytes {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The leaf's facts, read with x509-parser.
#[derive(Debug)]
struct Leaf {
    subject: String,
    issuer: String,
    names: Vec<String>,
    not_before: i64,
    not_after: i64,
    sha1: bool,
    rsa_bits: Option<usize>,
}

impl Leaf {
    fn parse(der: &[u8]) -> std::result::Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(ip) => ip_text(ip),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let algorithm = cert.signature_algorithm.algorithm.to_id_string();
        let rsa_bits = match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(rsa.key_size()),
            _ => None,
        };
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            // sha1WithRSAEncryption, ecdsa-with-SHA1, dsa-with-SHA1, OIW sha1WithRSA.
            sha1: matches!(
                algorithm.as_str(),
                "1.2.840.113549.1.1.5"
                    | "1.2.840.10045.4.1"
                    | "1.2.840.10040.4.3"
                    | "1.3.14.3.2.29"
            ),
            rsa_bits,
        })
    }
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Why a client refuses the chain, in an operator's words; None when the dates already say
/// it (expired, not valid yet).
fn refusal(e: &rustls::Error) -> Option<String> {
    let certificate = match e {
        rustls::Error::InvalidCertificate(c) => c,
        other => return Some(format!("the chain was refused: {other}")),
    };
    Some(match certificate {
        CertificateError::UnknownIssuer => "the chain does not lead to a trusted root: an \
                                            intermediate certificate is missing, or the issuer \
                                            is not trusted"
            .to_owned(),
        // Checked on its own (`name_ok`), whatever else is wrong.
        CertificateError::NotValidForName
        | CertificateError::NotValidForNameContext { .. }
        | CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => return None,
        CertificateError::BadSignature => "a signature in the chain does not verify".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not for TLS servers (extended key usage)".to_owned()
        }
        CertificateError::Revoked => "the certificate is revoked".to_owned(),
        other => format!("the certificate was refused: {other:?}"),
    })
}

/// The verdict: critical when a client would refuse the chain, the signature or key is weak,
/// or little time is left; warning when the time left is getting short.
fn judge(target: &Target, seen: &Seen, now: jiff::Timestamp) -> CheckResult {
    let host = &target.host;
    let Some(leaf_der) = seen.chain.first() else {
        let why = seen.handshake.as_deref().unwrap_or("no certificate");
        let answered = printable(&seen.first_bytes);
        let said = if answered.is_empty() || seen.first_bytes.first() == Some(&0x16) {
            String::new()
        } else {
            format!("; it answered `{answered}`, not TLS")
        };
        return result(
            NAME,
            CheckStatus::Critical,
            format!("no certificate from {host}:{}: {why}{said}", target.port),
            json!({ "host": host, "port": target.port, "handshake": why, "answered": answered }),
        );
    };
    match Leaf::parse(leaf_der) {
        Ok(leaf) => assess(target, &leaf, seen, now),
        Err(e) => result(
            NAME,
            CheckStatus::Critical,
            format!("{host} presented a certificate that cannot be read: {e}"),
            json!({ "host": host, "port": target.port }),
        ),
    }
}

/// The verdict on a leaf already read.
fn assess(target: &Target, leaf: &Leaf, seen: &Seen, now: jiff::Timestamp) -> CheckResult {
    let host = &target.host;
    let lifetime = (leaf.not_after - leaf.not_before) as f64 / DAY;
    let left = (leaf.not_after - now.as_second()) as f64 / DAY;
    // Whole days, the same in the summary and the evidence.
    let days_left = left.floor();
    let warn_at = 30f64.min(lifetime / 3.0);
    let crit_at = 7f64.min(lifetime / 6.0);
    let mut problems: Vec<String> = Vec::new();
    let mut status = CheckStatus::Ok;
    let in_force = now.as_second() >= leaf.not_before && left > 0.0;
    if now.as_second() < leaf.not_before {
        problems.push(format!("not valid before {}", date(leaf.not_before)));
    } else if left <= 0.0 {
        problems.push(format!(
            "expired {:.0} days ago, on {}",
            (-left).floor(),
            date(leaf.not_after)
        ));
    } else if left <= crit_at {
        problems.push(format!(
            "{days_left:.0} days left (critical at {crit_at:.0})"
        ));
    } else if left <= warn_at {
        status = CheckStatus::Warning;
    }
    if seen.name_ok == Some(false) {
        problems.push(format!("the certificate is not valid for {host}"));
    }
    if let Some(e) = &seen.refused {
        // The leaf's own dates already say "expired" or "not valid yet"; in force, the
        // certificate out of its dates is another one of the chain.
        match refusal(e) {
            Some(why) => problems.push(why),
            None if in_force && !is_name_error(e) => {
                problems.push("a certificate of the chain is expired or not valid yet".into());
            }
            None => {}
        }
    }
    if leaf.sha1 {
        problems.push("signed with SHA-1, which browsers refuse".to_owned());
    }
    if let Some(bits) = leaf.rsa_bits.filter(|b| *b < 2048) {
        problems.push(format!("an RSA key of {bits} bits (2048 at least)"));
    }
    if let (None, Some(h)) = (&seen.refused, &seen.handshake) {
        problems.push(format!("the handshake failed: {h}"));
    }
    if !problems.is_empty() {
        status = CheckStatus::Critical;
    }
    let valid = if in_force {
        format!(
            "valid until {} ({days_left:.0} of {lifetime:.0} days left)",
            date(leaf.not_after)
        )
    } else {
        format!(
            "valid from {} to {}",
            date(leaf.not_before),
            date(leaf.not_after)
        )
    };
    let summary = match (problems.is_empty(), status) {
        (true, CheckStatus::Warning) => {
            format!("{host}: renew it: {valid}, warning from {warn_at:.0} days before the end")
        }
        (true, _) => format!("{host}: {valid}, issued by {}", leaf.issuer),
        (false, _) => format!("{host}: {}; {valid}", problems.join("; ")),
    };
    result(
        NAME,
        status,
        summary,
        json!({
            "host": host,
            "port": target.port,
            "subject": leaf.subject,
            "issuer": leaf.issuer,
            "names": leaf.names,
            "not_before": date(leaf.not_before),
            "not_after": date(leaf.not_after),
            "days_left": days_left,
            "lifetime_days": lifetime.round(),
            "chain_length": seen.chain.len(),
            "verified": seen.refused.is_none() && seen.handshake.is_none(),
            "protocol": seen.protocol,
            "problems": problems,
        }),
    )
}

fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// The first line of what a server sent, printable characters only.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(80)
        .collect()
}

fn date(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(
        |_| seconds.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(days_lifetime: i64, days_left: i64, now: i64) -> Leaf {
        Leaf {
            subject: "CN=erp.example.cr".into(),
            issuer: "CN=Test CA".into(),
            names: vec!["erp.example.cr".into()],
            not_before: now - (days_lifetime - days_left) * 86_400,
            not_after: now + days_left * 86_400,
            sha1: false,
            rsa_bits: None,
        }
    }

    #[test]
    fn the_thresholds_are_days_and_a_fraction_of_the_lifetime() {
        let now = 1_800_000_000;
        let at = jiff::Timestamp::from_second(now).unwrap();
        let target = Target {
            host: "erp.example.cr".into(),
            port: 443,
        };
        let verdict = |lifetime, left| {
            let l = leaf(lifetime, left, now);
            assess(&target, &l, &Seen::default(), at).status
        };
        assert_eq!(verdict(90, 20), CheckStatus::Warning, "<= 30 d of 90");
        assert_eq!(verdict(90, 5), CheckStatus::Critical, "<= 7 d");
        assert_eq!(
            verdict(47, 20),
            CheckStatus::Ok,
            "more than a third of 47 d left"
        );
        assert_eq!(verdict(47, 15), CheckStatus::Warning);
        assert_eq!(verdict(47, 7), CheckStatus::Critical, "<= 47/6 d");
        assert_eq!(verdict(398, 60), CheckStatus::Ok);
        // 30 days: warning from 10 left (a third), critical from 5 (a sixth).
        assert_eq!(verdict(30, 11), CheckStatus::Ok);
        assert_eq!(verdict(30, 6), CheckStatus::Warning);
        assert_eq!(verdict(30, 4), CheckStatus::Critical);
        assert_eq!(verdict(90, -1), CheckStatus::Critical, "expired");
    }

    #[test]
    fn a_weak_leaf_or_a_refused_chain_is_critical_whatever_its_dates() {
        let now = 1_800_000_000;
        let at = jiff::Timestamp::from_second(now).unwrap();
        let target = Target {
            host: "erp.example.cr".into(),
            port: 443,
        };
        let mut weak = leaf(90, 60, now);
        weak.sha1 = true;
        weak.rsa_bits = Some(1024);
        let r = assess(&target, &weak, &Seen::default(), at);
        assert_eq!(r.status, CheckStatus::Critical);
        assert!(
            r.summary.contains("SHA-1") && r.summary.contains("1024 bits"),
            "{}",
            r.summary
        );
        let refused = Seen {
            refused: Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            ..Seen::default()
        };
        let r = assess(&target, &leaf(90, 60, now), &refused, at);
        assert_eq!(r.status, CheckStatus::Critical);
        assert!(r.summary.contains("intermediate"), "{}", r.summary);
        assert_eq!(r.evidence["verified"], false);
    }

    #[test]
    fn only_https_urls_are_asked_for_a_certificate() {
        assert_eq!(
            Target::parse("https://erp.example.cr:8443/web").unwrap(),
            Some(Target {
                host: "erp.example.cr".into(),
                port: 8443
            })
        );
        assert_eq!(Target::parse("https://[::1]").unwrap().unwrap().host, "::1");
        assert_eq!(Target::parse("http://erp.example.cr").unwrap(), None);
    }
}
