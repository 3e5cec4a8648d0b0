//! `pg_restore -j` from a spooled dump file into a new database: every error fatal.

use std::path::Path;
use std::process::Stdio;

use vigia_core::{Error, ErrorKind, Result};

use super::PgTarget;
use super::client::{collect_stderr, tail};

/// How `pg_restore` restores: `[restore]` in config, overridable by flags.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub jobs: u32,
    pub no_owner: bool,
    /// `--role`: restore as this role (production into staging under another user).
    pub role: Option<String>,
}

/// Restores `dump` (a `-Fc` file) into the existing, empty `database`. Blocking.
pub fn pg_restore_file(
    target: &PgTarget,
    database: &str,
    dump: &Path,
    options: &RestoreOptions,
) -> Result<()> {
    let mut command = target.client_command("pg_restore", "vigia-restore");
    command
        .args(["--exit-on-error", "--no-privileges"])
        .arg(format!("--jobs={}", options.jobs.max(1)))
        .arg(format!("--dbname={database}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if options.no_owner {
        command.arg("--no-owner");
    }
    if let Some(role) = &options.role {
        command.arg(format!("--role={role}"));
    }
    command.arg(dump);
    let mut child = target
        .spawn_client(&mut command, "pg_restore")
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let stderr = collect_stderr(&mut child);
    vigia_core::failpoint::hit("restore.pg_restore")?;
    let status = child
        .wait()
        .map_err(|e| Error::io("wait for", Path::new("pg_restore"), e))?;
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Database,
        format!(
            "pg_restore into {database} failed ({status}): {}",
            tail(&stderr, 5)
        ),
    ))
}
