//! `pg_dump -Fc -Z0` as a blocking reader: the password through the environment (never the
//! command line), low CPU and I/O priority, killed with its parent, and a failure reported as
//! a read error at the end of the stream (so the object that would hold it is never stored).

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use super::PgTarget;

#[derive(Debug)]
pub struct PgDump {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    finished: bool,
}

impl PgDump {
    /// Starts `pg_dump` of `database` (in `snapshot` when given). Call it on the thread that
    /// reads the dump: the child dies when that thread does.
    pub fn spawn(target: &PgTarget, database: &str, snapshot: Option<&str>) -> io::Result<Self> {
        let program = target.program("pg_dump");
        let mut command = low_priority(&program);
        command
            .args(["--format=custom", "--compress=0", "--no-password"])
            .arg(format!("--host={}", target.host))
            .arg(format!("--port={}", target.port))
            .arg(format!("--username={}", target.user))
            .arg(format!("--dbname={database}"))
            .env("PGAPPNAME", "vigia-backup")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(snapshot) = snapshot {
            command.arg(format!("--snapshot={snapshot}"));
        }
        if let Some(password) = &target.password {
            command.env("PGPASSWORD", password.expose());
        }
        vigia_core::process::die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}; install the Debian package postgresql-client or set [postgres] bin-dir", program.display()),
            )
        })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
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
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(io::Error::other(format!(
            "pg_dump exited with {status}: {}",
            tail.join(" | ")
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

impl Drop for PgDump {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `nice -n 10 ionice -c 2 -n 7 PROGRAM` where nice and ionice exist: a backup must not slow
/// down the invoices being issued meanwhile.
fn low_priority(program: &Path) -> Command {
    let have = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    let mut command = if have("nice") {
        Command::new("nice")
    } else {
        return Command::new(program);
    };
    command.args(["-n", "10"]);
    if have("ionice") {
        command.args(["ionice", "-c", "2", "-n", "7"]);
    }
    command.arg(program);
    command
}
