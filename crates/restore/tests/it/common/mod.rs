//! vigia-backup's test helpers (store fixtures, the Odoo stack with its backup job), included
//! from its tree so that both crates test against one fixture, and the restore jobs on it.

#![allow(dead_code)]

#[allow(unused_imports)]
#[path = "../../../../backup/tests/it/common/mod.rs"]
mod shared;

use std::path::Path;
use std::sync::Arc;

use vigia_backup::format::BackupId;
use vigia_core::ports::progress::NoProgress;
use vigia_restore::{RestoreCleanup, RestoreJob, RestoreSource};

pub use shared::*;

use odoo::{Stack, target};

/// The restore jobs of a stack: its restores, spool, records and journal live in its keys
/// folder.
pub trait Restores {
    /// A restore of `id` into `target_db`, its filestore under `root/<target_db>`.
    fn restore_job(&self, id: &BackupId, target_db: &str, root: &Path) -> RestoreJob;
    /// A restore of `id` that replaces the live database, the filestore under `root`.
    fn swap_job(&self, id: &BackupId, root: &Path) -> RestoreJob;
    /// `restore --cleanup` of this stack's restores, with `root` as `<data-dir>/filestore`.
    fn cleanup_job(&self, root: &Path, apply: bool) -> RestoreCleanup;
}

impl Restores for Stack {
    fn restore_job(&self, id: &BackupId, target_db: &str, root: &Path) -> RestoreJob {
        RestoreJob {
            access: self.access(true),
            target: target(&self.cluster),
            source: RestoreSource::Backup(id.clone()),
            target_db: Some(target_db.to_owned()),
            confirm: None,
            accept_einvoice_loss: false,
            force_sessions: false,
            neutralize: false,
            base_url: None,
            neutralize_sql: Vec::new(),
            trust_zip: false,
            production: false,
            runtime: Arc::new(vigia_runtime::NoRuntime),
            odoo_url: None,
            health_timeout: vigia_restore::HEALTH_TIMEOUT,
            filestore_root: Some(root.to_path_buf()),
            live_db: "odoo".into(),
            options: vigia_pg::RestoreOptions {
                jobs: 2,
                no_owner: true,
                role: None,
            },
            spool_dir: self.keys.path().join("spool"),
            records_dir: self.keys.path().join("restores"),
            environment: None,
            swap_journal: vigia_restore::swap_journal_path(self.keys.path()),
            state_dir: self.keys.path().to_path_buf(),
            alert_silence: None,
            lock_wait: std::time::Duration::ZERO,
            os_lock_dir: self.job.os_lock_dir.clone(),
            progress: Arc::new(NoProgress),
            cancel: vigia_core::CancelToken::new(),
            dry_run: false,
        }
    }

    fn swap_job(&self, id: &BackupId, root: &Path) -> RestoreJob {
        let mut job = self.restore_job(id, "unused", root);
        job.target_db = None;
        job
    }

    fn cleanup_job(&self, root: &Path, apply: bool) -> RestoreCleanup {
        RestoreCleanup {
            access: self.access(true),
            target: target(&self.cluster),
            live_db: "odoo".into(),
            filestore_root: Some(root.to_path_buf()),
            spool_dir: self.keys.path().join("spool"),
            records_dir: self.keys.path().join("restores"),
            environment: None,
            swap_journal: vigia_restore::swap_journal_path(self.keys.path()),
            state_dir: self.keys.path().to_path_buf(),
            production: false,
            confirm: None,
            apply,
            lock_wait: std::time::Duration::ZERO,
            os_lock_dir: self.job.os_lock_dir.clone(),
        }
    }
}
