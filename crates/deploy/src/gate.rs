//! The gate a deploy passes after the switch: `[deploy] gate`'s checks (health's and
//! smoke's names), run again until they pass or `gate-timeout` ends. Warnings pass; a
//! check that already failed before the deploy (the baseline) does not fail it. The runs
//! write no metrics file: a monitor's series are not a deploy's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Config, Error, ErrorKind, Result};
use vigia_health::{HealthRequest, HealthRun, SmokeRequest, names};

/// How often a failing gate is asked again.
const RETRY: Duration = Duration::from_secs(2);

pub struct Gate {
    runs: Vec<HealthRun>,
    timeout: Duration,
    /// Gate names left out, and why (smoke's without `[odoo] url`).
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("runs", &self.runs)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// `names` (health's or smoke's), waited for up to `timeout`.
    pub fn new(config: &Config, gate: &[String], timeout: Duration) -> Result<Self> {
        let (smoke, health): (Vec<String>, Vec<String>) =
            gate.iter().cloned().partition(|n| n.starts_with("smoke."));
        if let Some(unknown) = smoke.iter().find(|n| !names::SMOKE.contains(&n.as_str())) {
            return Err(Error::config(format!(
                "`{unknown}` is not a smoke check: {}",
                names::SMOKE.join(", ")
            ))
            .with_key("deploy.gate"));
        }
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        if !health.is_empty() {
            let request = HealthRequest {
                only: health,
                alert: false,
            };
            let mut run = HealthRun::from_config(config, &request)
                .map_err(|e| Error::config(e.message().to_owned()).with_key("deploy.gate"))?;
            run.textfile = None;
            run.heartbeat = None;
            runs.push(run);
        }
        if !smoke.is_empty() {
            if config.odoo.url.is_some() {
                let mut run = HealthRun::smoke(config, &SmokeRequest::default())?;
                run.checks.retain(|c| smoke.iter().any(|n| n == c.name()));
                run.textfile = None;
                runs.push(run);
            } else {
                skipped.extend(
                    smoke
                        .into_iter()
                        .map(|n| format!("{n}: [odoo] url is not set")),
                );
            }
        }
        Ok(Self {
            runs,
            timeout,
            skipped,
        })
    }

    /// The checks failing now (critical or unknown), by name.
    pub async fn failing(&self) -> Vec<CheckResult> {
        let mut failing = Vec::new();
        for run in &self.runs {
            failing.extend(
                run.run()
                    .await
                    .checks
                    .into_iter()
                    .filter(|c| matches!(c.status, CheckStatus::Critical | CheckStatus::Unknown)),
            );
        }
        failing
    }

    /// The names failing before the deploy: they do not fail its gate.
    pub async fn baseline(&self) -> BTreeSet<String> {
        self.failing().await.into_iter().map(|c| c.name).collect()
    }

    /// Waits until every check outside `baseline` passes; at the timeout, a `check_failed`
    /// error naming what still fails; `cancel` ends the wait.
    pub async fn pass(
        &self,
        baseline: &BTreeSet<String>,
        cancel: Option<&vigia_core::CancelToken>,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(cancel) = cancel {
                cancel.check()?;
            }
            let failing: Vec<CheckResult> = self
                .failing()
                .await
                .into_iter()
                .filter(|c| !baseline.contains(&c.name))
                .collect();
            if failing.is_empty() {
                return Ok(());
            }
            if started.elapsed() + RETRY > self.timeout {
                let what: Vec<String> = failing
                    .iter()
                    .map(|c| format!("{} {}: {}", c.name, c.status.as_str(), c.summary))
                    .collect();
                return Err(Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "the gate failed after {} s: {}",
                        self.timeout.as_secs(),
                        what.join("; ")
                    ),
                ));
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}
