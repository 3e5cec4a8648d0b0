//! What the store holds and how it is named (DESIGN.md "Store layout and ids").

pub mod db_names;
mod dump_objects;
mod entries;
mod id;
mod index;
mod manifest;
mod name_key;
mod verification;

pub use dump_objects::{
    DumpObjects, FORMAT_ONE_ARCHIVE, FORMAT_PARTS, data_key, dump_key, schema_key,
};
pub use entries::{ExtraEntry, FilestoreEntry, FilestoreProblem};
pub(crate) use entries::{entries_problem, name_some};
pub use id::{BackupId, compact_utc, parse_compact_utc};
pub use index::{BackupIndex, FORMAT, SealedObject};
pub use manifest::{BackupManifest, count_differences, open_manifest};
pub use name_key::{NameKey, canonical_json};
pub use verification::{Problem, VerificationLog, VerificationRecord, VerifyLevel};

/// `backups/<id>/index.json`: public, written last; a backup exists only when it does.
pub fn index_key(id: &BackupId) -> String {
    format!("backups/{id}/index.json")
}

/// `backups/<id>/manifest.age`: encrypted row counts, modules, filestore list.
pub fn manifest_key(id: &BackupId) -> String {
    format!("backups/{id}/manifest.age")
}

/// `backups/<id>/extra.age`: encrypted certificates and config bundle.
pub fn extra_key(id: &BackupId) -> String {
    format!("backups/{id}/extra.age")
}

/// `objects/<name>`: one encrypted filestore file, shared by every backup that has it.
pub fn object_key(name: &str) -> String {
    format!("objects/{name}")
}

/// `verifications/<id>/<compact time>.json`.
pub fn verification_key(id: &BackupId, at: jiff::Timestamp) -> String {
    format!("verifications/{id}/{}.json", compact_utc(at))
}

pub const LOCK_KEY: &str = "locks/store.json";
pub const NAME_KEY_KEY: &str = "keys/name-key.age";
