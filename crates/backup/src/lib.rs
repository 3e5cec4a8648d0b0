//! Vigia's backups, verification, prune and restore, as a library: `BackupJob`, `VerifyJob`,
//! `PruneJob`, `RestoreJob` (each `from_config`, then `run`), over the object stores (a local
//! directory, S3) behind the `ObjectStore` port, under the store lock (`StoreLock`, and a
//! verify's `ReadLock`). `format` is the store's layout: ids, keys, the name key that seals the
//! JSON documents with a mac, the index, the manifest and the verification records; objects
//! are sealed with zstd + age and streamed with bounded memory.
//!
//! A store and a sealed document, without a server:
//!
//! ```
//! use vigia_backup::LocalStore;
//! use vigia_backup::format::NameKey;
//! use vigia_core::config::Secret;
//! use vigia_core::ports::store::ObjectStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = LocalStore::open(&dir.path().join("store"))?;
//! let name_key = NameKey::from_secret(&Secret::new("ab".repeat(32)))?;
//! let sealed = name_key.seal(&serde_json::json!({"hello": "store"}))?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     store.put_bytes("notes/hello.json", sealed.clone().into()).await?;
//!     let read = store.get_bytes("notes/hello.json").await?;
//!     let doc: serde_json::Value = name_key.open(&read, "notes/hello.json")?;
//!     assert_eq!(doc["hello"], "store");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod access;
mod backup;
mod catalog;
mod copy_records;
mod dead_runs;
#[cfg(feature = "demo")]
mod demo;
mod dump_plan;
mod extra;
mod filestore;
pub mod format;
mod freshness;
mod keys;
mod lock;
mod metrics;

mod proven_dump;
mod prune;
mod requests;
mod seal;
mod store;
mod verify;

pub use access::StoreAccess;
pub use backup::{BackupJob, BackupReport};
pub use catalog::{
    BackupDetails, BackupList, BackupSummary, Catalog, DamagedIndex, Verified, read_manifest,
};
pub use copy_records::{CopyKind, CopyRecord, CopyRecords};
#[cfg(feature = "demo")]
pub use demo::{DemoReport, run_demo};
pub use dump_plan::DumpLayout;
pub use extra::{ExtraFile, ExtraSource};
pub use filestore::{FilestoreBackup, FilestoreReport};
pub use format::{
    ExtraEntry, FilestoreEntry, FilestoreProblem, Problem, SealedObject, VerificationLog,
    VerificationRecord, VerifyLevel,
};
pub use freshness::Freshness;
pub use keys::{Identity, Recipients};
pub use lock::{LockRecord, LockRequest, ReadLock, StoreLock, os_lock_dir};
pub use metrics::{BACKUP_METRICS_FILE, VERIFY_METRICS_FILE};
pub use proven_dump::ProvenDump;
pub use prune::{PruneJob, PrunePlan, PruneReport, Reasons};
pub use requests::{BackupRequest, PruneRequest, Selection, VerifyRequest};
pub use seal::{ZSTD_LEVEL, open_sealed, put_sealed, read_back};
pub use store::{LocalStore, PART_SIZE, S3Options, S3Store, open_store};
pub use verify::{VerifyJob, VerifyReport, VerifyResult, quick_problems};

/// The readers of a store's untrusted index and manifest, as the real code calls them, for
/// the fuzz targets in `fuzz/` (the Odoo zip's readers are vigia-odoo's public API).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::catalog::open_index;
    pub use crate::format::open_manifest;
}
