//! Records of what vigia makes beside the live database, in `state-dir/restores/`: a
//! restore's new database, filestore folder and throwaway role, the live copy a swap keeps
//! aside, a drill's scratch database. `vigia restore --cleanup` removes only what such a
//! record names, and only the records of this environment on this cluster (a staging cleanup
//! never touches production's drill in progress). A record is written before what it names
//! is made and removed when the restore or drill ends well; an aside copy's record stays
//! until a cleanup removes the copy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, Result};

use vigia_pg::PgTarget;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyKind {
    /// A restore's new database (and folder, and role) before it is used.
    Restore,
    /// The live database and folder a swap moved aside.
    Aside,
    /// A drill's scratch database (and role).
    Drill,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyRecord {
    pub kind: CopyKind,
    /// The environment (`--env`) whose command made it; null for the base config.
    pub environment: Option<String>,
    /// The PostgreSQL server, `host:port`.
    pub cluster: String,
    pub database: String,
    pub filestore: Option<PathBuf>,
    /// The throwaway role that ran its SQL, while it may still exist.
    pub role: Option<String>,
    /// The process that made it: a restore or drill record names an abandoned copy once it is gone.
    pub pid: u32,
}

/// The records of one environment on one cluster.
#[derive(Debug, Clone)]
pub struct CopyRecords {
    dir: PathBuf,
    environment: Option<String>,
    cluster: String,
}

impl CopyRecords {
    pub fn new(dir: &Path, environment: Option<&str>, target: &PgTarget) -> Self {
        Self {
            dir: dir.to_path_buf(),
            environment: environment.map(str::to_owned),
            cluster: target.address(),
        }
    }

    /// Writes (durably) the record of `database` and returns its path.
    pub fn write(
        &self,
        kind: CopyKind,
        database: &str,
        filestore: Option<&Path>,
        role: Option<&str>,
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let env = self.environment.as_deref().unwrap_or("base");
        // Names are checked database names and environment names: no path separator.
        let path = self.dir.join(format!("{env}.{database}.json"));
        let record = CopyRecord {
            kind,
            environment: self.environment.clone(),
            cluster: self.cluster.clone(),
            database: database.to_owned(),
            filestore: filestore.map(Path::to_path_buf),
            role: role.map(str::to_owned),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
        vigia_core::disk::write_durably(&path, &json).map_err(|e| Error::io("write", &path, e))?;
        Ok(path)
    }

    /// Removes a record once what it names is in use or gone.
    pub fn finished(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// This environment's records on this cluster that name what is left: aside copies, and
    /// restores and drills whose process no longer runs. Unreadable records are skipped: a
    /// cleanup never guesses what to drop.
    pub fn abandoned(&self) -> Vec<(PathBuf, CopyRecord)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, CopyRecord)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let record: CopyRecord = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                let ours = record.environment == self.environment && record.cluster == self.cluster;
                let done =
                    record.kind == CopyKind::Aside || !vigia_core::process::is_running(record.pid);
                (ours && done).then_some((p, record))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
