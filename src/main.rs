//! The `vigia` binary: all of it lives in vigia-cli.

fn main() -> std::process::ExitCode {
    vigia_cli::main()
}
