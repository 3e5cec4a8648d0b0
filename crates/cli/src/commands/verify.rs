//! `vigia verify [ID | --all] [--level quick|full|drill]`.

use std::fmt::Write;

use vigia_backup::{VerifyJob, VerifyReport, VerifyRequest};
use vigia_core::Result;

use super::{load_config, runtime};
use crate::args::{Cli, VerifyArgs};
use crate::output::Human;
use crate::progress;

pub fn run(cli: &Cli, args: &VerifyArgs) -> Result<VerifyReport> {
    let request = VerifyRequest {
        id: args.id.clone(),
        all: args.all,
        level: args.level.clone(),
    };
    // Bad arguments are reported as such, before the config is read.
    request.level()?;
    request.selection()?;
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        let mut job = VerifyJob::from_config(&config, &request).await?;
        job.progress = progress::for_cli(cli);
        job.run().await
    })
}

impl Human for VerifyReport {
    fn human(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for r in &self.results {
            let verdict = if r.ok { "ok" } else { "FAILED" };
            let _ = writeln!(
                out,
                "{} {} {verdict} ({:.1} s)",
                r.id,
                r.level,
                r.duration_ms as f64 / 1000.0
            );
            for p in &r.problems {
                let _ = writeln!(out, "  {}: {}", p.object, p.problem);
            }
        }
        out
    }
}
