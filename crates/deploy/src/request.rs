//! What the faces ask (CLI, C ABI): `vigia deploy --release REF [--dry-run] | --resume`, `vigia
//! rollback [--accept-einvoice-loss]`, `vigia deploy history|lock|unlock`; and what they
//! answer.

use serde::{Deserialize, Serialize};
use vigia_core::{Config, Error, Outcome, Result};

use crate::audit::{self, AuditLine};
use crate::executor::DeployJob;
use crate::plan::DeployPlan;
use crate::report::DeployReport;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployRequest {
    /// The release to deploy (`[A-Za-z0-9._-]{1,64}`).
    pub release: String,
    /// Only the plan: nothing is touched.
    pub dry_run: bool,
    /// Go on with the last deploy, killed midway (no release then).
    pub resume: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackRequest {
    /// Swap the pre-deploy copy back even though e-invoices were made since.
    pub accept_einvoice_loss: bool,
}

/// The `data` of `vigia deploy --json`: the plan with `--dry-run`, else the report.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DeployData {
    Plan(Box<DeployPlan>),
    Deploy(Box<DeployReport>),
}

impl Outcome for DeployData {
    fn failure(&self) -> Option<Error> {
        match self {
            Self::Plan(_) => None,
            Self::Deploy(report) => report.failure(),
        }
    }
}

/// The `data` of `vigia deploy history --json`.
#[derive(Debug, Clone, Serialize)]
pub struct DeployHistory {
    /// Oldest first.
    pub deploys: Vec<AuditLine>,
}

impl Outcome for DeployHistory {}

impl DeployJob {
    pub async fn request(&self, request: &DeployRequest) -> Result<DeployData> {
        if request.resume {
            if !request.release.is_empty() || request.dry_run {
                return Err(Error::invalid_input(
                    "a resume goes on with the last deploy: give no release and no dry run",
                ));
            }
            return Ok(DeployData::Deploy(Box::new(self.resume().await?)));
        }
        if request.dry_run {
            let mut plan = self.planner.plan(&Self::new_id(), &request.release).await?;
            plan.notes.extend(
                self.gate
                    .skipped
                    .iter()
                    .map(|s| format!("gate: {s}, so it is left out")),
            );
            return Ok(DeployData::Plan(Box::new(plan)));
        }
        Ok(DeployData::Deploy(Box::new(
            self.run(&request.release).await?,
        )))
    }

    pub async fn rollback_request(&self, request: &RollbackRequest) -> Result<DeployReport> {
        self.rollback_last(request.accept_einvoice_loss).await
    }
}

/// Every deploy recorded in `state-dir/deploys/audit.jsonl` (needs nothing but the state dir).
pub fn history(config: &Config) -> Result<DeployHistory> {
    Ok(DeployHistory {
        deploys: audit::history(&config.state_dir.join("deploys"))?,
    })
}

/// `vigia deploy lock -m TEXT`: deploys frozen until `unlock`.
pub fn lock(config: &Config, message: &str) -> Result<crate::freeze::Freeze> {
    crate::freeze::freeze(&config.state_dir, message, &performer())
}

/// `vigia deploy unlock`.
pub fn unlock(config: &Config) -> Result<crate::freeze::Unfrozen> {
    crate::freeze::unfreeze(&config.state_dir)
}

/// Who acts: `user@host` (the user behind sudo when there is one).
pub fn performer() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| format!("uid {}", vigia_core::process::effective_uid()));
    format!("{user}@{}", vigia_core::process::hostname())
}
