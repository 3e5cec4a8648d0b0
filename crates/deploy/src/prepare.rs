//! Before anything stops: a release that is not there is fetched (`[deploy] fetch-command`,
//! filling a folder in `root/.fetching/` that is renamed into `releases/<ref>` only once the
//! command succeeds, so a half fetch is never a release; under compose, making the image),
//! and the new release is built (`build-command`, in its folder). Either failing refuses the deploy with the tail of its
//! output; the running stack is untouched.

use std::path::Path;
use std::time::Duration;

use vigia_core::process::shell_quote;
use vigia_core::{CancelToken, Error, ErrorKind, Result};
use vigia_runtime::releases::{ReleaseRef, Releases};

use crate::commands::Command;

/// How a fetch runs: its command, the deploy's id and folder, and the limits.
#[derive(Debug)]
pub struct Fetch<'a> {
    pub command: Option<&'a str>,
    pub id: &'a str,
    pub root: &'a Path,
    pub log: &'a Path,
    pub cancel: &'a CancelToken,
    pub hide: Vec<String>,
}

/// A fetch or a build that takes longer is killed.
pub(crate) const PREPARE_TIMEOUT: Duration = Duration::from_mins(30);

/// Fetches `release` with `command` ({ref}, {dir}); its output goes to the fetch's log.
pub(crate) async fn fetch(
    releases: &Releases,
    release: &ReleaseRef,
    command: &str,
    how: &Fetch<'_>,
) -> Result<()> {
    let dir = releases.fetching_dir(release, how.id);
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    let line = command
        .replace("{ref}", &shell_quote(release.as_str()))
        .replace("{dir}", &shell_quote(&dir.to_string_lossy()));
    let fetched = fetch_command(&line, parent, release, how)
        .await
        .and_then(|()| releases.adopt(&dir, release));
    if fetched.is_err() {
        remove_leftover(&dir);
    }
    fetched
}

/// Makes image `release` with `command` ({ref}), run in `[deploy] root`.
pub(crate) async fn make_image(release: &ReleaseRef, command: &str, how: &Fetch<'_>) -> Result<()> {
    let line = command.replace("{ref}", &shell_quote(release.as_str()));
    fetch_command(&line, how.root, release, how).await
}

async fn fetch_command(
    line: &str,
    dir: &Path,
    release: &ReleaseRef,
    how: &Fetch<'_>,
) -> Result<()> {
    Command {
        what: "the fetch ([deploy] fetch-command)",
        line,
        dir,
        env: vec![("VIGIA_RELEASE".to_owned(), release.to_string())],
        log: how.log,
        timeout: PREPARE_TIMEOUT,
        cancel: how.cancel,
        hide: how.hide.clone(),
    }
    .run(ErrorKind::InvalidInput)
    .await
}

/// Builds `release` in its folder with `command`; its output goes to `log`.
pub(crate) async fn build(
    releases: &Releases,
    release: &ReleaseRef,
    command: &str,
    log: &Path,
    cancel: &CancelToken,
    hide: Vec<String>,
) -> Result<()> {
    Command {
        what: "the build ([deploy] build-command)",
        line: command,
        dir: &releases.dir(release),
        env: vec![("VIGIA_RELEASE".to_owned(), release.to_string())],
        log,
        timeout: PREPARE_TIMEOUT,
        cancel,
        hide,
    }
    .run(ErrorKind::InvalidInput)
    .await
}

/// What a failed fetch left in its own folder (never followed: a link is removed itself).
fn remove_leftover(dir: &Path) {
    let removed = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(_) => Ok(()),
    };
    if let Err(e) = removed {
        tracing::warn!("{} was left behind by a failed fetch: {e}", dir.display());
    }
}
