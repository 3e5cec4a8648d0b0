//! `Check`: one health or smoke check, and its result as the JSON shows it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Ordered by severity, so the worst of several is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Not configured: its config section is absent.
    Skipped,
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl CheckStatus {
    /// The name the JSON shows: `ok`, `warning`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Unknown => "unknown",
            Self::Critical => "critical",
        }
    }

    /// The monitoring-plugin exit code: 0 ok, 1 warning, 2 critical, 3 unknown.
    pub const fn plugin_code(self) -> u8 {
        match self {
            Self::Skipped | Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
            Self::Unknown => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: CheckStatus,
    /// One line for the operator.
    pub summary: String,
    /// What was measured, for whoever digs further.
    pub evidence: serde_json::Value,
    pub duration_ms: u64,
}

#[async_trait]
pub trait Check: Send + Sync {
    fn name(&self) -> &str;
    async fn run(&self) -> CheckResult;
    /// A check with one result per thing it finds (a key per company: `p12:<id>`) answers
    /// them all here, or only `items` when some are named (`--only p12:1` gives `["1"]`); the
    /// others answer `run`'s one result.
    async fn run_all(&self, _items: &[String]) -> Vec<CheckResult> {
        vec![self.run().await]
    }
    /// A budget of its own (Hacienda's API), instead of `[health] timeout`.
    fn budget(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::CheckStatus;

    #[test]
    fn unknown_outranks_warning_and_critical_outranks_all() {
        let worst = [CheckStatus::Ok, CheckStatus::Unknown, CheckStatus::Warning]
            .into_iter()
            .max();
        assert_eq!(worst, Some(CheckStatus::Unknown));
        assert_eq!(
            [CheckStatus::Unknown, CheckStatus::Critical]
                .into_iter()
                .max(),
            Some(CheckStatus::Critical)
        );
    }
}
