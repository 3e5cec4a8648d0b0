//! `vigia prune [--dry-run]`.

use std::fmt::Write;

use vigia_backup::{PruneJob, PruneReport, PruneRequest};
use vigia_core::Result;

use super::{load_config, runtime};
use crate::args::{Cli, PruneArgs};
use crate::output::{Human, bytes};

pub fn run(cli: &Cli, args: &PruneArgs) -> Result<PruneReport> {
    let config = load_config(cli)?;
    runtime()?.block_on(async {
        PruneJob::from_config(
            &config,
            PruneRequest {
                dry_run: args.dry_run,
            },
        )
        .await?
        .run()
        .await
    })
}

impl Human for PruneReport {
    fn human(&self) -> String {
        let mut out = String::new();
        for id in &self.keep {
            let why = self
                .reasons
                .get(id)
                .map(|r| r.join(", "))
                .unwrap_or_default();
            let _ = writeln!(out, "keep   {id}  ({why})");
        }
        let verb = if self.applied { "deleted" } else { "delete" };
        for id in &self.delete {
            let _ = writeln!(out, "{verb} {id}");
        }
        for dir in &self.swept {
            let _ = writeln!(out, "swept  {dir} (left by a run that died)");
        }
        let _ = writeln!(
            out,
            "{} {} store objects, {}; {} unreferenced objects wait for the grace period{}",
            if self.applied {
                "Deleted"
            } else {
                "Would delete"
            },
            self.objects_deleted,
            bytes(self.bytes_freed),
            self.objects_in_grace,
            if self.applied {
                ""
            } else {
                " (dry run: nothing deleted)"
            }
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}
