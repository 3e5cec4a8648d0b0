//! `smoke.tls`: what nginx agrees to, asked with `openssl s_client` (rustls cannot offer
//! the old protocols and suites it must see refused): TLS 1.0 and 1.1 refused, no DHE or
//! CBC suite on TLS 1.2 (Mozilla "intermediate", DOMAIN.md 5), TLS 1.3 offered (else a
//! warning). The probes run at once, each under 10 s.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::process::Command;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use crate::checks::result;
use crate::http::clip;

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

/// `@SECLEVEL=0` and `-legacy_server_connect` let this client offer what OpenSSL 3 refuses
/// by default (old protocols and suites, servers without secure renegotiation), so a server
/// that accepts it is seen doing so. The TLS 1.2 suites with an HMAC (`SHA1:SHA256:SHA384`)
/// are the CBC ones: OpenSSL 3.0 has no working `!AEAD`.
const PROBES: [Probe; 6] = [
    Probe {
        label: "TLS 1.0",
        args: &[
            "-tls1",
            "-cipher",
            "ALL:@SECLEVEL=0",
            "-legacy_server_connect",
        ],
        judge: Judge::Refuse,
    },
    Probe {
        label: "TLS 1.1",
        args: &[
            "-tls1_1",
            "-cipher",
            "ALL:@SECLEVEL=0",
            "-legacy_server_connect",
        ],
        judge: Judge::Refuse,
    },
    Probe {
        label: "DHE on TLS 1.2",
        args: &[
            "-tls1_2",
            "-cipher",
            "kDHE:@SECLEVEL=0",
            "-legacy_server_connect",
        ],
        judge: Judge::Refuse,
    },
    Probe {
        label: "CBC on TLS 1.2",
        args: &[
            "-tls1_2",
            "-cipher",
            "SHA1:SHA256:SHA384:@SECLEVEL=0",
            "-legacy_server_connect",
        ],
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
    /// The openssl binary (tests name one that is not there).
    program: PathBuf,
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
        Self {
            target,
            program: PathBuf::from(OPENSSL),
        }
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// `Protocol version` and `Ciphersuite` of the handshake.
    Accepted(String),
    /// The server said no (an alert, a closed connection, no TLS at all), in openssl's words.
    Refused(String),
    /// Nothing to connect to.
    Unreachable(String),
    /// This openssl could not make the offer, or no answer came in time: nothing learnt.
    NotAsked(String),
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
                .map(|p| handshake(&self.program, connect, sni.as_deref(), p.args)),
        )
        .await;
        let mut evidence = serde_json::Map::new();
        let mut seen_all = Vec::new();
        for (probe, seen) in PROBES.iter().zip(seen) {
            let seen = match seen {
                Ok(seen) => seen,
                Err(e) => return result(NAME, CheckStatus::Unknown, e, json!({})),
            };
            let (accepted, detail) = match &seen {
                Seen::Accepted(d) => (Some(true), d),
                Seen::Refused(d) => (Some(false), d),
                Seen::Unreachable(d) | Seen::NotAsked(d) => (None, d),
            };
            evidence.insert(
                probe.label.to_owned(),
                json!({ "accepted": accepted, "detail": detail }),
            );
            seen_all.push((probe, seen));
        }
        let (status, summary) = judge(connect, &seen_all);
        result(NAME, status, summary, serde_json::Value::Object(evidence))
    }
}

/// The verdict on every probe: what was accepted that must not be is critical, then
/// anything that could not be learnt is unknown, then what should be offered and is not.
fn judge(connect: &str, seen: &[(&Probe, Seen)]) -> (CheckStatus, String) {
    if let Some((_, Seen::Unreachable(why))) =
        seen.iter().find(|(_, s)| matches!(s, Seen::Unreachable(_)))
    {
        return (
            CheckStatus::Critical,
            format!("cannot connect to {connect}: {why}"),
        );
    }
    if !seen.iter().any(|(_, s)| matches!(s, Seen::Accepted(_))) {
        let why = seen
            .iter()
            .find_map(|(_, s)| match s {
                Seen::Refused(why) | Seen::NotAsked(why) => Some(why.as_str()),
                _ => None,
            })
            .unwrap_or("refused");
        return (
            CheckStatus::Critical,
            format!("no TLS handshake on {connect}: {why}"),
        );
    }
    let mut critical = Vec::new();
    let mut unknown = Vec::new();
    let mut warning = Vec::new();
    for (probe, seen) in seen {
        match (&probe.judge, seen) {
            (Judge::Refuse, Seen::Accepted(d)) => {
                critical.push(format!("{} accepted ({d})", probe.label));
            }
            (Judge::Refuse | Judge::Offer, Seen::NotAsked(why)) => {
                unknown.push(format!("{} not probed: {why}", probe.label));
            }
            (Judge::Offer, Seen::Refused(_)) => {
                warning.push(format!("{} not offered", probe.label));
            }
            _ => {}
        }
    }
    if !critical.is_empty() {
        critical.extend(unknown);
        critical.extend(warning);
        let all = critical.join("; ");
        return (
            CheckStatus::Critical,
            format!("{all}: use Mozilla's intermediate protocols and ciphers"),
        );
    }
    if !unknown.is_empty() {
        unknown.extend(warning);
        return (CheckStatus::Unknown, unknown.join("; "));
    }
    if !warning.is_empty() {
        return (CheckStatus::Warning, warning.join("; "));
    }
    (
        CheckStatus::Ok,
        "TLS 1.3 offered; TLS 1.0, 1.1, DHE and CBC refused".to_owned(),
    )
}

/// `openssl s_client` offering `args`, with nothing to send (exit 0 is a handshake done);
/// what the server sends is not read (stdout is null), only openssl's own lines.
async fn handshake(
    program: &Path,
    connect: &str,
    sni: Option<&str>,
    args: &[&str],
) -> std::result::Result<Seen, String> {
    let mut command = Command::new(program);
    command
        .args(["s_client", "-brief", "-connect", connect])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match sni {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} is missing: install the Debian package openssl",
                program.display()
            )
        } else {
            format!("cannot run {}: {e}", program.display())
        }
    })?;
    let output = match tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(|e| format!("openssl s_client failed: {e}"))?,
        Err(_) => {
            return Ok(Seen::NotAsked(format!(
                "no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )));
        }
    };
    Ok(classify(&String::from_utf8_lossy(&output.stderr)))
}

/// What `s_client -brief`'s stderr says. Only the server's own signs count as a refusal (an
/// alert, no TLS at all, the connection dropped); any other failure learnt nothing.
fn classify(text: &str) -> Seen {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| clip(v.trim()))
    };
    // A handshake done is an acceptance, whatever happened after it.
    if let Some(protocol) = field("Protocol version:") {
        let suite = field("Ciphersuite:").unwrap_or_default();
        return Seen::Accepted(format!("{protocol} {suite}"));
    }
    // `...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:file:line:`
    let reason = text
        .lines()
        .find_map(|l| l.split(':').nth(5).filter(|_| l.contains(":error:")))
        .map(clip)
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()).map(clip))
        .unwrap_or_else(|| "no output".to_owned());
    let has = |needle: &str| text.contains(needle);
    if has("connect:errno") || has("BIO_lookup") || has("Connection refused") {
        Seen::Unreachable(reason)
    } else if has("dh key too small") || has("bad dh value") {
        // The server chose DHE, with a group too weak even to finish.
        Seen::Accepted(format!("DHE with a weak group ({reason})"))
    } else if has("SSL alert number")
        || has("wrong version number")
        || has("unexpected eof")
        || has("Connection reset")
        || has("errno=104")
    {
        Seen::Refused(reason)
    } else {
        Seen::NotAsked(format!("openssl could not tell ({reason})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssls_words_are_sorted_into_what_they_mean() {
        let brief = "CONNECTION ESTABLISHED\nProtocol version: TLSv1.3\n\
                     Ciphersuite: TLS_AES_256_GCM_SHA384\n";
        assert_eq!(
            classify(brief),
            Seen::Accepted("TLSv1.3 TLS_AES_256_GCM_SHA384".into())
        );
        let after = "Protocol version: TLSv1.2\nCiphersuite: DHE-RSA-AES128-SHA\nread:errno=104\n";
        assert!(matches!(classify(after), Seen::Accepted(_)), "done is done");
        let error =
            |reason: &str| format!("80DB:error:0A00010B:SSL routines:f:{reason}:ssl/x.c:1:\n");
        assert_eq!(
            classify(&error("wrong version number")),
            Seen::Refused("wrong version number".into())
        );
        let alert = error("tlsv1 alert protocol version") + "SSL alert number 70\n";
        assert_eq!(
            classify(&alert),
            Seen::Refused("tlsv1 alert protocol version".into())
        );
        assert!(matches!(
            classify(&error("dh key too small")),
            Seen::Accepted(_)
        ));
        let closed = "806B:error:8000006F:system library:BIO_connect:Connection refused:x.c:117:\n\
                      connect:errno=111\n";
        assert_eq!(
            classify(closed),
            Seen::Unreachable("Connection refused".into())
        );
        for client in [
            error("no protocols available"),
            error("unsafe legacy renegotiation disabled"),
            "s_client: Unknown option: -tls1\n".to_owned(),
            String::new(),
        ] {
            assert!(matches!(classify(&client), Seen::NotAsked(_)), "{client}");
        }
    }

    #[test]
    fn a_probe_that_learnt_nothing_is_unknown_not_a_pass() {
        let probe = |label| PROBES.iter().find(|p| p.label == label).unwrap();
        let seen = [
            (
                probe("TLS 1.0"),
                Seen::NotAsked("this openssl cannot offer it".into()),
            ),
            (probe("TLS 1.2"), Seen::Accepted("TLSv1.2 ECDHE".into())),
            (probe("TLS 1.3"), Seen::Accepted("TLSv1.3".into())),
        ];
        assert_eq!(judge("h:443", &seen).0, CheckStatus::Unknown);
        let seen = [(
            probe("TLS 1.0"),
            Seen::Refused("wrong version number".into()),
        )];
        let (status, summary) = judge("h:443", &seen);
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(summary, "no TLS handshake on h:443: wrong version number");
    }

    #[tokio::test]
    async fn no_openssl_is_unknown_naming_the_package() {
        let url = reqwest::Url::parse("https://erp.example.cr").unwrap();
        let mut check = Protocols::new(&url, &BTreeMap::new());
        check.program = PathBuf::from("/nonexistent/openssl");
        let r = check.run().await;
        assert_eq!(r.status, CheckStatus::Unknown);
        assert!(
            r.summary.contains("Debian package openssl"),
            "{}",
            r.summary
        );
    }
}
