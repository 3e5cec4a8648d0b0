//! The stack lock: one change to the running stack at a time (a restore's swap now; deploys
//! and rollbacks take it too). An OS lock on `state-dir/locks/stack.json`, which holds who
//! has it: a second taker fails at once (`locked`, 19) naming the owner, pid, host and since.
//! The kernel drops the lock when its holder dies; the next taker finds the dead holder's
//! record, takes over and warns.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, ErrorKind, Result};

/// Who holds the lock, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// What holds it: `vigia restore (swap into odoo)`, `vigia deploy <id>`.
    pub owner: String,
    pub pid: u32,
    pub host: String,
    pub since: jiff::Timestamp,
}

/// The lock, held until dropped.
#[derive(Debug)]
pub struct StackLock {
    file: std::fs::File,
    path: PathBuf,
}

impl StackLock {
    /// `state-dir/locks/stack.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("locks").join("stack.json")
    }

    /// Takes the lock for `owner`, or fails at once naming its holder. Blocking: call it off
    /// the async threads.
    pub fn acquire(state_dir: &Path, owner: &str) -> Result<Self> {
        let path = Self::path(state_dir);
        let Some(mut file) = vigia_core::disk::lock_exclusive(&path, std::time::Duration::ZERO)?
        else {
            return Err(held(&path));
        };
        let io = |action: &str, e| Error::io(action, &path, e);
        let previous = read_record(&path).map_err(|e| io("read", e))?;
        if let Ok(dead) = serde_json::from_str::<Holder>(&previous) {
            tracing::warn!(
                "took over the stack lock from {} (pid {} on {}, since {}), which died holding it",
                dead.owner,
                dead.pid,
                dead.host,
                dead.since
            );
        }
        let holder = Holder {
            owner: owner.to_owned(),
            pid: std::process::id(),
            host: vigia_core::process::hostname(),
            since: jiff::Timestamp::now(),
        };
        let text = serde_json::to_vec(&holder).map_err(|e| Error::internal(e.to_string()))?;
        file.set_len(0).map_err(|e| io("truncate", e))?;
        file.rewind().map_err(|e| io("rewind", e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write", e))?;
        Ok(Self { file, path })
    }
}

impl Drop for StackLock {
    /// An empty file says the last holder let go; the kernel drops the lock with the file.
    fn drop(&mut self) {
        if let Err(e) = self.file.set_len(0).and_then(|()| self.file.sync_all()) {
            tracing::warn!(
                "{}: the stack lock's record stays: {e}",
                self.path.display()
            );
        }
    }
}

/// The record at `path`, never through a link planted at its name.
fn read_record(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The error for a lock a live process holds, naming it from its record.
fn held(path: &Path) -> Error {
    let holder = read_record(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Holder>(&text).ok());
    let who = holder.map_or_else(
        || "another vigia process (it has not recorded itself yet)".to_owned(),
        |h| {
            format!(
                "{} (pid {} on {}, since {})",
                h.owner,
                h.pid,
                h.host,
                h.since.strftime("%Y-%m-%d %H:%M:%S UTC")
            )
        },
    );
    Error::new(
        ErrorKind::Locked,
        format!("the stack is being changed by {who}: wait until it is done"),
    )
    .with_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_fails_at_once_naming_the_holder_and_gets_it_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = StackLock::acquire(dir.path(), "vigia restore (swap into odoo)").unwrap();
        let started = std::time::Instant::now();
        let err = StackLock::acquire(dir.path(), "vigia deploy x").unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "at once"
        );
        assert_eq!(err.kind(), ErrorKind::Locked);
        let pid = std::process::id().to_string();
        assert!(
            err.message()
                .contains("vigia restore (swap into odoo) (pid ")
                && err.message().contains(&pid),
            "{err}"
        );
        drop(first);
        let text = std::fs::read_to_string(StackLock::path(dir.path())).unwrap();
        assert!(text.is_empty(), "released: {text}");
        let again = StackLock::acquire(dir.path(), "vigia deploy x").unwrap();
        let holder: Holder =
            serde_json::from_str(&std::fs::read_to_string(StackLock::path(dir.path())).unwrap())
                .unwrap();
        assert_eq!(holder.owner, "vigia deploy x");
        drop(again);
    }

    /// A holder killed with the lock: the kernel drops the OS lock, and its record is taken
    /// over (here the record is written as a dead process leaves it).
    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = StackLock::path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let dead = Holder {
            owner: "vigia deploy old".into(),
            pid: 999_999,
            host: "erp".into(),
            since: jiff::Timestamp::UNIX_EPOCH,
        };
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let lock = StackLock::acquire(dir.path(), "vigia restore").unwrap();
        let holder: Holder =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(holder.owner, "vigia restore");
        drop(lock);
    }

    #[test]
    fn a_link_planted_at_its_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let path = StackLock::path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(StackLock::acquire(dir.path(), "vigia restore").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
