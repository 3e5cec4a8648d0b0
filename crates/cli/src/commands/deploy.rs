//! `vigia deploy --release REF [--dry-run] | --resume`, `vigia deploy history|lock -m TEXT|unlock`,
//! `vigia rollback [--accept-einvoice-loss]`.

use std::fmt::Write;

use vigia_core::Result;
use vigia_deploy::freeze::{Freeze, Unfrozen};
use vigia_deploy::{
    DeployData, DeployHistory, DeployJob, DeployPlan, DeployReport, DeployRequest, RollbackRequest,
};

use super::{load_config, runtime};
use crate::args::{Cli, DeployArgs, RollbackArgs};
use crate::output::Human;

pub fn run(cli: &Cli, args: &DeployArgs) -> Result<DeployData> {
    let config = load_config(cli)?;
    let request = DeployRequest {
        release: args.release.clone().unwrap_or_default(),
        dry_run: args.dry_run,
        resume: args.resume,
    };
    runtime()?.block_on(async { DeployJob::from_config(&config)?.request(&request).await })
}

pub fn rollback(cli: &Cli, args: &RollbackArgs) -> Result<DeployReport> {
    let config = load_config(cli)?;
    let request = RollbackRequest {
        accept_einvoice_loss: args.accept_einvoice_loss,
    };
    runtime()?.block_on(async {
        DeployJob::from_config(&config)?
            .rollback_request(&request)
            .await
    })
}

pub fn history(cli: &Cli) -> Result<DeployHistory> {
    vigia_deploy::history(&load_config(cli)?)
}

pub fn lock(cli: &Cli, message: &str) -> Result<Freeze> {
    vigia_deploy::lock(&load_config(cli)?, message)
}

pub fn unlock(cli: &Cli) -> Result<Unfrozen> {
    vigia_deploy::unlock(&load_config(cli)?)
}

impl Human for Freeze {
    fn human(&self) -> String {
        format!(
            "deploys frozen by {} since {}: {}\n`vigia deploy unlock` ends the freeze\n",
            self.by, self.since, self.message
        )
    }
}

impl Human for Unfrozen {
    fn human(&self) -> String {
        match &self.ended {
            Some(f) => format!("deploys unfrozen (frozen by {}: {})\n", f.by, f.message),
            None => "deploys were not frozen\n".to_owned(),
        }
    }
}

impl Human for DeployData {
    fn human(&self) -> String {
        match self {
            Self::Plan(plan) => plan.human(),
            Self::Deploy(report) => report.human(),
        }
    }
}

impl Human for DeployPlan {
    fn human(&self) -> String {
        let mut out = format!("deploy {} -> {} (plan {})\n", self.from, self.to, self.id);
        if self.changes.upgrade.is_empty() {
            out.push_str("no module to upgrade: the deploy switches and restarts\n");
        } else {
            let _ = writeln!(out, "upgrade: {}", self.changes.upgrade.join(", "));
        }
        for (n, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "{:>2}. {step}", n + 1);
        }
        for undo in &self.compensations {
            let _ = writeln!(out, "undo: {undo}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

impl Human for DeployReport {
    fn human(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let _ = writeln!(
                out,
                "{:<12} {:<7} {:>7} ms",
                step.name, step.outcome, step.duration_ms
            );
        }
        if let Some(rollback) = &self.rollback {
            for step in &rollback.steps {
                let _ = writeln!(
                    out,
                    "{:<24} {:<7} {:>7} ms",
                    step.name, step.outcome, step.duration_ms
                );
            }
        }
        let upgraded = if self.upgraded.is_empty() {
            String::new()
        } else {
            format!(" (upgraded {})", self.upgraded.join(", "))
        };
        let _ = writeln!(
            out,
            "deploy {} {} -> {}{upgraded}: {}",
            self.id, self.from, self.to, self.outcome
        );
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

impl Human for DeployHistory {
    fn human(&self) -> String {
        let mut out = String::new();
        for d in &self.deploys {
            let _ = writeln!(
                out,
                "{}  {} -> {}  {}  by {}  {} ms{}",
                d.id,
                d.from,
                d.to,
                d.outcome,
                d.performer,
                d.duration_ms,
                if d.upgraded.is_empty() {
                    String::new()
                } else {
                    format!("  upgraded {}", d.upgraded.join(", "))
                }
            );
        }
        if out.is_empty() {
            out.push_str("no deploy yet\n");
        }
        out
    }
}
