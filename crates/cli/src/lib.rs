//! The `vigia` command line. Each command parses its flags into the library's options, calls
//! one library function and renders the result; this crate holds no domain logic.

mod args;
mod commands;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Runs `vigia` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::usage_error(&err),
    };
    output::init_logging(&cli);
    // This process is vigia: a Ctrl-C during a swap waits until the swap is consistent.
    vigia_core::signals::enable(|text| tracing::warn!("{text}"));
    commands::run(&cli)
}
