//! Loads a Vigia config from Rust and prints the envelope `vigia config check --json` prints.
//!
//!     cargo run --example config_check -- vigia.toml [ENV]

use std::path::PathBuf;
use std::process::ExitCode;

use vigia::core::{ConfigSource, Envelope};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "vigia.toml".to_owned()));
    let env = args.next();
    let result =
        ConfigSource::from_file(&path).and_then(|source| source.check(env.as_deref(), false));
    let envelope = Envelope::from_result("config check", &result);
    #[allow(clippy::print_stdout)]
    {
        println!("{}", envelope.to_json());
    }
    ExitCode::from(envelope.status())
}
