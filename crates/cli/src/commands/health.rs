//! `vigia health [--only NAME,..] [--legacy-exit]` and `vigia smoke [--url URL]
//! [--legacy-exit]`: the monitoring plugin's first line, then a table; exit 0 ok, 1 warning,
//! 2 critical, 3 unknown (or, with `--legacy-exit`, 1 when anything is critical or unknown).

use std::fmt::Write;
use std::io::IsTerminal;
use std::process::ExitCode;

use vigia_core::Result;
use vigia_core::ports::check::CheckStatus;
use vigia_health::{HealthReport, HealthRequest, HealthRun, SmokeRequest, plugin_line};

use super::{load_config, runtime};
use crate::args::{Cli, HealthArgs, SmokeArgs};
use crate::output::{self, Human};

pub fn run(cli: &Cli, args: &HealthArgs) -> ExitCode {
    let report = check(cli, args);
    output::finish_plugin(cli, "health", &report, args.legacy_exit, |r| {
        r.plugin_status()
    })
}

fn check(cli: &Cli, args: &HealthArgs) -> Result<HealthReport> {
    let request = HealthRequest {
        only: args.only.clone(),
        alert: args.alert,
    };
    let config = load_config(cli)?;
    execute(&HealthRun::from_config(&config, &request)?)
}

pub fn smoke(cli: &Cli, args: &SmokeArgs) -> ExitCode {
    let report = (|| {
        let config = load_config(cli)?;
        let request = SmokeRequest {
            url: args.url.clone(),
        };
        execute(&HealthRun::smoke(&config, &request)?)
    })();
    output::finish_plugin(cli, "smoke", &report, args.legacy_exit, |r| r.status)
}

fn execute(run: &HealthRun) -> Result<HealthReport> {
    let runtime = runtime()?;
    let report = runtime.block_on(run.run());
    // A check abandoned at its timeout may still be blocked in a read (a hung mount):
    // never wait for it.
    runtime.shutdown_background();
    Ok(report)
}

impl Human for HealthReport {
    fn human(&self) -> String {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut out = format!("{}\n", plugin_line(self));
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let status = format!("{:<8}", c.status.as_str());
            let status = if colour {
                format!("\x1b[{}m{status}\x1b[0m", ansi(c.status))
            } else {
                status
            };
            let _ = writeln!(
                out,
                "{:<width$}  {status}  {:>6} ms  {}",
                c.name, c.duration_ms, c.summary
            );
        }
        for a in &self.alerts {
            for c in &a.channels {
                let _ = match &c.error {
                    None => writeln!(
                        out,
                        "alert: {} {} sent by {}",
                        a.check,
                        a.event.as_str(),
                        c.channel
                    ),
                    Some(e) => writeln!(
                        out,
                        "alert: {} {} NOT sent by {} (retried next run): {e}",
                        a.check,
                        a.event.as_str(),
                        c.channel
                    ),
                };
            }
        }
        if let Some(s) = &self.silenced {
            let _ = writeln!(
                out,
                "alerts silenced until {} ({}, by {})",
                s.until.strftime("%Y-%m-%d %H:%M UTC"),
                s.reason,
                s.by
            );
        }
        if let Some(e) = &self.alert_error {
            let _ = writeln!(out, "ALERTING FAILED: {e}");
        }
        out
    }
}

fn ansi(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Skipped => "2",
        CheckStatus::Ok => "32",
        CheckStatus::Warning => "33",
        CheckStatus::Unknown => "35",
        CheckStatus::Critical => "31",
    }
}
