//! `vigia restore --cleanup [--apply]`: what restores leave on purpose (the live database and
//! filestore kept aside by a swap) and by accident (the copy, folder and throwaway role of a
//! restore or drill that was killed or failed; spool files), found only through this
//! environment's records on this cluster (`copy_records`), never by a name that looks like
//! vigia's. Listed first; removed only with `--apply`, under the store lock, in production
//! only with `--confirm <db>`, and never an aside copy while the live database is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vigia_core::ports::database::Database as _;

use serde::{Deserialize, Serialize};
use vigia_core::{Config, Error, Outcome, Result};

use vigia_backup::StoreAccess;
use vigia_backup::{CopyKind, CopyRecords};
use vigia_backup::{LockRequest, StoreLock, os_lock_dir};
use vigia_pg::{PgAdmin, PgTarget, THROWAWAY_PREFIX, drop_abandoned_role, role_exists};

#[derive(Debug)]
pub struct RestoreCleanup {
    pub access: StoreAccess,
    pub target: PgTarget,
    pub live_db: String,
    /// `<data-dir>/filestore`.
    pub filestore_root: Option<PathBuf>,
    pub spool_dir: PathBuf,
    /// Records of what restores make; those of processes gone name what they abandoned.
    pub records_dir: PathBuf,
    pub environment: Option<String>,
    /// `<state-dir>/swap-journal.json`: an interrupted swap is undone first.
    pub swap_journal: PathBuf,
    /// Where the stack lock that undo takes lives.
    pub state_dir: PathBuf,
    pub production: bool,
    pub confirm: Option<String>,
    pub apply: bool,
    pub lock_wait: Duration,
    pub os_lock_dir: Option<PathBuf>,
}

/// The `data` of `vigia restore --cleanup --json`.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    pub applied: bool,
    pub databases: Vec<String>,
    pub filestores: Vec<PathBuf>,
    /// Throwaway roles a killed restore or drill left.
    pub roles: Vec<String>,
    pub spool_files: Vec<PathBuf>,
}

impl Outcome for CleanupReport {}

/// `vigia restore --cleanup [--apply] [--confirm DB]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanupRequest {
    /// Remove what is listed; without it, only list.
    pub apply: bool,
    /// In production, removing copies kept aside needs the live database's name.
    pub confirm: Option<String>,
}

impl RestoreCleanup {
    pub async fn from_config(config: &Config, request: CleanupRequest) -> Result<Self> {
        let CleanupRequest { apply, confirm } = request;
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            target: PgTarget::from_config(config)?,
            live_db: config.odoo.database.clone(),
            filestore_root: config.odoo.data_dir.as_ref().map(|d| d.join("filestore")),
            spool_dir: config.state_dir.join("spool"),
            records_dir: config.state_dir.join("restores"),
            environment: config.environment.clone(),
            swap_journal: super::swap_journal_path(&config.state_dir),
            state_dir: config.state_dir.clone(),
            production: config.production,
            confirm,
            apply,
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
        })
    }

    pub async fn run(&self) -> Result<CleanupReport> {
        super::SwapRecovery::for_cleanup(self).run().await?;
        if self.apply && self.production && self.confirm.as_deref() != Some(self.live_db.as_str()) {
            return Err(Error::invalid_input(format!(
                "this environment is production: removing restore leftovers needs --confirm {}",
                self.live_db
            )));
        }
        // Under the lock, a restore in progress cannot lose its copy to a cleanup.
        let lock = if self.apply {
            Some(
                StoreLock::acquire(
                    Arc::clone(&self.access.store),
                    &self.access.name_key,
                    &LockRequest::new(
                        "restore cleanup",
                        self.lock_wait,
                        self.os_lock_dir.as_deref(),
                    ),
                )
                .await?,
            )
        } else {
            None
        };
        let result = self.list_and_apply(lock.as_ref()).await;
        if let Some(lock) = lock {
            lock.release().await?;
        }
        result
    }

    async fn list_and_apply(&self, lock: Option<&StoreLock>) -> Result<CleanupReport> {
        let admin = PgAdmin::connect(&self.target).await?;
        let existing: BTreeSet<String> = admin.list_databases().await?.into_iter().collect();
        let records =
            CopyRecords::new(&self.records_dir, self.environment.as_deref(), &self.target)
                .abandoned();
        let asides = records.iter().filter(|(_, r)| r.kind == CopyKind::Aside);
        if self.apply && !existing.contains(&self.live_db) && asides.clone().next().is_some() {
            return Err(Error::invalid_input(format!(
                "the live database {} is missing, so the copies kept aside ({}) may hold the \
                 only copy of its data: nothing was removed. Finish or undo the interrupted \
                 swap first (`vigia restore --resume`), or rename the right copy back by hand",
                self.live_db,
                asides
                    .map(|(_, r)| r.database.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut databases: Vec<String> = records
            .iter()
            .map(|(_, r)| r.database.clone())
            .filter(|db| *db != self.live_db && existing.contains(db))
            .collect();
        databases.sort();
        databases.dedup();
        let mut filestores: Vec<PathBuf> = records
            .iter()
            .filter_map(|(_, r)| self.abandoned_folder(r.filestore.as_deref()?))
            .collect();
        filestores.sort();
        filestores.dedup();
        let mut roles = Vec::new();
        for role in records.iter().filter_map(|(_, r)| r.role.as_deref()) {
            if role.starts_with(THROWAWAY_PREFIX) && role_exists(&self.target, role).await? {
                roles.push(role.to_owned());
            }
        }
        // A restore holds a lock on its spool file (another environment's may share the
        // state dir): only unlocked ones were abandoned.
        let spool_files: Vec<PathBuf> = entries(&self.spool_dir)
            .into_iter()
            .filter(|f| std::fs::File::open(f).is_ok_and(|file| file.try_lock().is_ok()))
            .collect();
        if let Some(lock) = lock {
            lock.ensure_held().await?;
        }
        if self.apply {
            for name in &databases {
                admin.drop(name).await?;
            }
            // A role owns nothing once its database is gone.
            for role in &roles {
                drop_abandoned_role(&self.target, role).await?;
            }
            for dir in &filestores {
                std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
            }
            for file in &spool_files {
                std::fs::remove_file(file).map_err(|e| Error::io("remove", file, e))?;
            }
            for (path, _) in &records {
                CopyRecords::finished(path)?;
            }
        }
        Ok(CleanupReport {
            applied: self.apply,
            databases,
            filestores,
            roles,
            spool_files,
        })
    }

    /// A recorded folder as cleanup may remove it: a real directory (not a link) directly
    /// under the filestore root, not the live one; canonical, so that `..` or a link in the
    /// record cannot name another folder. None otherwise.
    fn abandoned_folder(&self, dir: &Path) -> Option<PathBuf> {
        let root = self.filestore_root.as_deref()?.canonicalize().ok()?;
        if !std::fs::symlink_metadata(dir).ok()?.is_dir() {
            return None;
        }
        let canonical = dir.canonicalize().ok()?;
        let under_root = canonical.parent() == Some(root.as_path());
        (under_root && canonical != root.join(&self.live_db)).then_some(canonical)
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}
