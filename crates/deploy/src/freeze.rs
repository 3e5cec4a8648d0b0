//! `vigia deploy lock -m TEXT` / `vigia deploy unlock`: deploys frozen on purpose (a month
//! end, Hacienda's maintenance window), recorded in `state-dir/locks/deploy-freeze.json`
//! with who froze them, when and why. A deploy refuses (`locked`, 19) while it is there; a
//! rollback does not (undoing a deploy is never frozen).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, ErrorKind, Outcome, Result};

/// What the freeze file holds (and `vigia deploy lock --json` answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub message: String,
    /// `user@host`.
    pub by: String,
    pub since: jiff::Timestamp,
}

impl Outcome for Freeze {}

/// What `vigia deploy unlock` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfrozen {
    /// The freeze ended; None: deploys were not frozen.
    pub ended: Option<Freeze>,
}

impl Outcome for Unfrozen {}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("locks").join("deploy-freeze.json")
}

/// Freezes deploys with `message` (a freeze in force is replaced: its message changes).
pub fn freeze(state_dir: &Path, message: &str, by: &str) -> Result<Freeze> {
    let message = message.trim();
    if message.is_empty() {
        return Err(Error::invalid_input(
            "a freeze needs a message (-m TEXT): whoever wants to deploy reads it",
        ));
    }
    let freeze = Freeze {
        message: message
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect(),
        by: by.to_owned(),
        since: jiff::Timestamp::now(),
    };
    let file = path(state_dir);
    let dir = file.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let text = serde_json::to_vec_pretty(&freeze).map_err(|e| Error::internal(e.to_string()))?;
    vigia_core::disk::write_durably(&file, &text).map_err(|e| Error::io("write", &file, e))?;
    Ok(freeze)
}

/// Ends the freeze.
pub fn unfreeze(state_dir: &Path) -> Result<Unfrozen> {
    let file = path(state_dir);
    let ended = read(state_dir)?;
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(Unfrozen { ended }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Unfrozen { ended: None }),
        Err(e) => Err(Error::io("remove", &file, e)),
    }
}

/// The freeze in force. A file that is not one still freezes (whoever wrote it meant to).
pub fn read(state_dir: &Path) -> Result<Option<Freeze>> {
    let file = path(state_dir);
    match std::fs::read(&file) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Freeze {
                message: format!("{} is there but unreadable", file.display()),
                by: "unknown".to_owned(),
                since: jiff::Timestamp::UNIX_EPOCH,
            }
        }))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &file, e)),
    }
}

/// `locked` (19) while deploys are frozen.
pub fn refuse_if_frozen(state_dir: &Path) -> Result<()> {
    match read(state_dir)? {
        None => Ok(()),
        Some(f) => Err(Error::new(
            ErrorKind::Locked,
            format!(
                "deploys are frozen by {} since {}: {}. `vigia deploy unlock` ends the freeze",
                f.by,
                f.since.strftime("%Y-%m-%d %H:%M UTC"),
                f.message
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_refuses_deploys_until_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        refuse_if_frozen(dir.path()).unwrap();
        assert!(freeze(dir.path(), "  ", "ana@erp").is_err());
        freeze(dir.path(), "month-end close\u{1b}[2J", "ana@erp").unwrap();
        let err = refuse_if_frozen(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.message().contains("by ana@erp"), "{err}");
        assert!(err.message().contains("month-end close[2J"), "{err}");
        let ended = unfreeze(dir.path()).unwrap().ended.unwrap();
        assert_eq!(ended.message, "month-end close[2J");
        refuse_if_frozen(dir.path()).unwrap();
        assert_eq!(unfreeze(dir.path()).unwrap().ended, None);
        std::fs::write(path(dir.path()), "garbage").unwrap();
        assert!(refuse_if_frozen(dir.path()).is_err(), "still frozen");
    }
}
