//! What a deploy answers: its steps, its outcome, and the rollback when there was one.

use serde::Serialize;
use vigia_core::{Error, ErrorKind, Outcome};

/// One step as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub name: String,
    pub duration_ms: u64,
    /// `ok` or `failed`.
    pub outcome: String,
}

/// A rollback, after a failed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackReport {
    pub ok: bool,
    /// The pre-deploy copy was swapped back in for the upgraded database.
    pub swapped_back: bool,
    /// The e-invoice guard refused: nothing was touched, and `vigia rollback
    /// --accept-einvoice-loss` may be run.
    pub refused: bool,
    pub steps: Vec<StepReport>,
    /// Why it went as it did (what failed in it, or what it refused to do).
    pub detail: Option<String>,
    /// The kind of what failed it.
    #[serde(skip)]
    pub kind: Option<ErrorKind>,
}

/// The `data` of `vigia deploy --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployReport {
    pub id: String,
    pub from: String,
    pub to: String,
    pub upgraded: Vec<String>,
    /// `deployed`, `nothing_to_do`, `refused` (a step failed before anything of the stack
    /// was touched), `rolled_back`, `rollback_refused` or `failed`.
    pub outcome: String,
    pub rollback: Option<RollbackReport>,
    pub steps: Vec<StepReport>,
    /// What went wrong that does not change the outcome (a post-hook, an alert channel,
    /// pruning, files missing after a swap back).
    pub warnings: Vec<String>,
    /// The error that failed the deploy, when it failed.
    #[serde(skip)]
    pub error: Option<(ErrorKind, String)>,
}

impl DeployReport {
    /// The report of the deploy `header` describes, before its steps.
    pub(crate) fn of(header: &crate::journal::Header, outcome: &str) -> Self {
        Self {
            id: header.id.clone(),
            from: header.from.clone(),
            to: header.to.clone(),
            upgraded: header.upgrade.clone(),
            outcome: outcome.to_owned(),
            rollback: None,
            steps: Vec::new(),
            warnings: Vec::new(),
            error: None,
        }
    }
}

/// A deploy that failed is a failed command whatever its rollback did: one rolled back is
/// `check_failed` (18), one cancelled `cancelled` (20), and a failed rollback keeps the kind
/// of what failed it.
impl Outcome for DeployReport {
    fn failure(&self) -> Option<Error> {
        let (cause, message) = self.error.clone()?;
        let kind = match &self.rollback {
            Some(r) if !r.ok => r.kind.unwrap_or(cause),
            _ if cause == ErrorKind::Cancelled => cause,
            Some(_) => ErrorKind::CheckFailed,
            None => cause,
        };
        let rollback = match &self.rollback {
            Some(r) if r.ok && r.swapped_back => {
                "; rolled back: the pre-deploy database swapped back in".to_owned()
            }
            Some(r) if r.ok => "; rolled back".to_owned(),
            Some(r) if r.refused => format!(
                "; not rolled back: {}",
                r.detail.as_deref().unwrap_or("see its steps")
            ),
            Some(r) => format!(
                "; THE ROLLBACK FAILED: {}",
                r.detail.as_deref().unwrap_or("see its steps")
            ),
            None => String::new(),
        };
        Some(Error::new(
            kind,
            format!("deploy {} failed: {message}{rollback}", self.id),
        ))
    }
}

/// The journal outcome of a rollback the e-invoice guard refused: `vigia rollback` may be
/// run again (with `--accept-einvoice-loss`).
pub(crate) const REFUSED: &str = "rollback_refused";

/// How a deploy ended after `rollback`: a refusal of the e-invoice guard may be retried.
pub(crate) fn outcome_of(rollback: &RollbackReport) -> &'static str {
    match (rollback.ok, rollback.refused) {
        (true, _) => "rolled_back",
        (false, true) => REFUSED,
        (false, false) => "failed",
    }
}
