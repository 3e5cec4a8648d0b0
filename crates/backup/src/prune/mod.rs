//! `vigia prune`: retention as a plan, then applied under the store lock (DESIGN.md "Data
//! flows: Prune"). Never deletes the newest backup, nor the newest whose latest full or drill
//! verification passed; filestore objects only when no kept backup references them and they
//! are older than the grace period; sweeps index-less `backups/<id>/` of dead runs.

mod policy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use vigia_core::config::RetentionConfig;
use vigia_core::ports::clock::{Clock, SystemClock};
use vigia_core::ports::store::{ObjectMeta, ObjectStore};
use vigia_core::{Config, Error, Outcome, Result};

pub use policy::{Reasons, keep};

use crate::access::StoreAccess;
use crate::catalog::Catalog;
use crate::dead_runs::index_less;
use crate::format::{BackupId, index_key};
use crate::format::{VerificationLog, VerifyLevel};
use crate::lock::{LockRequest, StoreLock, os_lock_dir};
use crate::requests::PruneRequest;

pub struct PruneJob {
    pub access: StoreAccess,
    pub retention: RetentionConfig,
    /// Days, weeks and months are counted in this zone (`timezone`).
    pub timezone: TimeZone,
    /// Unreferenced objects and dead runs' files younger than this are never deleted.
    pub grace_period: Duration,
    /// Plan only: nothing is deleted and the store lock is not taken.
    pub dry_run: bool,
    pub lock_wait: Duration,
    /// The local store's directory, locked with an OS lock too; None for S3.
    pub os_lock_dir: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PruneJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PruneJob")
            .field("store", &self.access.store.location())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// The `data` of `vigia prune --json`. In a dry run the counts are what applying would delete.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub applied: bool,
    pub keep: Vec<BackupId>,
    pub delete: Vec<BackupId>,
    /// Store objects deleted: the deleted backups' files, their verification records, swept
    /// dead runs' files and unreferenced filestore objects.
    pub objects_deleted: u64,
    pub bytes_freed: u64,
    /// Why each kept backup is kept.
    pub reasons: Reasons,
    /// Index-less `backups/<id>/` left by runs that died, older than the grace period.
    pub swept: Vec<String>,
    /// Unreferenced filestore objects still inside the grace period.
    pub objects_in_grace: u64,
    pub notes: Vec<String>,
}

impl Outcome for PruneReport {}

impl PruneJob {
    pub async fn from_config(config: &Config, request: PruneRequest) -> Result<Self> {
        let dry_run = request.dry_run;
        let timezone = TimeZone::get(&config.timezone).map_err(|e| {
            Error::config(format!(
                "`{}` is not a known time zone: {e}",
                config.timezone
            ))
            .with_key("timezone")
        })?;
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            retention: config.backup.retention.clone(),
            timezone,
            grace_period: config.backup.grace_period.0,
            dry_run,
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
            clock: Arc::new(SystemClock),
        })
    }

    pub async fn run(&self) -> Result<PruneReport> {
        if self.dry_run {
            return Ok(self.plan().await?.report);
        }
        let lock = StoreLock::acquire(
            Arc::clone(&self.access.store),
            &self.access.name_key,
            &LockRequest::new("prune", self.lock_wait, self.os_lock_dir.as_deref()),
        )
        .await?;
        let result = async {
            lock.wait_for_readers(self.lock_wait).await?;
            let plan = self.plan().await?;
            self.apply(plan, &lock).await
        }
        .await;
        let released = lock.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    /// The plan, from what the store holds now and the clock: reads only.
    pub async fn plan(&self) -> Result<PrunePlan> {
        let store = self.access.store.as_ref();
        let name_key = &self.access.name_key;
        let catalog = Catalog::read(store, name_key).await?;
        let log = VerificationLog::read(store).await?;
        let backup_files = store.list("backups/").await?;
        let objects = store.list("objects/").await?;
        let records = store.list("verifications/").await?;
        let cutoff = self.cutoff()?;

        let mut verified = None;
        for index in catalog.backups.iter().rev() {
            let latest = log
                .latest(store, name_key, &index.id, VerifyLevel::Full)
                .await?;
            if latest.is_some_and(|r| r.ok) {
                verified = Some(index.id.clone());
                break;
            }
        }
        let started: Vec<(BackupId, Timestamp)> = catalog
            .backups
            .iter()
            .map(|b| (b.id.clone(), b.started_at))
            .collect();
        let reasons = keep(&started, &self.retention, &self.timezone, verified.as_ref());
        let (keep, delete): (Vec<BackupId>, Vec<BackupId>) = started
            .into_iter()
            .map(|(id, _)| id)
            .partition(|id| reasons.contains_key(id));

        let mut deletions = Vec::new();
        let mut swept = Vec::new();
        let mut objects_in_grace = 0;
        let in_dir = |id: &str| {
            let prefix = format!("backups/{id}/");
            backup_files
                .iter()
                .filter(move |m| m.key.starts_with(&prefix))
                .cloned()
        };
        let records_of = |id: &str| {
            let prefix = format!("verifications/{id}/");
            records
                .iter()
                .filter(move |m| m.key.starts_with(&prefix))
                .cloned()
        };
        for id in &delete {
            // The index first: a prune killed halfway leaves a dead run's files, never half a backup.
            let index = index_key(id);
            let mut files: Vec<ObjectMeta> = in_dir(id.as_str()).collect();
            files.sort_by_key(|m| m.key != index);
            deletions.extend(files);
            deletions.extend(records_of(id.as_str()));
        }
        for (id, files) in index_less(&backup_files) {
            if !files.iter().all(|m| is_older(m, cutoff)) {
                continue;
            }
            swept.push(format!("backups/{id}/"));
            deletions.extend(files);
            deletions.extend(records_of(&id));
        }

        let mut notes = Vec::new();
        if catalog.damaged.is_empty() {
            let referenced: HashSet<&str> = catalog
                .backups
                .iter()
                .filter(|b| reasons.contains_key(&b.id))
                .flat_map(|b| b.objects.iter().map(|o| o.key.as_str()))
                .collect();
            for meta in objects
                .iter()
                .filter(|m| !referenced.contains(m.key.as_str()))
            {
                if is_older(meta, cutoff) {
                    deletions.push(meta.clone());
                } else {
                    objects_in_grace += 1;
                }
            }
        } else {
            notes.push(format!(
                "no filestore object was collected: {} damaged indexes may reference objects \
                 (see `vigia backup list`; move or repair them first)",
                catalog.damaged.len()
            ));
        }
        let report = PruneReport {
            applied: false,
            keep,
            delete,
            objects_deleted: deletions.len() as u64,
            bytes_freed: deletions.iter().map(|m| m.size_bytes).sum(),
            reasons,
            swept,
            objects_in_grace,
            notes,
        };
        Ok(PrunePlan { deletions, report })
    }

    async fn apply(&self, plan: PrunePlan, lock: &StoreLock) -> Result<PruneReport> {
        let store: &dyn ObjectStore = self.access.store.as_ref();
        let mut seen = BTreeSet::new();
        for meta in &plan.deletions {
            if seen.insert(meta.key.as_str()) {
                lock.ensure_held().await?;
                store.delete(&meta.key).await?;
            }
        }
        tracing::info!(
            "prune: deleted {} backups and {} store objects",
            plan.report.delete.len(),
            seen.len()
        );
        Ok(PruneReport {
            applied: true,
            ..plan.report
        })
    }

    fn cutoff(&self) -> Result<Timestamp> {
        let grace = jiff::SignedDuration::try_from(self.grace_period).map_err(|e| {
            Error::config(format!("grace-period: {e}")).with_key("backup.grace-period")
        })?;
        self.clock.now().checked_sub(grace).map_err(|e| {
            Error::config(format!("grace-period: {e}")).with_key("backup.grace-period")
        })
    }
}

/// An object whose age is unknown is treated as young: never deleted by age.
fn is_older(meta: &ObjectMeta, cutoff: Timestamp) -> bool {
    meta.modified.is_some_and(|m| m < cutoff)
}

/// What a prune will delete, made before anything is (`prune --dry-run` reports it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrunePlan {
    /// In order: each deleted backup's index before its other files (a prune killed halfway
    /// leaves a dead run's files, never half a backup). A key may appear twice; it is deleted once.
    pub deletions: Vec<ObjectMeta>,
    /// What applying the plan reports (`applied` false until it is).
    pub report: PruneReport,
}
