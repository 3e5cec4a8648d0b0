//! Around a deploy's steps: the alert silence an upgrade holds while it takes Odoo down on
//! purpose; and once the deploy ended, the post-hook, its outcome sent to the alert channels
//! and the oldest releases pruned. None of these changes the outcome: their failures are
//! the report's warnings.

use std::fmt::Write as _;
use std::time::Duration;

use vigia_core::ports::check::CheckStatus;
use vigia_core::{Outcome as _, Result};
use vigia_runtime::releases::ReleaseRef;
use vigia_runtime::silence::{RunSilence, SilenceFile};

use crate::executor::DeployJob;
use crate::hooks::{self, HookEnv};
use crate::journal::Header;
use crate::report::DeployReport;

/// Beyond the steps' own limits (the copy, the swap back), how long the silence lasts;
/// vigia killed, it lapses.
const SILENCE_MARGIN: Duration = Duration::from_mins(30);

impl DeployJob {
    /// With an upgrade and `[alerting]`: alerts silenced for as long as the deploy can
    /// take (never shortening an operator's silence).
    pub(crate) fn silence(&self, header: &Header) -> Result<Option<RunSilence>> {
        if header.copy_database.is_none() || self.config.alerting.is_none() {
            return Ok(None);
        }
        let length = self.upgrade_timeout
            + self.settings.gate_timeout.0 * 4
            + self.settings.observe.0
            + SILENCE_MARGIN;
        let file = SilenceFile::from_config(&self.config)?;
        let reason = format!(
            "vigia deploy {} ({} -> {}) upgrades {}",
            header.id,
            header.from,
            header.to,
            header.upgrade.join(", ")
        );
        RunSilence::begin(&file, length, &reason, &self.performer).map(Some)
    }

    /// The post-hook, the alert, and the releases pruned; what failed, as warnings.
    pub(crate) async fn after(&self, env: &HookEnv, report: &DeployReport) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(post) = &self.settings.post_hook {
            let log = self.deploys_dir.join(&report.id).join("post-hook.log");
            let hide = self.hide.clone();
            let root = &self.settings.root;
            if let Some(w) = hooks::post(post, root, env, &report.outcome, &log, hide).await {
                warnings.push(w);
            }
        }
        warnings.extend(self.announce(report).await);
        if report.outcome == "deployed" {
            warnings.extend(match &self.planner.source {
                crate::source::Source::Images(compose) => {
                    let keep = self.settings.keep_releases;
                    compose
                        .prune_pins(keep, &[&report.from, &report.to])
                        .await
                        .err()
                        .map(|e| format!("old rollback tags were not removed: {e}"))
                }
                crate::source::Source::Folders(_) => self.prune(report),
            });
        }
        warnings
    }

    /// The outcome on every alert channel: a subject line, and the detail in the body.
    pub(crate) async fn announce(&self, report: &DeployReport) -> Vec<String> {
        let alerting = match &self.alerting {
            Ok(Some(alerting)) => alerting,
            Ok(None) => return Vec::new(),
            Err(e) => return vec![format!("the deploy's alert was not sent: {e}")],
        };
        let failure = report.failure();
        let status = match (&failure, report.outcome.as_str()) {
            (None, _) => CheckStatus::Ok,
            (Some(_), "rolled_back") => CheckStatus::Warning,
            (Some(_), _) => CheckStatus::Critical,
        };
        let subject = format!(
            "deploy {} -> {}: {}",
            report.from, report.to, report.outcome
        );
        let mut body = format!(
            "Deploy {} by {} on {}: {} -> {}, {}.\nUpgraded: {}\n",
            report.id,
            self.performer,
            vigia_core::process::hostname(),
            report.from,
            report.to,
            report.outcome,
            if report.upgraded.is_empty() {
                "nothing".to_owned()
            } else {
                report.upgraded.join(", ")
            }
        );
        if let Some(e) = &failure {
            let _ = write!(body, "\n{e}\n");
        }
        for w in &report.warnings {
            let _ = writeln!(body, "Warning: {w}");
        }
        alerting
            .announce(status, &subject, &body)
            .await
            .into_iter()
            .filter_map(|c| {
                c.error
                    .map(|e| format!("the deploy's alert on {}: {e}", c.channel))
            })
            .collect()
    }

    /// Releases beyond `[deploy] keep-releases`, never the one deployed or the one before.
    fn prune(&self, report: &DeployReport) -> Option<String> {
        let (Ok(to), Ok(from)) = (
            ReleaseRef::parse(&report.to),
            ReleaseRef::parse(&report.from),
        ) else {
            return None;
        };
        let crate::source::Source::Folders(releases) = &self.planner.source else {
            return None;
        };
        let current = match releases.current() {
            Ok(current) => current,
            Err(e) => return Some(format!("old releases were not pruned: {e}")),
        };
        let mut protect = vec![&to, &from];
        protect.extend(current.as_ref());
        match releases.prune(self.settings.keep_releases, &protect) {
            Ok(removed) => {
                if !removed.is_empty() {
                    let names: Vec<&str> = removed.iter().map(ReleaseRef::as_str).collect();
                    tracing::info!("removed old releases: {}", names.join(", "));
                }
                None
            }
            Err(e) => Some(format!("old releases were not pruned: {e}")),
        }
    }
}
