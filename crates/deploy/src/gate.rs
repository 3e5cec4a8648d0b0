//! The gate a deploy passes after the switch: `[deploy] gate`'s checks (health's and
//! smoke's names), in two stages: the internal ones (Odoo on its own port, PostgreSQL, the
//! services) while the maintenance page may still be up, then the public ones (through nginx:
//! `odoo.public`, `smoke.*`) once it is off. Each stage is asked again until it passes or
//! `gate-timeout` ends; `smoke.login` runs once after the public stage passes, never in a
//! loop (the stack's login zone allows 5 requests a minute). Then `observe`: every check but
//! the login, every 10 s for `[deploy] observe`. Warnings pass; a check that already failed
//! before the deploy (the baseline) does not fail it. The runs write no metrics file: a
//! monitor's series are not a deploy's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{CancelToken, Config, Error, ErrorKind, Result};
use vigia_health::{HealthRequest, HealthRun, SmokeRequest, names};

/// How often a failing stage is asked again.
const RETRY: Duration = Duration::from_secs(2);
/// How often the checks run while a deploy is observed.
pub(crate) const OBSERVE_EVERY: Duration = Duration::from_secs(10);
/// The check that logs in: once per gate.
const LOGIN: &str = "smoke.login";

/// Which checks a stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Answered behind the maintenance page.
    Internal,
    /// Through nginx: only once the maintenance page is off.
    Public,
}

pub struct Gate {
    internal: Vec<HealthRun>,
    public: Vec<HealthRun>,
    login: Option<HealthRun>,
    timeout: Duration,
    /// Gate names left out, and why (smoke's without `[odoo] url`).
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("internal", &self.internal)
            .field("public", &self.public)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// `names` (health's or smoke's), each stage waited for up to `timeout`.
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
        let (public_health, internal_health): (Vec<String>, Vec<String>) =
            health.into_iter().partition(|n| n == "odoo.public");
        let mut gate = Self {
            internal: health_run(config, internal_health)?.into_iter().collect(),
            public: health_run(config, public_health)?.into_iter().collect(),
            login: None,
            timeout,
            skipped: Vec::new(),
        };
        if smoke.is_empty() {
            return Ok(gate);
        }
        if config.odoo.url.is_none() {
            gate.skipped.extend(
                smoke
                    .into_iter()
                    .map(|n| format!("{n}: [odoo] url is not set")),
            );
            return Ok(gate);
        }
        let (login, others): (Vec<String>, Vec<String>) =
            smoke.into_iter().partition(|n| n == LOGIN);
        gate.public.extend(smoke_run(config, &others)?);
        gate.login = smoke_run(config, &login)?;
        Ok(gate)
    }

    /// The checks of `runs` failing now (critical or unknown), outside `baseline`.
    async fn failing(runs: &[HealthRun], baseline: &BTreeSet<String>) -> Vec<CheckResult> {
        let mut failing = Vec::new();
        for run in runs {
            failing.extend(run.run().await.checks.into_iter().filter(|c| {
                matches!(c.status, CheckStatus::Critical | CheckStatus::Unknown)
                    && !baseline.contains(&c.name)
            }));
        }
        failing
    }

    /// The names failing before the deploy: they do not fail its gate. The login is asked
    /// too (once).
    pub async fn baseline(&self) -> BTreeSet<String> {
        let none = BTreeSet::new();
        let runs = self.internal.iter().chain(&self.public).chain(&self.login);
        let mut failing = BTreeSet::new();
        for run in runs {
            failing.extend(
                Self::failing(std::slice::from_ref(run), &none)
                    .await
                    .into_iter()
                    .map(|c| c.name),
            );
        }
        failing
    }

    /// Waits until every check of `stage` outside `baseline` passes; at the timeout, a
    /// `check_failed` error naming what still fails; `cancel` ends the wait. The public
    /// stage then logs in once.
    pub async fn pass(
        &self,
        stage: Stage,
        baseline: &BTreeSet<String>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        let runs = match stage {
            Stage::Internal => &self.internal,
            Stage::Public => &self.public,
        };
        let started = Instant::now();
        loop {
            if let Some(cancel) = cancel {
                cancel.check()?;
            }
            let failing = Self::failing(runs, baseline).await;
            if failing.is_empty() {
                break;
            }
            if started.elapsed() + RETRY > self.timeout {
                return Err(failed(
                    &format!("the gate failed after {} s", self.timeout.as_secs()),
                    &failing,
                ));
            }
            tokio::time::sleep(RETRY).await;
        }
        if stage == Stage::Public
            && let Some(login) = &self.login
        {
            let failing = Self::failing(std::slice::from_ref(login), baseline).await;
            if !failing.is_empty() {
                return Err(failed("the gate failed", &failing));
            }
        }
        Ok(())
    }

    /// Both stages, for when no maintenance page stands between them.
    pub async fn pass_all(
        &self,
        baseline: &BTreeSet<String>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        self.pass(Stage::Internal, baseline, cancel).await?;
        self.pass(Stage::Public, baseline, cancel).await
    }

    /// Every check but the login, every `OBSERVE_EVERY` for `length`: the first failure
    /// outside `baseline` ends it (`check_failed`).
    pub async fn observe(
        &self,
        length: Duration,
        baseline: &BTreeSet<String>,
        cancel: &CancelToken,
    ) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < length {
            let wait = OBSERVE_EVERY.min(length.saturating_sub(started.elapsed()));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => {}
            }
            cancel.check()?;
            let runs: Vec<&HealthRun> = self.internal.iter().chain(&self.public).collect();
            for run in runs {
                let failing = Self::failing(std::slice::from_ref(run), baseline).await;
                if !failing.is_empty() {
                    return Err(failed(
                        &format!(
                            "a check failed {} s into the observation",
                            started.elapsed().as_secs()
                        ),
                        &failing,
                    ));
                }
            }
        }
        Ok(())
    }
}

fn failed(what: &str, failing: &[CheckResult]) -> Error {
    let list: Vec<String> = failing
        .iter()
        .map(|c| format!("{} {}: {}", c.name, c.status.as_str(), c.summary))
        .collect();
    Error::new(
        ErrorKind::CheckFailed,
        format!("{what}: {}", list.join("; ")),
    )
}

/// Health's checks named `only`, writing no file; None when there are none.
fn health_run(config: &Config, only: Vec<String>) -> Result<Option<HealthRun>> {
    if only.is_empty() {
        return Ok(None);
    }
    let request = HealthRequest { only, alert: false };
    let mut run = HealthRun::from_config(config, &request)
        .map_err(|e| Error::config(e.message().to_owned()).with_key("deploy.gate"))?;
    run.textfile = None;
    run.heartbeat = None;
    Ok(Some(run))
}

/// Smoke's checks named in `only`, writing no file; None when there are none.
fn smoke_run(config: &Config, only: &[String]) -> Result<Option<HealthRun>> {
    if only.is_empty() {
        return Ok(None);
    }
    let mut run = HealthRun::smoke(config, &SmokeRequest::default())?;
    run.checks.retain(|c| only.iter().any(|n| n == c.name()));
    run.textfile = None;
    Ok(Some(run))
}
