//! Odoo's health after a swap, when vigia started Odoo itself (DESIGN.md "Data flows:
//! Restore"): `GET <internal-url>/web/health?db_server_status=1` must answer 200 `pass`
//! within a timeout. While Odoo starts (refused connections, 502/503 from a proxy) the check
//! waits; an Odoo that answers `fail` three times in a row has failed.

use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

/// Answers other than `pass`, in a row, that fail the check before its timeout.
const FAILED_ANSWERS: u32 = 3;
const INTERVAL: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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
                if status.is_success() && passes(&body) {
                    return Ok(());
                }
                // A proxy's "not up yet" is not Odoo's answer.
                if !matches!(status.as_u16(), 502..=504) {
                    failed += 1;
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

fn passes(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("status").and_then(serde_json::Value::as_str) == Some("pass"))
}
