//! `backups/<id>/manifest.age`: what the backup holds, encrypted (it names the files and
//! counts the rows): per-table row counts and module versions read in the dump's snapshot,
//! and the filestore list (sha1 -> object).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::BackupId;
use crate::extra::ExtraEntry;
use crate::filestore::{FilestoreEntry, FilestoreProblem};

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
