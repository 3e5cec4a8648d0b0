//! What the fuzz targets share: a name key, the backup the store key names, and sealing.

use vigia_backup::format::{BackupIndex, FORMAT, NameKey};
use vigia_core::config::Secret;

/// The backup every fuzzed index and manifest is read as.
pub const ID: &str = "20261128T021530Z-k3f9";

pub fn name_key() -> NameKey {
    NameKey::from_secret(&Secret::new("07".repeat(32))).expect("64 hex characters")
}

/// `ID`'s index, as `open_manifest` is given it.
pub fn index() -> BackupIndex {
    let at = "2026-11-28T02:15:30Z".parse().expect("a timestamp");
    BackupIndex {
        format: FORMAT,
        id: ID.parse().expect("a backup id"),
        database: "odoo".into(),
        started_at: at,
        finished_at: at,
        vigia_version: "0.1.0".into(),
        objects: Vec::new(),
    }
}

/// `data` sealed with `key` when it is a JSON object: what a name-key holder can write, so
/// the fuzzer reaches the parsing past the mac check.
pub fn sealed(key: &NameKey, data: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    key.seal(&value).ok()
}
