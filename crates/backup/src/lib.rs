//! Vigia's backups: the object stores (local directory, S3) behind the `ObjectStore` port,
//! the store's format (ids, keys, the name key and the MACs of its JSON files), and sealed
//! objects (zstd + age, streamed with bounded memory).

mod access;
mod addons;
mod backup;
mod catalog;
mod copy_records;
#[cfg(feature = "demo")]
mod demo;
mod extra;
mod filestore;
mod filestore_read;
pub mod format;
mod keys;
mod leftovers;
mod lock;
mod metrics;
pub mod pg;
mod prune;
mod restore;
mod seal;
mod store;
mod verify;

pub use access::StoreAccess;
pub use backup::{BackupJob, BackupReport};
pub use catalog::{BackupDetails, BackupList, BackupSummary, Catalog, DamagedIndex, Verified};
pub use copy_records::{CopyKind, CopyRecord, CopyRecords};
#[cfg(feature = "demo")]
pub use demo::{DemoReport, run_demo};
pub use extra::{ExtraFile, ExtraSource};
pub use filestore::{FilestoreBackup, FilestoreReport};
pub use format::{
    ExtraEntry, FilestoreEntry, FilestoreProblem, Problem, SealedObject, VerificationLog,
    VerificationRecord, VerifyLevel,
};
pub use keys::{Identity, Recipients};
pub use lock::{LockRecord, LockRequest, ReadLock, StoreLock};
pub use metrics::{BACKUP_METRICS_FILE, VERIFY_METRICS_FILE};
pub use prune::{PruneJob, PruneReport, Reasons};
pub use restore::{
    Aside, CleanupReport, HEALTH_TIMEOUT, NeutralizeReport, OdooZipInfo, Phase, Recovered,
    RestoreCleanup, RestoreJob, RestoreReport, RestoreRequest, RestoreSource, ResumeReport,
    SwapRecovery, swap_journal_path,
};
pub use seal::{ZSTD_LEVEL, open_sealed, put_sealed, read_back};
pub use store::{LocalStore, PART_SIZE, S3Options, S3Store, open_store};
pub use verify::{Selection, VerifyJob, VerifyReport, VerifyResult};

/// The readers of untrusted input (an Odoo zip, a store's index and manifest), as the real
/// code calls them, for the fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::catalog::open_index;
    pub use crate::format::open_manifest;
    pub use crate::restore::{NewFolder, copy_restricted, extract_filestore};
}
