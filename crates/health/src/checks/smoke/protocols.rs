//! `smoke.tls`: what nginx agrees to, asked with `openssl s_client` (rustls cannot offer
//! the old protocols and suites it must see refused): TLS 1.0 and 1.1 refused, no DHE or
//! CBC suite on TLS 1.2 (Mozilla "intermediate", DOMAIN.md 5), TLS 1.3 offered (else a
//! warning). The probes run at once, each under 10 s.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::process::Command;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use crate::checks::result;

const NAME: &str = "smoke.tls";
const OPENSSL: &str = "openssl";
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One handshake offered: what it offers, and what the server should do with it.
struct Probe {
    label: &'static str,
    args: &'static [&'static str],
    judge: Judge,
}

enum Judge {
    /// Accepting it is critical.
    Refuse,
    /// Refusing it is a warning.
    Offer,
    /// Either is fine (TLS 1.2 with strong suites: "intermediate" offers it, "modern" not).
    Either,
}

/// `@SECLEVEL=0` lets this client offer what OpenSSL 3 refuses by default, so a server
/// that accepts it is seen doing so. The TLS 1.2 suites with an HMAC (`SHA1:SHA256:SHA384`)
/// are the CBC ones: OpenSSL 3.0 has no working `!AEAD`.
const PROBES: [Probe; 6] = [
    Probe {
        label: "TLS 1.0",
        args: &["-tls1", "-cipher", "ALL:@SECLEVEL=0"],
        judge: Judge::Refuse,
    },
    Probe {
        label: "TLS 1.1",
        args: &["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"],
        judge: Judge::Refuse,
    },
    Probe {
        label: "DHE on TLS 1.2",
        args: &["-tls1_2", "-cipher", "kDHE:@SECLEVEL=0"],
        judge: Judge::Refuse,
    },
    Probe {
        label: "CBC on TLS 1.2",
        args: &["-tls1_2", "-cipher", "SHA1:SHA256:SHA384:@SECLEVEL=0"],
        judge: Judge::Refuse,
    },
    Probe {
        label: "TLS 1.2",
        args: &["-tls1_2"],
        judge: Judge::Either,
    },
    Probe {
        label: "TLS 1.3",
        args: &["-tls1_3"],
        judge: Judge::Offer,
    },
];

pub(super) struct Protocols {
    /// `host:port` to connect to (`[health] resolve` applied), and the SNI name.
    target: Result<(String, Option<String>), String>,
}

impl Protocols {
    pub fn new(url: &reqwest::Url, resolve: &BTreeMap<String, IpAddr>) -> Self {
        let host = url.host_str().unwrap_or_default().to_owned();
        let target = if url.scheme() == "https" {
            let port = url.port_or_known_default().unwrap_or(443);
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let ip = resolve.get(&host).copied().or_else(|| bare.parse().ok());
            let connect = match ip {
                Some(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                Some(IpAddr::V4(ip)) => format!("{ip}:{port}"),
                None => format!("{host}:{port}"),
            };
            // An address is sent no SNI, as browsers do.
            let sni = bare.parse::<IpAddr>().is_err().then_some(host);
            Ok((connect, sni))
        } else {
            Err(format!(
                "no TLS: {} is not https",
                url.origin().ascii_serialization()
            ))
        };
        Self { target }
    }
}

/// What one probe saw.
struct Seen {
    accepted: bool,
    /// `Protocol version` and `Ciphersuite` of an accepted handshake.
    detail: String,
}

#[async_trait]
impl Check for Protocols {
    fn name(&self) -> &str {
        NAME
    }

    fn budget(&self) -> Option<Duration> {
        Some(PROBE_TIMEOUT + Duration::from_secs(2))
    }

    async fn run(&self) -> CheckResult {
        let (connect, sni) = match &self.target {
            Ok(target) => target,
            Err(why) => return result(NAME, CheckStatus::Critical, why.clone(), json!({})),
        };
        let seen = futures::future::join_all(
            PROBES
                .iter()
                .map(|p| handshake(connect, sni.as_deref(), p.args)),
        )
        .await;
        let mut evidence = serde_json::Map::new();
        let (mut critical, mut warning) = (Vec::new(), Vec::new());
        for (probe, seen) in PROBES.iter().zip(seen) {
            let seen = match seen {
                Ok(seen) => seen,
                Err(e) => return result(NAME, CheckStatus::Unknown, e, json!({})),
            };
            evidence.insert(
                probe.label.to_owned(),
                json!({ "accepted": seen.accepted, "detail": seen.detail }),
            );
            match (&probe.judge, seen.accepted) {
                (Judge::Refuse, true) => {
                    critical.push(format!("{} accepted ({})", probe.label, seen.detail));
                }
                (Judge::Offer, false) => warning.push(format!("{} not offered", probe.label)),
                _ => {}
            }
        }
        let any = evidence.values().any(|v| v["accepted"] == true);
        let evidence = serde_json::Value::Object(evidence);
        if !any {
            return result(
                NAME,
                CheckStatus::Critical,
                format!("no TLS handshake on {connect}: every protocol refused"),
                evidence,
            );
        }
        if !critical.is_empty() {
            critical.extend(warning);
            return result(
                NAME,
                CheckStatus::Critical,
                format!(
                    "{}: use Mozilla's intermediate protocols and ciphers",
                    critical.join("; ")
                ),
                evidence,
            );
        }
        if !warning.is_empty() {
            return result(NAME, CheckStatus::Warning, warning.join("; "), evidence);
        }
        result(
            NAME,
            CheckStatus::Ok,
            "TLS 1.3 offered; TLS 1.0, 1.1, DHE and CBC refused",
            evidence,
        )
    }
}

/// `openssl s_client` offering `args`, with nothing to send: exit 0 is a handshake done.
async fn handshake(
    connect: &str,
    sni: Option<&str>,
    args: &[&str],
) -> std::result::Result<Seen, String> {
    let mut command = Command::new(OPENSSL);
    command
        .args(["s_client", "-brief", "-connect", connect])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match sni {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "openssl is missing: install the Debian package openssl".to_owned()
        } else {
            format!("cannot run openssl: {e}")
        }
    })?;
    let output = match tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(|e| format!("openssl s_client failed: {e}"))?,
        Err(_) => {
            return Ok(Seen {
                accepted: false,
                detail: format!("no handshake within {} s", PROBE_TIMEOUT.as_secs()),
            });
        }
    };
    let text = String::from_utf8_lossy(&output.stderr);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let accepted = output.status.success() && field("Protocol version:").is_some();
    let detail = if accepted {
        format!(
            "{} {}",
            field("Protocol version:").unwrap_or_default(),
            field("Ciphersuite:").unwrap_or_default()
        )
    } else {
        "refused".to_owned()
    };
    Ok(Seen { accepted, detail })
}
