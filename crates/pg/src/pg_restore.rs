//! `pg_restore`, the one way a dump goes back into PostgreSQL: from a stream on its stdin
//! (`--list` to check an archive, or a sequential restore into the drill's scratch database)
//! or from a spooled `-Fc` file with `-j` (a restore). Every error is fatal.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Stdio;

use vigia_core::{Error, ErrorKind, Result};

use crate::PgTarget;
use crate::client::{collect_stderr, tail};

/// What to do with the archive.
#[derive(Debug, Clone)]
pub enum RestoreMode {
    /// `pg_restore --list`: the archive's table of contents must read.
    List,
    /// Restore into this (existing, empty) database; every error is fatal.
    Into { database: String },
}

/// Feeds `dump` to `pg_restore`; Ok(stdout) when it exited 0. Reads `dump` to its end even
/// when pg_restore stopped reading early (`--list` needs only the header), so the caller's
/// checksum covers every byte. Blocking, and the child dies with the calling thread.
pub fn pg_restore_stream(
    target: &PgTarget,
    mode: &RestoreMode,
    dump: &mut dyn Read,
) -> io::Result<String> {
    let mut command = target.client_command("pg_restore", "vigia-verify");
    match mode {
        RestoreMode::List => {
            command.arg("--list");
        }
        RestoreMode::Into { database } => {
            command
                .args(["--exit-on-error", "--no-owner", "--no-privileges"])
                .arg(format!("--dbname={database}"));
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = target.spawn_client(&mut command, "pg_restore")?;
    let stderr = collect_stderr(&mut child);
    let mut stdout = child.get_mut().stdout.take().expect("piped stdout");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut stdin = child.get_mut().stdin.take().expect("piped stdin");
    let mut buf = vec![0u8; 256 * 1024];
    let mut child_reading = true;
    loop {
        let n = dump.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if child_reading && let Err(e) = stdin.write_all(&buf[..n]) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(e);
            }
            child_reading = false;
        }
    }
    drop(stdin);
    let status = child.wait()?;
    let stderr = stderr.join().unwrap_or_default();
    let stdout = stdout.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(io::Error::other(format!(
            "pg_restore exited with {status}: {}",
            tail(&stderr, 5)
        )))
    }
}

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
