//! `pg_dump -Fc -Z0` as a blocking reader, a failure reported as a read error at the end of
//! the stream (so the object that would hold it is never stored): the whole database, or one
//! part of it (the DDL, or the rows of some tables) for a backup in parts.

use std::io::{self, Read};
use std::process::{ChildStdout, Stdio};
use std::thread::JoinHandle;

use crate::client::{ClientChild, collect_stderr, tail};
use crate::{PgTarget, TableName};

/// What one `pg_dump` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpScope {
    /// The whole database in one archive.
    Whole,
    /// The DDL: the pre-data and post-data sections, no rows.
    Schema,
    /// The rows of these tables.
    Rows(Vec<TableName>),
    /// The rows of every table but these, with the sequences' values and large objects.
    RowsExcept(Vec<TableName>),
}

impl DumpScope {
    fn args(&self) -> Vec<String> {
        let tables = |flag: &str, tables: &[TableName]| {
            tables
                .iter()
                .map(|t| format!("--{flag}={}", t.pattern()))
                .collect::<Vec<_>>()
        };
        match self {
            Self::Whole => Vec::new(),
            Self::Schema => vec!["--section=pre-data".into(), "--section=post-data".into()],
            Self::Rows(list) => [vec!["--section=data".to_owned()], tables("table", list)].concat(),
            Self::RowsExcept(list) => [
                vec!["--section=data".to_owned()],
                tables("exclude-table", list),
            ]
            .concat(),
        }
    }
}

#[derive(Debug)]
pub struct PgDump {
    /// Killed and reaped if the dump is dropped before its end.
    child: ClientChild,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    finished: bool,
}

impl PgDump {
    /// Starts `pg_dump` of `scope` in `database` (in `snapshot` when given). Call it on the
    /// thread that reads the dump: the child dies when that thread does.
    pub fn spawn(
        target: &PgTarget,
        database: &str,
        snapshot: Option<&str>,
        scope: &DumpScope,
    ) -> io::Result<Self> {
        let mut command = target.client_command("pg_dump", "vigia-backup");
        command
            .args(["--format=custom", "--compress=0"])
            .args(scope.args())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_names_its_section_and_tables_as_literal_patterns() {
        let odd = TableName::new("public", "a\"b.*");
        assert_eq!(DumpScope::Whole.args(), Vec::<String>::new());
        assert_eq!(
            DumpScope::Schema.args(),
            ["--section=pre-data", "--section=post-data"]
        );
        assert_eq!(
            DumpScope::Rows(vec![odd.clone()]).args(),
            ["--section=data", r#"--table="public"."a""b.*""#]
        );
        assert_eq!(
            DumpScope::RowsExcept(vec![odd]).args(),
            ["--section=data", r#"--exclude-table="public"."a""b.*""#]
        );
    }
}
