//! End-to-end tests of the `vigia` binary against real servers, one test binary (the crash
//! tests, which need the `failpoints` feature, are tests/crash.rs).

mod common;

mod backup_cli;
mod cli;
mod compose_cli;
mod deploy_cli;
mod durability;
mod health_cli;
mod package;
mod restore_runtime;
