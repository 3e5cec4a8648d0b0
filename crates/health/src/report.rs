//! What a health run answers: the JSON data, and the monitoring plugin's first line.

use serde::Serialize;
use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Error, ErrorKind, Outcome};
use vigia_runtime::silence::Silence;

use crate::alerts::AlertSent;

/// The `data` of `vigia health --json`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The worst result (`ok` when every check was skipped).
    pub status: CheckStatus,
    pub checks: Vec<CheckResult>,
    /// With `--alert`: what this run announced, and what each channel did with it.
    pub alerts: Vec<AlertSent>,
    /// With `--alert`: the silence in force, if any (nothing was sent).
    pub silenced: Option<Silence>,
    /// With `--alert`: why alerting itself failed (the state could not be locked, read or
    /// written), so that a monitor sees it was not alerting; null when it worked.
    pub alert_error: Option<String>,
}

impl HealthReport {
    pub fn new(checks: Vec<CheckResult>) -> Self {
        let status = checks
            .iter()
            .map(|c| c.status)
            .max()
            .map_or(CheckStatus::Ok, |s| s.max(CheckStatus::Ok));
        Self {
            status,
            checks,
            alerts: Vec::new(),
            silenced: None,
            alert_error: None,
        }
    }

    /// Why alerts did not reach anybody: alerting itself failed, or every channel refused an
    /// alert (it is retried next run). None when every alert reached a channel.
    pub fn undelivered(&self) -> Option<String> {
        if let Some(e) = &self.alert_error {
            return Some(format!("alerting failed: {e}"));
        }
        let lost: Vec<String> = self
            .alerts
            .iter()
            .filter(|a| !a.channels.is_empty() && a.channels.iter().all(|c| !c.ok))
            .map(|a| format!("{} {}", a.check, a.event.as_str()))
            .collect();
        (!lost.is_empty()).then(|| format!("alerts not delivered: {}", lost.join(", ")))
    }

    /// The status a monitor or systemd sees: unknown when the run could not tell anybody,
    /// whatever the checks said, so that a silent failure to alert is never a success.
    pub fn plugin_status(&self) -> CheckStatus {
        if self.undelivered().is_some() {
            CheckStatus::Unknown
        } else {
            self.status
        }
    }

    /// The checks whose status is the run's, by name.
    pub fn worst(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.status == self.status)
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// Like verify: a critical or unknown run is a failed command (`check_failed`, data kept).
impl Outcome for HealthReport {
    fn failure(&self) -> Option<Error> {
        if matches!(self.status, CheckStatus::Critical | CheckStatus::Unknown) {
            return Some(Error::new(
                ErrorKind::CheckFailed,
                format!("{}: {}", label(self.status), self.worst().join(", ")),
            ));
        }
        self.undelivered()
            .map(|why| Error::new(ErrorKind::CheckFailed, format!("UNKNOWN: {why}")))
    }
}

fn label(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Skipped | CheckStatus::Ok => "OK",
        CheckStatus::Warning => "WARNING",
        CheckStatus::Unknown => "UNKNOWN",
        CheckStatus::Critical => "CRITICAL",
    }
}

/// `VIGIA CRITICAL - odoo.public, disk:/srv | 'odoo.public'=0.012s ...`: the first line of
/// a monitoring plugin's output, with each check's duration as performance data.
pub fn plugin_line(report: &HealthReport) -> String {
    let ran: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Skipped)
        .collect();
    let mut what = if report.status == CheckStatus::Ok {
        format!("{} checks ok", ran.len())
    } else {
        report.worst().join(", ")
    };
    if let Some(why) = report.undelivered() {
        what = format!("{what}; {why}");
    }
    let perf: Vec<String> = ran
        .iter()
        .map(|c| format!("'{}'={:.3}s", c.name, c.duration_ms as f64 / 1000.0))
        .collect();
    format!(
        "VIGIA {} - {what} | {}",
        label(report.plugin_status()),
        perf.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, status: CheckStatus) -> CheckResult {
        CheckResult {
            name: name.into(),
            status,
            summary: String::new(),
            evidence: serde_json::Value::Null,
            duration_ms: 12,
        }
    }

    #[test]
    fn the_worst_result_decides_and_skipped_is_not_a_failure() {
        let all_skipped = HealthReport::new(vec![check("postgres", CheckStatus::Skipped)]);
        assert_eq!(all_skipped.status, CheckStatus::Ok);
        assert!(all_skipped.failure().is_none());
        let report = HealthReport::new(vec![
            check("memory", CheckStatus::Warning),
            check("odoo.public", CheckStatus::Critical),
            check("disk:/srv", CheckStatus::Critical),
            check("postgres", CheckStatus::Skipped),
        ]);
        assert_eq!(report.status, CheckStatus::Critical);
        assert_eq!(report.failure().unwrap().kind(), ErrorKind::CheckFailed);
        assert_eq!(
            plugin_line(&report),
            "VIGIA CRITICAL - odoo.public, disk:/srv | 'memory'=0.012s 'odoo.public'=0.012s \
             'disk:/srv'=0.012s"
        );
        let warning = HealthReport::new(vec![check("memory", CheckStatus::Warning)]);
        assert!(warning.failure().is_none());
    }
}
