//! `backups/<id>/index.json`: the public list of every object a backup needs. Written last,
//! sealed with the name key: a backup exists only when its index does, and an index that was
//! altered is detected.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::BackupId;
use crate::seal::SealedObject;

pub const FORMAT: u32 = 1;

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
    /// What a restore reads: every object listed.
    pub fn size_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size_bytes).sum()
    }
}
