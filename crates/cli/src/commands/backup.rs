//! `vigia backup`, `vigia backup list`, `vigia backup show ID`.

use std::fmt::Write;

use vigia_backup::format::BackupId;
use vigia_backup::{
    BackupDetails, BackupJob, BackupList, BackupReport, BackupRequest, StoreAccess,
};
use vigia_core::Result;

use super::{load_config, runtime};
use crate::args::{BackupArgs, Cli};
use crate::output::{Human, bytes};
use crate::progress;

pub fn take(cli: &Cli, args: &BackupArgs) -> Result<BackupReport> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        let request = BackupRequest {
            allow_missing_files: args.allow_missing_files,
        };
        let mut job = BackupJob::from_config(&config, request).await?;
        job.progress = progress::for_cli(cli);
        job.run().await
    })
}

pub fn list(cli: &Cli) -> Result<BackupList> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        StoreAccess::from_config(&config)
            .await?
            .list_backups()
            .await
    })
}

pub fn show(cli: &Cli, id: &str) -> Result<BackupDetails> {
    let id: BackupId = id.parse()?;
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        StoreAccess::from_config(&config)
            .await?
            .show_backup(&id)
            .await
    })
}

impl Human for BackupReport {
    fn human(&self) -> String {
        let f = &self.filestore;
        let mut out = format!(
            "Backup {} of {}: {} in all, {} uploaded, in {:.1} s\nFilestore: {} files, {} new ({})\n",
            self.id,
            self.database,
            bytes(self.size_bytes),
            bytes(self.uploaded_bytes),
            self.duration_ms as f64 / 1000.0,
            f.files,
            f.new_files,
            bytes(f.new_bytes),
        );
        for problem in &f.problems {
            let _ = writeln!(
                out,
                "warning: left out: {}",
                serde_json::to_string(problem).unwrap_or_default()
            );
        }
        out
    }
}

impl Human for BackupList {
    fn human(&self) -> String {
        let mut out = String::new();
        if self.backups.is_empty() {
            out.push_str("No backups in the store.\n");
        } else {
            let _ = writeln!(
                out,
                "{:<22} {:<21} {:<16} {:>10}  VERIFIED",
                "ID", "FINISHED", "DATABASE", "SIZE"
            );
        }
        for b in &self.backups {
            let finished = utc(b.finished_at);
            let verified = if b.verified.is_some() { "yes" } else { "never" };
            let _ = writeln!(
                out,
                "{:<22} {finished:<21} {:<16} {:>10}  {verified}",
                b.id.as_str(),
                b.database,
                bytes(b.size_bytes)
            );
        }
        for d in &self.damaged {
            let _ = writeln!(out, "DAMAGED {}: {}", d.key, d.problem);
        }
        out
    }
}

impl Human for BackupDetails {
    fn human(&self) -> String {
        let i = &self.index;
        let mut out = format!(
            "Backup {} of {}\nstarted {}  finished {}  vigia {}\n{} objects, {}\n",
            i.id,
            i.database,
            utc(i.started_at),
            utc(i.finished_at),
            i.vigia_version,
            i.objects.len(),
            bytes(i.size_bytes())
        );
        match &self.manifest {
            Some(m) => {
                let rows: u64 = m.row_counts.values().sum();
                let _ = writeln!(
                    out,
                    "PostgreSQL {}, {} tables, {rows} rows, {} modules, {} filestore files",
                    m.server_version_num,
                    m.row_counts.len(),
                    m.modules.len(),
                    m.filestore.len()
                );
                for (module, version) in &m.modules {
                    let _ = writeln!(out, "  {module} {version}");
                }
            }
            None => out.push_str("(manifest not shown: no identity configured)\n"),
        }
        out
    }
}

fn utc(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}
