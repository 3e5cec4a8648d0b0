//! `backups/<id>/index.json`: the public list of every object a backup needs. Written last,
//! sealed with the name key: a backup exists only when its index does, and an index that was
//! altered is detected.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::BackupId;

/// The format this vigia writes by default (`[backup] format`).
pub const FORMAT: u32 = super::FORMAT_PARTS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupIndex {
    pub format: u32,
    pub id: BackupId,
    pub database: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub vigia_version: String,
    /// Its own files (dump, manifest) and every `objects/` key it references.
    pub objects: Vec<SealedObject>,
}

impl BackupIndex {
    /// What a restore reads: every object listed (at most `u64::MAX`: the sizes are the
    /// index's word).
    pub fn size_bytes(&self) -> u64 {
        self.objects
            .iter()
            .fold(0, |total: u64, o| total.saturating_add(o.size_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by review during the fuzzing of issue 10 (the fuzzer did not reach it): the sizes
    /// come from the index, and `backup list` summed them with an overflowing `sum`.
    #[test]
    fn sizes_that_add_up_past_2_64_do_not_overflow() {
        let at: Timestamp = "2026-11-28T02:15:30Z".parse().unwrap();
        let object = SealedObject {
            key: "objects/a".into(),
            size_bytes: 1 << 63,
            sha256: String::new(),
            plain_bytes: 0,
        };
        let index = BackupIndex {
            format: FORMAT,
            id: BackupId::new(at),
            database: "odoo".into(),
            started_at: at,
            finished_at: at,
            vigia_version: "0.1.0".into(),
            objects: vec![object.clone(), object],
        };
        assert_eq!(index.size_bytes(), u64::MAX);
    }
}

/// One object as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SealedObject {
    pub key: String,
    /// Bytes stored (encrypted).
    pub size_bytes: u64,
    /// sha256 of the stored bytes, hex.
    pub sha256: String,
    /// Bytes before compression and encryption.
    #[serde(skip)]
    pub plain_bytes: u64,
}
