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
    /// The size of the dump before compression (format 2: every stream's): what a format 1
    /// restore must spool, and what no data stream may decompress past.
    #[serde(default)]
    pub dump_bytes: u64,
    /// Format 2: the size of `schema.age` before compression, which a restore holds in memory.
    #[serde(default)]
    pub schema_bytes: u64,
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

/// How a restored database's exact row counts differ from `expected` (the manifest's, or the
/// copy's before a swap, named by `source`): one line per table, whether it is missing on
/// either side or counts differently. Restore and drill judge by this one rule.
pub fn count_differences(
    restored: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
    source: &str,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (table, &want) in expected {
        match restored.get(table) {
            None => differences.push(format!("table {table} is not in the restored database")),
            Some(&got) if got != want => differences.push(format!(
                "table {table}: {got} rows restored, {source} says {want}"
            )),
            Some(_) => {}
        }
    }
    for table in restored.keys().filter(|t| !expected.contains_key(*t)) {
        differences.push(format!(
            "table {table} was restored but {source} does not list it"
        ));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_missing_on_either_side_is_a_difference() {
        let counts = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
        };
        let expected = counts(&[("a", 1), ("b", 2), ("c", 3)]);
        let restored = counts(&[("a", 1), ("b", 5), ("d", 0)]);
        assert_eq!(
            count_differences(&restored, &expected, "the manifest"),
            [
                "table b: 5 rows restored, the manifest says 2",
                "table c is not in the restored database",
                "table d was restored but the manifest does not list it",
            ]
        );
        assert!(count_differences(&expected, &expected, "x").is_empty());
    }
}
