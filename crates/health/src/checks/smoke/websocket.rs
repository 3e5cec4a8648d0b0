//! `smoke.websocket`: the upgrade to `/websocket` through nginx answers 101 with the
//! `Sec-WebSocket-Accept` that proves Odoo's evented server took it (a 101 alone could be any
//! proxy), and `/websocket/health` passes. Odoo's HTTP workers answer the upgrade with a 5xx
//! "Couldn't bind the websocket": nginx routes `/websocket` to the wrong port.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::json;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::Site;
use super::page::{Page, REQUEST_TIMEOUT};
use crate::checks::result;
use crate::http::clip;

const NAME: &str = "smoke.websocket";

pub(super) struct Websocket(pub Arc<Site>);

#[async_trait]
impl Check for Websocket {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let site = &self.0;
        let key = client_key();
        let url = site.url("/websocket");
        let request = site
            .client
            .get(&url)
            .timeout(REQUEST_TIMEOUT)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", &key)
            .header("origin", &site.base);
        let answer = match Page::read(request, &url).await {
            Ok(answer) => answer,
            Err(e) => return result(NAME, CheckStatus::Critical, e.message(), json!({})),
        };
        let accept = answer.header("sec-websocket-accept").map(clip);
        let evidence = json!({ "url": answer.url, "status": answer.status });
        if answer.status != 101 {
            let summary = if answer.body.contains("Couldn't bind the websocket") {
                format!(
                    "{} reached Odoo's HTTP workers (\"Couldn't bind the websocket\"): route \
                     /websocket in nginx to the evented port (gevent_port, 8072)",
                    answer.url
                )
            } else {
                format!(
                    "{} answered {} to a websocket upgrade, not 101: {}",
                    answer.url,
                    answer.status,
                    clip(&answer.body)
                )
            };
            return result(NAME, CheckStatus::Critical, summary, evidence);
        }
        if accept.as_deref() != Some(expected_accept(&key).as_str()) {
            return result(
                NAME,
                CheckStatus::Critical,
                format!(
                    "{} answered 101 without the Sec-WebSocket-Accept of our key ({}): \
                     something other than Odoo took the upgrade",
                    answer.url,
                    accept.as_deref().unwrap_or("none")
                ),
                evidence,
            );
        }
        let health = match site.get("/websocket/health").await {
            Ok(page) => page,
            Err(e) => return result(NAME, CheckStatus::Critical, e.message(), evidence),
        };
        let pass = health.status == 200
            && serde_json::from_str::<serde_json::Value>(&health.body)
                .is_ok_and(|v| v["status"] == "pass");
        if !pass {
            return result(
                NAME,
                CheckStatus::Critical,
                format!(
                    "{} answered {}: {}",
                    health.url,
                    health.status,
                    clip(&health.body)
                ),
                evidence,
            );
        }
        result(
            NAME,
            CheckStatus::Ok,
            "upgrade accepted by Odoo's evented server; /websocket/health passes",
            evidence,
        )
    }
}

/// A fresh 16-byte key, base64 (RFC 6455 asks for a random nonce; unpredictability is not
/// needed to tell a real answer from a canned one, freshness is).
fn client_key() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(now.as_nanos().to_le_bytes());
    hash.update(
        COUNT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    hash.update(std::process::id().to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(&hash.finalize()[..16])
}

/// What the server must answer for `key` (RFC 6455 4.2.2).
fn expected_accept(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s_example() {
        assert_eq!(
            expected_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_ne!(client_key(), client_key());
        assert_eq!(client_key().len(), 24);
    }
}
