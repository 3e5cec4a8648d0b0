//! `vigia restore ID|--from-odoo-zip FILE [--target-db NAME] [--confirm DB] [--neutralize] ...`,
//! `vigia restore --resume` and `vigia restore --cleanup [--apply]`.

use std::fmt::Write;

use vigia_core::Result;
use vigia_restore::{
    CleanupReport, CleanupRequest, PlannedRestore, RestoreCleanup, RestoreJob, RestoreReport,
    RestoreRequest, ResumeReport, SwapRecovery,
};

use super::{load_config, runtime};
use crate::args::{Cli, RestoreArgs};
use crate::output::Human;
use crate::progress;

pub fn run(cli: &Cli, args: &RestoreArgs) -> Result<RestoreReport> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        let mut job = RestoreJob::from_config(&config, request(args)).await?;
        job.progress = progress::for_cli(cli);
        job.run().await
    })
}

/// `vigia restore ... --dry-run`: the plan, nothing touched.
pub fn plan(cli: &Cli, args: &RestoreArgs) -> Result<PlannedRestore> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        let plan = RestoreJob::from_config(&config, request(args))
            .await?
            .plan()?;
        Ok(PlannedRestore { plan })
    })
}

fn request(args: &RestoreArgs) -> RestoreRequest {
    RestoreRequest {
        id: args.id.clone(),
        from_odoo_zip: args.from_odoo_zip.clone(),
        target_db: args.target_db.clone(),
        confirm: args.confirm.clone(),
        accept_einvoice_loss: args.accept_einvoice_loss,
        force_sessions: args.force_sessions,
        neutralize: args.neutralize,
        trust_zip: args.trust_zip,
        jobs: args.jobs,
        role: args.role.clone(),
        resume: false,
        dry_run: args.dry_run,
    }
}

impl Human for PlannedRestore {
    fn human(&self) -> String {
        let mut out = String::from("The restore would:\n");
        for (i, step) in self.plan.steps.iter().enumerate() {
            let _ = writeln!(out, "{:>3}. {step}", i + 1);
        }
        out.push_str("Nothing was changed (--dry-run).\n");
        out
    }
}

impl Human for RestoreReport {
    fn human(&self) -> String {
        let source = match (&self.id, &self.odoo_zip) {
            (Some(id), _) => format!("Backup {id}"),
            (None, Some(zip)) => format!("The Odoo zip {}", zip.file.display()),
            (None, None) => "The backup".to_owned(),
        };
        let mut out = String::new();
        if let Some(r) = &self.recovered {
            let _ = writeln!(
                out,
                "First, an interrupted swap of {} was undone: {}.",
                r.live, r.checked
            );
        }
        if let Some(zip) = &self.odoo_zip {
            let _ = writeln!(out, "{}", zip.describe());
        }
        let _ = match &self.aside {
            Some(aside) => write!(
                out,
                "{source} restored and swapped in as {}; the previous database is kept as {}{}.\n\
                 Remove it with `vigia restore --cleanup --apply` once you are sure.\n",
                self.target_database,
                aside.database,
                aside
                    .filestore
                    .as_ref()
                    .map(|f| format!(" (filestore {})", f.display()))
                    .unwrap_or_default()
            ),
            None => writeln!(
                out,
                "{source} restored into database {} (the live database was not touched).",
                self.target_database
            ),
        };
        if let Some(dir) = &self.filestore {
            let _ = writeln!(out, "Filestore: {}", dir.display());
        }
        if let Some(n) = &self.neutralized {
            out.push_str("Neutralized (it can send no e-invoice and no e-mail):\n");
            for step in &n.steps {
                let _ = writeln!(out, "  {step}");
            }
            if !n.cleared.is_empty() {
                let _ = writeln!(
                    out,
                    "  Hacienda credentials cleared: {}",
                    n.cleared.join(", ")
                );
            }
            if n.statements > 0 {
                let _ = writeln!(
                    out,
                    "  [restore] neutralize-sql: {} statements",
                    n.statements
                );
            }
        }
        for phase in &self.phases {
            let _ = writeln!(
                out,
                "  {:<32} {:>7.1} s",
                phase.name,
                phase.duration_ms as f64 / 1000.0
            );
        }
        out
    }
}

pub fn resume(cli: &Cli) -> Result<ResumeReport> {
    let request = RestoreRequest {
        resume: true,
        ..RestoreRequest::default()
    };
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        let mut recovery = SwapRecovery::from_config(&config, &request).await?;
        recovery.progress = progress::for_cli(cli);
        recovery.run().await
    })
}

impl Human for ResumeReport {
    fn human(&self) -> String {
        let Some(r) = &self.recovered else {
            return if self.journal {
                "The interrupted swap was already undone.\n".to_owned()
            } else {
                "No interrupted swap: nothing to do.\n".to_owned()
            };
        };
        let mut out = format!(
            "The swap of {} (pid {}, started {}) was interrupted; it is undone: {}.\n",
            r.live, r.pid, r.started_at, r.checked
        );
        for step in &r.steps {
            let _ = writeln!(out, "  {step}");
        }
        let _ = writeln!(
            out,
            "The restored copy is {}; `vigia restore --cleanup --apply` removes it.",
            r.restored
        );
        out
    }
}

pub fn cleanup(cli: &Cli, args: &RestoreArgs) -> Result<CleanupReport> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        RestoreCleanup::from_config(
            &config,
            CleanupRequest {
                apply: args.apply,
                confirm: args.confirm.clone(),
            },
        )
        .await?
        .run()
        .await
    })
}

impl Human for CleanupReport {
    fn human(&self) -> String {
        let mut out = String::new();
        let verb = if self.applied { "removed" } else { "found" };
        for db in &self.databases {
            let _ = writeln!(out, "{verb} database {db}");
        }
        for dir in &self.filestores {
            let _ = writeln!(out, "{verb} filestore {}", dir.display());
        }
        for role in &self.roles {
            let _ = writeln!(out, "{verb} throwaway role {role}");
        }
        for file in &self.spool_files {
            let _ = writeln!(out, "{verb} spool file {}", file.display());
        }
        if self.databases.is_empty()
            && self.filestores.is_empty()
            && self.roles.is_empty()
            && self.spool_files.is_empty()
        {
            out.push_str("Nothing left by restores.\n");
        } else if !self.applied {
            out.push_str("Remove them with `vigia restore --cleanup --apply`.\n");
        }
        out
    }
}
