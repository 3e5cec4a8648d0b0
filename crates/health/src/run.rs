//! A health run: the checks a request names, run concurrently, each under its budget.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};

use crate::alerts::Alerting;
use crate::heartbeat::Heartbeat;
use crate::report::HealthReport;
use crate::{checks, names, textfile};

/// `vigia health [--only NAME,..]`; the C ABI's `{"only": [..]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthRequest {
    /// Run only these checks; empty: every check.
    pub only: Vec<String>,
    /// Count the results into the incidents of `[alerting]` and send what changed.
    pub alert: bool,
}

/// `vigia smoke [--url URL]`; the C ABI's `{"url": ..}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmokeRequest {
    /// The site to test; None: `[odoo] url`.
    pub url: Option<String>,
}

pub struct HealthRun {
    pub checks: Vec<Arc<dyn Check>>,
    /// `--only`'s names (empty: all), which may pick one item of a per-item check.
    pub only: Vec<String>,
    /// `--only` was given: the textfile keeps the other checks' series.
    pub partial: bool,
    /// Each check's budget (`[health] timeout`).
    pub timeout: Duration,
    /// `state-dir/vigia-health.prom` (or `vigia-smoke.prom`) and its metric names; None: no
    /// textfile.
    pub textfile: Option<(PathBuf, textfile::Metrics)>,
    /// `--alert`: where the results go after the run.
    pub alerting: Option<Alerting>,
    /// `[health] heartbeat-url`, fetched after every run.
    pub heartbeat: Option<Heartbeat>,
}

impl std::fmt::Debug for HealthRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.checks.iter().map(|c| c.name()).collect();
        f.debug_struct("HealthRun")
            .field("checks", &names)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HealthRun {
    pub fn from_config(config: &Config, request: &HealthRequest) -> Result<Self> {
        names::validate_only(&request.only)?;
        let alerting = request
            .alert
            .then(|| Alerting::from_config(config))
            .transpose()?;
        let mut checks = checks::all(config)?;
        if !request.only.is_empty() {
            let only: BTreeSet<&str> = request.only.iter().map(String::as_str).collect();
            let measured: Vec<String> = checks
                .iter()
                .map(|c| c.name().to_owned())
                .filter(|n| n.starts_with(names::DISK))
                .collect();
            if let Some(missing) = only
                .iter()
                .find(|n| n.starts_with(names::DISK) && !measured.iter().any(|m| m == *n))
            {
                return Err(Error::invalid_input(format!(
                    "`{missing}` is not a measured filesystem: {}",
                    measured.join(", ")
                )));
            }
            checks.retain(|c| {
                only.contains(c.name())
                    || only
                        .iter()
                        .any(|n| names::family(n).is_some_and(|(f, _)| f == c.name()))
            });
        }
        Ok(Self {
            checks,
            only: request.only.clone(),
            partial: !request.only.is_empty(),
            timeout: config.health.timeout.0,
            textfile: Some((
                config.state_dir.join(textfile::HEALTH.file),
                textfile::HEALTH,
            )),
            alerting,
            heartbeat: Heartbeat::from_config(config)?,
        })
    }

    /// `vigia smoke`: the site's checks (`names::SMOKE`), into `state-dir/vigia-smoke.prom`
    /// when the site is `[odoo] url`'s (another one's results are reported, not exported); no
    /// alerts (a smoke test is run by a person or a deploy's gate, not a monitor).
    pub fn smoke(config: &Config, request: &SmokeRequest) -> Result<Self> {
        let own = request
            .url
            .as_deref()
            .is_none_or(|url| checks::smoke::is_configured_site(config, url));
        let file = config.state_dir.join(textfile::SMOKE.file);
        Ok(Self {
            checks: checks::smoke::all(config, request.url.as_deref())?,
            only: Vec::new(),
            partial: false,
            timeout: config.health.timeout.0,
            textfile: own.then_some((file, textfile::SMOKE)),
            alerting: None,
            heartbeat: None,
        })
    }

    /// Runs every check at once; a check over its budget is critical. Writes the textfile
    /// (a failure there is a warning in the log, not a result).
    pub async fn run(&self) -> HealthReport {
        let runs = self.checks.iter().map(|check| {
            let items = self.items_of(check.name());
            timed(
                Arc::clone(check),
                items,
                check.budget().unwrap_or(self.timeout),
            )
        });
        let results = futures::future::join_all(runs).await.into_iter().flatten();
        let mut report = HealthReport::new(results.collect());
        if let Some((path, names)) = self.textfile.clone() {
            let (checks, partial) = (report.checks.clone(), self.partial);
            let write = tokio::task::spawn_blocking(move || {
                textfile::write(&path, names, &checks, partial)
            });
            match tokio::time::timeout(self.timeout, write).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("the health metrics were not written: {e}"),
                Ok(Err(e)) => tracing::warn!("the health metrics were not written: {e}"),
                Err(_) => tracing::warn!("the health metrics were not written within the timeout"),
            }
        }
        if let Some(alerting) = &self.alerting {
            match alerting.notify(report.checks.clone(), self.partial).await {
                Ok((sent, silenced)) => (report.alerts, report.silenced) = (sent, silenced),
                Err(e) => {
                    tracing::warn!("alerting failed: {e}");
                    report.alert_error = Some(e.to_string());
                }
            }
        }
        if let Some(heartbeat) = &self.heartbeat
            && let Err(e) = heartbeat.beat().await
        {
            tracing::warn!("{e}");
        }
        report
    }

    /// The items `--only` names for a per-item check (`p12:1` -> `1`; the check answers only
    /// those); empty: all of them.
    fn items_of(&self, check: &str) -> Vec<String> {
        if self.only.iter().any(|o| o == check) {
            return Vec::new();
        }
        self.only
            .iter()
            .filter_map(|o| names::family(o).filter(|(f, _)| *f == check))
            .map(|(_, item)| item.to_owned())
            .collect()
    }
}

/// Runs `check` on its own task, so that one that blocks or panics holds back no other,
/// and the budget is kept whatever it does.
async fn timed(check: Arc<dyn Check>, items: Vec<String>, budget: Duration) -> Vec<CheckResult> {
    let started = Instant::now();
    let name = check.name().to_owned();
    let task = tokio::spawn(async move { check.run_all(&items).await });
    let abort = task.abort_handle();
    let mut results = match tokio::time::timeout(budget, task).await {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => vec![checks::result(
            &name,
            CheckStatus::Unknown,
            format!("the check failed: {e}"),
            serde_json::Value::Null,
        )],
        Err(_) => {
            abort.abort();
            vec![checks::result(
                &name,
                CheckStatus::Critical,
                format!("no answer within {} s", budget.as_secs_f64()),
                json!({ "timeout_ms": budget.as_millis() }),
            )]
        }
    };
    let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    for r in &mut results {
        r.duration_ms = elapsed;
    }
    results
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;

    struct Slow(&'static str, Duration);

    #[async_trait]
    impl Check for Slow {
        fn name(&self) -> &str {
            self.0
        }
        async fn run(&self) -> CheckResult {
            tokio::time::sleep(self.1).await;
            checks::result(self.0, CheckStatus::Ok, "fine", serde_json::Value::Null)
        }
    }

    #[tokio::test]
    async fn checks_run_at_once_and_one_over_budget_is_critical() {
        let run = HealthRun {
            checks: vec![
                Arc::new(Slow("memory", Duration::from_millis(300))),
                Arc::new(Slow("postgres", Duration::from_millis(300))),
                Arc::new(Slow("odoo.internal", Duration::from_secs(30))),
            ],
            timeout: Duration::from_millis(500),
            only: Vec::new(),
            partial: false,
            textfile: None,
            alerting: None,
            heartbeat: None,
        };
        let started = Instant::now();
        let report = run.run().await;
        assert!(started.elapsed() < Duration::from_millis(900), "concurrent");
        assert_eq!(report.status, CheckStatus::Critical);
        let hung = &report.checks[2];
        assert_eq!(hung.summary, "no answer within 0.5 s");
        assert_eq!(report.checks[0].status, CheckStatus::Ok);
    }
}
