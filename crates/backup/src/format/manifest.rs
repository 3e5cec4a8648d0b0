//! `backups/<id>/manifest.age`: what the backup holds, encrypted (it names the files and
//! counts the rows): per-table row counts and module versions read in the dump's snapshot,
//! and the filestore list (sha1 -> object).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    BackupId, BackupIndex, ExtraEntry, FilestoreEntry, FilestoreProblem, NameKey, Problem,
    entries_problem, manifest_key,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format: u32,
    pub id: BackupId,
    pub database: String,
    pub started_at: Timestamp,
    pub vigia_version: String,
    /// The exported snapshot the dump and everything below were read in.
    pub snapshot: String,
    pub server_version_num: u32,
    /// Exact row counts, `schema.table` -> rows.
    pub row_counts: BTreeMap<String, u64>,
    /// Installed modules -> version.
    pub modules: BTreeMap<String, String>,
    pub filestore: Vec<FilestoreEntry>,
    /// Files left out with `--allow-missing-files`.
    pub filestore_problems: Vec<FilestoreProblem>,
    /// Module folder -> sha256 of its code, from `[odoo] addons-paths`.
    #[serde(default)]
    pub addons: BTreeMap<String, String>,
    /// What `extra.age` holds.
    #[serde(default)]
    pub extra: Vec<ExtraEntry>,
    /// The size of the dump before compression: what a restore must spool.
    #[serde(default)]
    pub dump_bytes: u64,
}

/// A manifest's decrypted bytes, authenticated by its mac and checked to be `index`'s backup's,
/// with every filestore entry of Odoo's form for its own sha1.
pub fn open_manifest(
    name_key: &NameKey,
    plain: &[u8],
    index: &BackupIndex,
) -> std::result::Result<BackupManifest, Problem> {
    let key = manifest_key(&index.id);
    let manifest: BackupManifest = name_key
        .open(plain, &key)
        .map_err(|e| Problem::new(&key, e.message()))?;
    if manifest.id != index.id {
        return Err(Problem::new(
            &key,
            format!("it describes backup {}, not {}", manifest.id, index.id),
        ));
    }
    if let Some(problem) = entries_problem(&manifest.filestore) {
        return Err(Problem::new(&key, problem));
    }
    Ok(manifest)
}
