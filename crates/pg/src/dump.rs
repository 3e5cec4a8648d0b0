//! `pg_dump -Fc -Z0` as a blocking reader, a failure reported as a read error at the end of
//! the stream (so the object that would hold it is never stored).

use std::io::{self, Read};
use std::process::{ChildStdout, Stdio};
use std::thread::JoinHandle;

use crate::PgTarget;
use crate::client::{ClientChild, collect_stderr, tail};

#[derive(Debug)]
pub struct PgDump {
    /// Killed and reaped if the dump is dropped before its end.
    child: ClientChild,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    finished: bool,
}

impl PgDump {
    /// Starts `pg_dump` of `database` (in `snapshot` when given). Call it on the thread that
    /// reads the dump: the child dies when that thread does.
    pub fn spawn(target: &PgTarget, database: &str, snapshot: Option<&str>) -> io::Result<Self> {
        let mut command = target.client_command("pg_dump", "vigia-backup");
        command
            .args(["--format=custom", "--compress=0"])
            .arg(format!("--dbname={database}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(snapshot) = snapshot {
            command.arg(format!("--snapshot={snapshot}"));
        }
        let mut child = target.spawn_client(&mut command, "pg_dump")?;
        let stdout = child.get_mut().stdout.take().expect("piped stdout");
        let stderr = collect_stderr(&mut child);
        Ok(Self {
            child,
            stdout,
            stderr: Some(stderr),
            finished: false,
        })
    }

    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        let status = self.child.wait()?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "pg_dump exited with {status}: {}",
            tail(&stderr, 5)
        )))
    }
}

impl Read for PgDump {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish()?;
        }
        Ok(n)
    }
}
