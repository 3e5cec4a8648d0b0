//! Odoo's health: `GET <internal-url>/web/health?db_server_status=1` answers 200
//! `{"status": "pass"}` when Odoo is up and reaches its database. One verdict on an answer
//! ([`judge`]) and the wait a restore makes after starting Odoo (DESIGN.md "Data flows:
//! Restore"): while Odoo starts (refused connections, 502/503 from a proxy) it waits; an Odoo
//! that answers `fail` three times in a row has failed.

use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

/// Answers other than `pass`, in a row, that fail the check before its timeout.
const FAILED_ANSWERS: u32 = 3;
const INTERVAL: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What one answer of `/web/health` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx with `"status": "pass"`: Odoo is up and reaches its database.
    Pass,
    /// 502-504: a proxy's "not up yet", not Odoo's answer.
    NotUp,
    /// Anything else, including a redirect (nginx's 301 to HTTPS is not Odoo saying pass).
    Fail,
}

/// The verdict on `status` and `body` from `/web/health?db_server_status=1`.
pub fn judge(status: u16, body: &str) -> Answer {
    let pass = serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("status").and_then(serde_json::Value::as_str) == Some("pass"));
    match status {
        200..=299 if pass => Answer::Pass,
        502..=504 => Answer::NotUp,
        _ => Answer::Fail,
    }
}

/// Waits until Odoo at `internal_url` is healthy and reaches its database.
pub async fn wait_healthy(internal_url: &str, timeout: Duration) -> Result<()> {
    let url = format!(
        "{}/web/health?db_server_status=1",
        internal_url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut failed = 0;
    loop {
        let last = match client.get(&url).send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                match judge(status.as_u16(), &body) {
                    Answer::Pass => return Ok(()),
                    Answer::Fail => failed += 1,
                    Answer::NotUp => {}
                }
                format!("{status} {}", body.trim())
            }
            Err(e) => {
                failed = 0;
                format!("no answer ({e})")
            }
        };
        if failed >= FAILED_ANSWERS || Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!(
                    "Odoo is not healthy after the swap: {url} answered {last}{}",
                    if failed >= FAILED_ANSWERS {
                        format!(" ({failed} times in a row)")
                    } else {
                        format!(" (waited {} s)", timeout.as_secs())
                    }
                ),
            ));
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pass_from_odoo_is_healthy() {
        assert_eq!(judge(200, r#"{"status": "pass"}"#), Answer::Pass);
        assert_eq!(judge(200, r#"{"status": "fail"}"#), Answer::Fail);
        assert_eq!(judge(301, r#"{"status": "pass"}"#), Answer::Fail);
        assert_eq!(judge(200, "<html>pass</html>"), Answer::Fail);
        assert_eq!(judge(503, ""), Answer::NotUp);
        assert_eq!(judge(500, r#"{"status": "pass"}"#), Answer::Fail);
    }
}
