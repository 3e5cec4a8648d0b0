//! `vigia demo [--dir DIR]`.

use std::fmt::Write;

use vigia_backup::{DemoReport, run_demo};
use vigia_core::{CancelToken, Result};

use super::runtime;
use crate::args::{Cli, DemoArgs};
use crate::output::{Human, bytes};
use crate::progress;

pub fn run(cli: &Cli, args: &DemoArgs) -> Result<DemoReport> {
    runtime()?.block_on(run_demo(
        args.dir.as_deref(),
        progress::for_cli(cli),
        CancelToken::new(),
    ))
}

impl Human for DemoReport {
    fn human(&self) -> String {
        let (first, second) = (&self.first_backup, &self.second_backup);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "1. Backup {} of a throwaway Odoo-shaped database: {} stored in {:.1} s (dump, \
             manifest and {} filestore files, each compressed and encrypted).",
            first.id,
            bytes(first.size_bytes),
            first.duration_ms as f64 / 1000.0,
            first.filestore.new_files
        );
        let verdict = if self.drill.ok { "passed" } else { "FAILED" };
        let _ = writeln!(
            out,
            "2. Drill {verdict}: every object read back and checked, the dump restored into a \
             scratch database and its row counts compared with the manifest ({:.1} s).",
            self.drill.duration_ms as f64 / 1000.0
        );
        for p in &self.drill.problems {
            let _ = writeln!(out, "   {}: {}", p.object, p.problem);
        }
        let _ = writeln!(
            out,
            "3. Second backup {}: {} new filestore files, {} of filestore uploaded.",
            second.id,
            second.filestore.new_files,
            bytes(second.filestore.new_bytes)
        );
        let _ = writeln!(
            out,
            "\nConfig and keys: {}\nStore: {}\nThe PostgreSQL server is gone; the backups stay. Try:",
            self.dir.display(),
            self.store.display()
        );
        let binary = this_binary();
        for command in &self.next {
            let command = command
                .strip_prefix("vigia ")
                .map_or_else(|| command.clone(), |rest| format!("{binary} {rest}"));
            let _ = writeln!(out, "  {command}");
        }
        out
    }
}

/// How to run this binary again: `vigia` when that name on PATH is this binary, else its
/// path (scripts/demo runs target/debug/vigia, which nothing put on PATH).
fn this_binary() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "vigia".to_owned();
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("vigia"))
            .find(|p| p.is_file())
    });
    match on_path.and_then(|p| std::fs::canonicalize(p).ok()) {
        Some(found) if found == me => "vigia".to_owned(),
        _ => me.display().to_string(),
    }
}
