//! The swap journal, `<state-dir>/swap-journal.json`: what a swap renames, written and
//! fsynced (with its folder) before the swap's first statement, and removed only once the
//! swap and the check after it succeeded or the swap was undone. While it exists the live
//! database may be missing or closed, and the aside copy may be the only copy of the live
//! data: the next `vigia restore` (any), `restore --cleanup` or `restore --resume` undoes the
//! swap first (resume.rs), and cleanup drops no aside copy.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, ErrorKind, Result};

use vigia_pg::PgTarget;

/// `<state-dir>/swap-journal.json`.
pub fn swap_journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("swap-journal.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapJournal {
    pub format: u32,
    /// The PostgreSQL cluster, `host:port` as configured.
    pub cluster: String,
    /// The live database before the swap.
    pub live: Database,
    /// The restored copy, swapped in under the live one's name.
    pub restored: Database,
    /// The name the live database takes during the swap.
    pub aside: String,
    pub filestore: Option<Folders>,
    /// Vigia stopped Odoo for the swap: undoing it starts Odoo again.
    pub odoo_stopped: bool,
    /// The process that swapped.
    pub pid: u32,
    pub started_at: jiff::Timestamp,
}

/// A database by name and by oid: the oid follows it through renames, so the undo knows which
/// database is which whatever they are called now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    pub oid: u32,
}

/// The filestore folders of a swap; each one's device and inode tell it apart from a folder
/// that appears under the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folders {
    pub restored: PathBuf,
    pub live: PathBuf,
    pub aside: PathBuf,
    /// Whether the live folder existed before the swap (a first restore may have none).
    pub live_existed: bool,
    pub restored_id: FolderId,
    pub live_id: Option<FolderId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderId {
    pub dev: u64,
    pub ino: u64,
}

impl FolderId {
    /// What is at `path` now, without following a link: None when nothing is there.
    pub fn at(path: &Path) -> Result<Option<Self>> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(Self {
                dev: m.dev(),
                ino: m.ino(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", path, e)),
        }
    }
}

impl SwapJournal {
    pub const FORMAT: u32 = 1;

    /// Writes the journal at `path` durably: a temporary file fsynced, renamed into place,
    /// and the folder fsynced. Refuses to replace a journal already there.
    pub fn write(&self, path: &Path) -> Result<()> {
        if path.exists() {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "{} exists: an interrupted swap is not undone yet; run `vigia restore \
                     --resume`",
                    path.display()
                ),
            ));
        }
        let dir = parent(path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let json = serde_json::to_vec_pretty(self).expect("a journal serializes");
        vigia_core::disk::write_durably(path, &json).map_err(|e| Error::io("write", path, e))
    }

    /// The journal at `path`, None when there is none. A journal that cannot be read is an
    /// error: the next command never guesses what an interrupted swap did.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let unreadable = |why: String| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "the swap journal {} cannot be read ({why}): an interrupted swap may have \
                     left the live database renamed or closed; look at the databases and \
                     filestore folders it names, put them back by hand, then remove it",
                    path.display()
                ),
            )
        };
        let journal: Self =
            serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        if journal.format != Self::FORMAT {
            return Err(unreadable(format!(
                "format {}, this vigia reads {}",
                journal.format,
                Self::FORMAT
            )));
        }
        Ok(Some(journal))
    }

    /// Removes the journal at `path` durably, once the swap is checked or undone.
    pub fn remove(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", path, e));
            }
            _ => {}
        }
        sync_dir(parent(path))
    }

    /// How the journal names a cluster: `host:port` as configured.
    pub fn cluster_of(target: &PgTarget) -> String {
        target.address()
    }

    /// The swap, for messages.
    pub fn describe(&self) -> String {
        format!(
            "the swap of {} (with {}) on {}, started {} by pid {}",
            self.live.name, self.restored.name, self.cluster, self.started_at, self.pid
        )
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> SwapJournal {
        SwapJournal {
            format: SwapJournal::FORMAT,
            cluster: "/run/postgresql:5432".into(),
            live: Database {
                name: "odoo".into(),
                oid: 16_384,
            },
            restored: Database {
                name: "vigia_restore_x".into(),
                oid: 16_500,
            },
            aside: "odoo_pre_restore_x".into(),
            filestore: Some(Folders {
                restored: dir.join("vigia_restore_x"),
                live: dir.join("odoo"),
                aside: dir.join("odoo_pre_restore_x"),
                live_existed: true,
                restored_id: FolderId { dev: 1, ino: 2 },
                live_id: Some(FolderId { dev: 1, ino: 3 }),
            }),
            odoo_stopped: true,
            pid: 42,
            started_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_journal_is_read_back_as_written_and_is_gone_once_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = swap_journal_path(&dir.path().join("state"));
        assert_eq!(SwapJournal::read(&path).unwrap(), None);
        let written = journal(dir.path());
        written.write(&path).unwrap();
        assert_eq!(SwapJournal::read(&path).unwrap(), Some(written.clone()));
        let folder: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(folder.len(), 1, "no temporary file left: {folder:?}");
        SwapJournal::remove(&path).unwrap();
        assert_eq!(SwapJournal::read(&path).unwrap(), None);
        SwapJournal::remove(&path).unwrap();
    }

    #[test]
    fn a_journal_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = swap_journal_path(dir.path());
        journal(dir.path()).write(&path).unwrap();
        let err = journal(dir.path()).write(&path).unwrap_err();
        assert!(err.message().contains("--resume"), "{}", err.message());
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_an_absence() {
        let dir = tempfile::tempdir().unwrap();
        let path = swap_journal_path(dir.path());
        std::fs::write(&path, b"{\"format\": 1, \"cl").unwrap();
        let err = SwapJournal::read(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }
}
