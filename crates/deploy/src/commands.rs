//! The commands a deploy runs from its config (fetch, build, hooks, the upgrade), judged the
//! same way: done only with exit 0; otherwise an error that says how it ended, where its
//! output is, and the output's last lines.

use std::path::Path;
use std::time::Duration;

use vigia_core::ports::runtime::{OneOff, OneOffExit};
use vigia_core::{CancelToken, Error, ErrorKind, Result};
use vigia_runtime::shell::run_shell_async;

/// What one command is, for its messages and limits.
pub(crate) struct Command<'a> {
    /// `the fetch`, `the pre-hook`.
    pub what: &'a str,
    pub line: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(String, String)>,
    /// Where its output goes (the deploy's folder).
    pub log: &'a Path,
    pub timeout: Duration,
    pub cancel: &'a CancelToken,
    /// Environment variables it must not see (the config's secrets).
    pub hide: Vec<String>,
}

impl Command<'_> {
    /// Runs it with `sh -c`; an error unless it exits 0 (`kind` for a non-zero exit).
    pub async fn run(self, kind: ErrorKind) -> Result<()> {
        let limits = OneOff {
            timeout: self.timeout,
            output: self.log.to_owned(),
            cancel: self.cancel.clone(),
            hide: self.hide,
        };
        let exit = run_shell_async(self.line, self.dir, self.env, &limits).await?;
        judge(self.what, &exit, self.log, self.timeout, kind)
    }
}

/// Ok for exit 0; else how it ended, with the output's last lines.
pub(crate) fn judge(
    what: &str,
    exit: &OneOffExit,
    log: &Path,
    timeout: Duration,
    kind: ErrorKind,
) -> Result<()> {
    if exit.cancelled {
        return Err(Error::new(
            ErrorKind::Cancelled,
            format!("cancelled during {what}, which was killed"),
        ));
    }
    if exit.timed_out {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{what} ran past {} s and was killed; see {}",
                timeout.as_secs(),
                log.display()
            ),
        ));
    }
    if exit.success() {
        return Ok(());
    }
    let how = exit
        .code
        .map_or_else(|| "was killed".to_owned(), |c| format!("exited {c}"));
    Err(Error::new(
        kind,
        format!("{what} {how}; see {}: {}", log.display(), tail(log)),
    ))
}

/// The last three lines a command wrote, on one line, clipped.
pub(crate) fn tail(log: &Path) -> String {
    let lines = vigia_core::disk::tail_lines(log, 64 * 1024, 3).unwrap_or_default();
    let text: String = lines
        .join(" | ")
        .chars()
        .filter(|c| !c.is_control())
        .take(600)
        .collect();
    text
}
