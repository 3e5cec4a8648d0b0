//! The one place that prints results and errors and picks exit codes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use serde::Serialize;
use vigia_core::ports::check::CheckStatus;
use vigia_core::{Envelope, Error, ErrorKind, Outcome, Result};

use crate::args::Cli;

/// How a result reads for a person.
pub trait Human {
    fn human(&self) -> String;
}

/// Prints the result (the envelope with `--json`, else text) and returns the exit code.
pub fn finish<T: Serialize + Human + Outcome>(
    cli: &Cli,
    command: &str,
    result: &Result<T>,
) -> ExitCode {
    if cli.json {
        let envelope = Envelope::from_outcome(command, result);
        print_stdout(&format!("{}\n", envelope.to_json()));
        return ExitCode::from(envelope.status());
    }
    match result {
        Ok(value) => {
            print_stdout(&value.human());
            value
                .failure()
                .map_or(ExitCode::SUCCESS, |err| report_error(&err))
        }
        Err(err) => report_error(err),
    }
}

/// For `health` and `smoke`: the monitoring plugin's exit codes (0 ok, 1 warning, 2 critical, 3
/// unknown; an error before any check ran is 3, its envelope keeping its own kind and code),
/// or with `legacy` the old script's (1 when anything is critical or unknown, else 0).
pub fn finish_plugin<T: Serialize + Human + Outcome>(
    cli: &Cli,
    command: &str,
    result: &Result<T>,
    legacy: bool,
    status: impl Fn(&T) -> CheckStatus,
) -> ExitCode {
    let code = match result.as_ref().map(status) {
        Ok(s) if legacy => u8::from(matches!(s, CheckStatus::Critical | CheckStatus::Unknown)),
        Ok(s) => s.plugin_code(),
        Err(_) if legacy => 1,
        Err(_) => CheckStatus::Unknown.plugin_code(),
    };
    if cli.json {
        let envelope = Envelope::from_outcome(command, result);
        print_stdout(&format!("{}\n", envelope.to_json()));
    } else {
        match result {
            Ok(value) => print_stdout(&value.human()),
            Err(err) => {
                // A monitoring system shows stdout: it must say why there is no result.
                print_stdout(&format!("VIGIA UNKNOWN - {err}\n"));
                report_error(err);
            }
        }
    }
    ExitCode::from(code)
}

fn report_error(err: &Error) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    ExitCode::from(err.kind().code())
}

fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`vigia ... | head`) is not an error worth reporting.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Bad arguments: clap's message on stderr, the envelope on stdout with `--json`, exit 11
/// (3 for `health` and `smoke`, monitoring plugins). `--help` and `--version` print and
/// exit 0.
pub fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    let code = if matches!(subcommand().as_deref(), Some("health" | "smoke")) {
        CheckStatus::Unknown.plugin_code()
    } else {
        ErrorKind::InvalidInput.code()
    };
    if matches!(
        err.kind(),
        Clap::DisplayHelp | Clap::DisplayVersion | Clap::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == Clap::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(code)
        } else {
            ExitCode::SUCCESS
        };
    }
    if std::env::args().any(|a| a == "--json") {
        let message = err
            .kind()
            .as_str()
            .unwrap_or("invalid arguments")
            .to_owned();
        let error = Error::invalid_input(format!("{message}; see `vigia --help`"));
        print_stdout(&format!(
            "{}\n",
            Envelope::failure("vigia", &error).to_json()
        ));
    }
    let _ = err.print();
    ExitCode::from(code)
}

/// The subcommand the process was asked for: the first argument that is neither a flag nor
/// the value of a global flag that takes one.
fn subcommand() -> Option<String> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--config" || text == "--env" {
            args.next();
        } else if !text.starts_with('-') {
            return Some(text.into_owned());
        }
    }
    None
}

/// Logs go to stderr; `-v`/`-q` pick the level, `RUST_LOG` overrides, `NO_COLOR` is respected.
pub fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,vigia={level},vigia_core={level},vigia_backup={level},vigia_cli={level}"
        ))
    });
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

/// A size for people: `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
