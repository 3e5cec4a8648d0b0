//! `pg_restore`, the one way a dump goes back into PostgreSQL: from a stream on its stdin
//! (`--list` to check an archive, or a sequential restore of one archive or of one section)
//! or from a seekable `-Fc` file with `-j` (a restore). Every error is fatal.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use vigia_core::{Error, ErrorKind, Result};

use crate::PgTarget;
use crate::client::{collect_stderr, tail};

/// What to do with the archive.
#[derive(Debug, Clone)]
pub enum RestoreMode {
    /// `pg_restore --list`: the archive's table of contents must read.
    List,
    /// Restore `section` into this existing database; every error is fatal.
    Into {
        database: String,
        section: Section,
        options: RestoreOptions,
    },
}

/// Which part of an archive `pg_restore` restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    All,
    /// Tables, types, functions: what the rows go into.
    PreData,
    /// The rows (and sequence values, large objects).
    Data,
    /// Indexes, constraints, triggers: built once the rows are in.
    PostData,
}

impl Section {
    fn arg(self) -> Option<&'static str> {
        match self {
            Self::All => None,
            Self::PreData => Some("--section=pre-data"),
            Self::Data => Some("--section=data"),
            Self::PostData => Some("--section=post-data"),
        }
    }
}

/// Feeds `dump` to `pg_restore`; Ok(stdout) when it exited 0. `--list` reads `dump` to its end
/// even when pg_restore stopped reading early (it needs only the header), so the caller's
/// checksum covers every byte; a restore stops feeding a pg_restore that stopped reading (it
/// failed). Blocking, and the child dies with the calling thread.
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
        RestoreMode::Into {
            database,
            section,
            options,
        } => restore_args(&mut command, database, *section, options),
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
            // A restore that stopped reading failed: its exit status says why, and the rest
            // of the stream would only be decrypted for nothing.
            if matches!(mode, RestoreMode::Into { .. }) {
                break;
            }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `--jobs`, for a seekable archive (a stream is restored by one process).
    pub jobs: u32,
    pub no_owner: bool,
    /// `--role`: restore as this role (production into staging under another user).
    pub role: Option<String>,
}

impl RestoreOptions {
    /// What a drill or a copy of a dump vigia does not trust restores with: no owners, no
    /// role switch.
    pub fn untrusted(jobs: u32) -> Self {
        Self {
            jobs,
            no_owner: true,
            role: None,
        }
    }
}

fn restore_args(command: &mut Command, database: &str, section: Section, options: &RestoreOptions) {
    command
        .args(["--exit-on-error", "--no-privileges"])
        .arg(format!("--dbname={database}"));
    command.args(section.arg());
    if options.no_owner {
        command.arg("--no-owner");
    }
    if let Some(role) = &options.role {
        command.arg(format!("--role={role}"));
    }
}

/// A seekable `-Fc` archive for [`pg_restore_file`].
#[derive(Debug, Clone, Copy)]
pub enum Archive<'a> {
    /// A file pg_restore opens by its name.
    Path(&'a Path),
    /// An open file (a memfd: the bytes never touch a disk), given to pg_restore as its stdin
    /// and opened as `/dev/stdin`, which each of its `-j` workers reopens with its own offset.
    Open(&'a File),
}

/// Restores `section` of `archive` into the existing `database`, with `--jobs`. Blocking.
pub fn pg_restore_file(
    target: &PgTarget,
    database: &str,
    archive: Archive<'_>,
    section: Section,
    options: &RestoreOptions,
) -> Result<()> {
    let mut command = target.client_command("pg_restore", "vigia-restore");
    restore_args(&mut command, database, section, options);
    command
        .arg(format!("--jobs={}", options.jobs.max(1)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match archive {
        Archive::Path(path) => {
            command.stdin(Stdio::null()).arg(path);
        }
        Archive::Open(file) => {
            let stdin = file
                .try_clone()
                .map_err(|e| Error::io("duplicate", Path::new("the archive"), e))?;
            command.stdin(stdin).arg("/dev/stdin");
        }
    }
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
