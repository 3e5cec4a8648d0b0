//! Records of restores in progress, `state-dir/restores/<database>.json`: a restore beside
//! the live database (`--target-db NAME`) that fails or is killed leaves a database and a
//! filestore folder named by the user, which `vigia restore --cleanup` finds by its record.
//! The record is written before the database is created and removed when the restore ends
//! well.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRestore {
    pub database: String,
    pub filestore: Option<PathBuf>,
    /// The restoring process; its record is a leftover once it no longer runs.
    pub pid: u32,
}

impl PendingRestore {
    /// Writes the record for `database` and returns its path.
    pub fn record(dir: &Path, database: &str, filestore: Option<&Path>) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let path = dir.join(format!("{database}.json"));
        let record = Self {
            database: database.to_owned(),
            filestore: filestore.map(Path::to_path_buf),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
        std::fs::write(&path, json).map_err(|e| Error::io("write", &path, e))?;
        Ok(path)
    }

    /// Removes a record once its restore ended well.
    pub fn finished(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// The records in `dir` whose process no longer runs, with their paths. Unreadable
    /// records are skipped: a cleanup never guesses what to drop.
    pub fn leftovers(dir: &Path) -> Vec<(PathBuf, Self)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, Self)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let record: Self = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                let running = vigia_core::process::is_running(record.pid);
                (!running).then_some((p, record))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
