//! The smoke checks that ask one endpoint: `smoke.version` (the series deployed),
//! `smoke.dbmanager` (the database manager closed to the world) and `smoke.latency` (p95 of
//! 20 health requests).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::Site;
use super::page::{Page, REQUEST_TIMEOUT};
use crate::checks::{above, result};
use crate::http::clip;

const CALL: &str = r#"{"jsonrpc":"2.0","method":"call","params":{}}"#;

/// A JSON-RPC call to `path`: the page and its JSON body, if it is JSON.
async fn call(site: &Site, path: &str) -> vigia_core::Result<(Page, Option<Value>)> {
    let url = site.url(path);
    let request = site
        .client
        .post(&url)
        .timeout(REQUEST_TIMEOUT)
        .header("content-type", "application/json")
        .body(CALL);
    let page = Page::read(request, &url).await?;
    let body = serde_json::from_str(&page.body).ok();
    Ok((page, body))
}

/// `smoke.version`: `server_serie` = `[smoke] expect-series`.
pub(super) struct Version {
    pub site: Arc<Site>,
    pub expect: String,
}

#[async_trait]
impl Check for Version {
    fn name(&self) -> &'static str {
        "smoke.version"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let (page, body) = match call(&self.site, "/web/webclient/version_info").await {
            Ok(answer) => answer,
            Err(e) => return result(name, CheckStatus::Critical, e.message(), json!({})),
        };
        let serie = body
            .as_ref()
            .and_then(|b| b["result"]["server_serie"].as_str())
            .map(clip);
        let version = body
            .as_ref()
            .and_then(|b| b["result"]["server_version"].as_str())
            .map(clip);
        let evidence = json!({ "url": page.url, "status": page.status, "server_serie": serie,
                               "server_version": version, "expected": self.expect });
        match serie {
            Some(serie) if serie == self.expect => result(
                name,
                CheckStatus::Ok,
                format!("Odoo {}", version.as_deref().unwrap_or(&serie)),
                evidence,
            ),
            Some(serie) => result(
                name,
                CheckStatus::Critical,
                format!(
                    "the site runs Odoo {serie}, [smoke] expect-series is {}",
                    self.expect
                ),
                evidence,
            ),
            None => result(
                name,
                CheckStatus::Critical,
                format!(
                    "{} answered {} without a server_serie: {}",
                    page.url,
                    page.status,
                    clip(&page.body)
                ),
                evidence,
            ),
        }
    }
}

/// `smoke.dbmanager`: `/web/database/manager` and `/web/database/list` refused (403, 404, a
/// JSON-RPC error). A list that answers names the databases to anyone (critical); a manager
/// page that answers is a warning (it creates, copies and drops databases with the master
/// password alone).
pub(super) struct DbManager(pub Arc<Site>);

#[async_trait]
impl Check for DbManager {
    fn name(&self) -> &'static str {
        "smoke.dbmanager"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let site = &self.0;
        let (manager, list) = futures::join!(
            site.get("/web/database/manager"),
            call(site, "/web/database/list")
        );
        let (manager, (list, listed)) = match (manager, list) {
            (Ok(m), Ok(l)) => (m, l),
            (Err(e), _) | (_, Err(e)) => {
                return result(name, CheckStatus::Critical, e.message(), json!({}));
            }
        };
        let names = listed
            .as_ref()
            .and_then(|b| b.get("result"))
            .and_then(Value::as_array)
            .map(Vec::len);
        let evidence = json!({ "manager_status": manager.status, "list_status": list.status,
                               "databases_listed": names });
        if let Some(count) = names {
            return result(
                name,
                CheckStatus::Critical,
                format!(
                    "{} lists {count} database name(s) to anyone: set list_db = False in \
                     odoo.conf and block /web/database/ in nginx",
                    list.url
                ),
                evidence,
            );
        }
        let refused = |p: &Page, body: Option<&Value>| {
            matches!(p.status, 403 | 404) || body.is_some_and(|b| b.get("error").is_some())
        };
        let mut open = Vec::new();
        if !refused(&manager, None) {
            open.push(format!("{} answered {}", manager.url, manager.status));
        }
        if !refused(&list, listed.as_ref()) {
            open.push(format!("{} answered {}", list.url, list.status));
        }
        if open.is_empty() {
            return result(
                name,
                CheckStatus::Ok,
                "the database manager is closed",
                evidence,
            );
        }
        result(
            name,
            CheckStatus::Warning,
            format!(
                "{}: block /web/database/ in nginx (403 or 404)",
                open.join("; ")
            ),
            evidence,
        )
    }
}

/// `smoke.latency`: p95 of 20 sequential `GET /web/health`, each capped at 3 s (a request
/// that fails or is cut counts as 3 s); >1 s warning, >3 s critical. Its budget, 65 s, holds
/// 20 capped requests and the verdict.
pub(super) struct Latency(pub Arc<Site>);

const REQUESTS: usize = 20;
const CAP: Duration = Duration::from_secs(3);

#[async_trait]
impl Check for Latency {
    fn name(&self) -> &'static str {
        "smoke.latency"
    }

    fn budget(&self) -> Option<Duration> {
        Some(Duration::from_secs(65))
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let site = &self.0;
        let url = site.url("/web/health");
        let mut times = Vec::with_capacity(REQUESTS);
        let mut failed = Vec::new();
        for _ in 0..REQUESTS {
            let started = Instant::now();
            let answer = Page::read(site.client.get(&url).timeout(CAP), &url).await;
            let elapsed = started.elapsed().min(CAP);
            match answer {
                Ok(page) if page.status == 200 => times.push(elapsed),
                Ok(page) => {
                    times.push(CAP);
                    failed.push(format!("{}", page.status));
                }
                Err(e) => {
                    times.push(CAP);
                    failed.push(e.message().to_owned());
                }
            }
        }
        let p95 = percentile(&mut times, 95);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let evidence = json!({ "p95_ms": ms(p95), "requests": REQUESTS, "failed": failed.len(),
                               "max_ms": times.last().map(|d| ms(*d)) });
        let status = above(p95, Duration::from_secs(1), CAP).max(if failed.is_empty() {
            CheckStatus::Ok
        } else {
            CheckStatus::Warning
        });
        let mut summary = format!("p95 {} ms over {REQUESTS} requests", ms(p95));
        if let Some(first) = failed.first() {
            let _ = write!(
                summary,
                "; {} of {REQUESTS} failed (first: {first})",
                failed.len()
            );
        }
        result(name, status, summary, evidence)
    }
}

/// The nearest-rank percentile of `times` (sorted in place).
fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort_unstable();
    let rank = (times.len() * p).div_ceil(100).max(1);
    times.get(rank - 1).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_of_twenty_is_the_nineteenth() {
        let mut times: Vec<Duration> = (1..=20).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut times, 95), Duration::from_millis(19));
        assert_eq!(percentile(&mut [], 95), Duration::ZERO);
    }
}
