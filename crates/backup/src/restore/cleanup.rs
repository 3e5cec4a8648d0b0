//! `vigia restore --cleanup [--apply]`: what restores leave on purpose (the live database and
//! filestore kept aside by a swap) and by accident (the copy of a restore or drill that was
//! killed or failed, found by its name or by its record in `state-dir/restores`; spool
//! files). Listed first; removed only with `--apply`, under the store lock, and
//! in production only with `--confirm <db>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vigia_core::{Config, Error, Outcome, Result};

use crate::access::StoreAccess;
use crate::lock::{StoreLock, os_lock_dir};
use crate::pg::{PgTarget, db_error, quote_ident};
use crate::restore::pending::PendingRestore;

#[derive(Debug)]
pub struct RestoreCleanup {
    pub access: StoreAccess,
    pub target: PgTarget,
    pub live_db: String,
    /// `<data-dir>/filestore`.
    pub filestore_root: Option<PathBuf>,
    pub spool_dir: PathBuf,
    /// Records of restores in progress; those of processes gone name leftovers.
    pub pending_dir: PathBuf,
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
    pub spool_files: Vec<PathBuf>,
}

impl Outcome for CleanupReport {}

impl RestoreCleanup {
    pub async fn from_config(
        config: &Config,
        apply: bool,
        confirm: Option<String>,
    ) -> Result<Self> {
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            target: PgTarget::from_config(config)?,
            live_db: config.odoo.database.clone(),
            filestore_root: config.odoo.data_dir.as_ref().map(|d| d.join("filestore")),
            spool_dir: config.state_dir.join("spool"),
            pending_dir: config.state_dir.join("restores"),
            production: config.production,
            confirm,
            apply,
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
        })
    }

    /// Names that are vigia's to remove: copies kept aside for this database, and the
    /// scratch databases of restores and drills.
    fn is_leftover(&self, name: &str) -> bool {
        name.starts_with(&format!("{}_pre_restore_", self.live_db))
            || name.starts_with("vigia_restore_")
            || name.starts_with("vigia_drill_")
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
                    "restore cleanup",
                    self.lock_wait,
                    self.os_lock_dir.as_deref(),
                )
                .await?,
            )
        } else {
            None
        };
        let result = self.list_and_apply().await;
        if let Some(lock) = lock {
            lock.release(&self.access.name_key).await?;
        }
        result
    }

    async fn list_and_apply(&self) -> Result<CleanupReport> {
        let client = self.target.connect("postgres").await?;
        let existing: Vec<String> = client
            .query("SELECT datname FROM pg_database ORDER BY 1", &[])
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let records = PendingRestore::leftovers(&self.pending_dir);
        let recorded =
            |name: &str| name != self.live_db && records.iter().any(|(_, r)| r.database == name);
        let databases: Vec<String> = existing
            .into_iter()
            .filter(|name| self.is_leftover(name) || recorded(name))
            .collect();
        let mut filestores: Vec<PathBuf> = match &self.filestore_root {
            Some(root) => entries(root)
                .into_iter()
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| self.is_leftover(&n.to_string_lossy()))
                })
                .collect(),
            None => Vec::new(),
        };
        // A record's folder is removed only where restores put folders, never the live one.
        for dir in records.iter().filter_map(|(_, r)| r.filestore.as_ref()) {
            let root = self.filestore_root.as_deref();
            let live = root.map(|r| r.join(&self.live_db));
            if dir.is_dir()
                && root.is_some()
                && dir.parent() == root
                && live.as_ref() != Some(dir)
                && !filestores.contains(dir)
            {
                filestores.push(dir.clone());
            }
        }
        let spool_files = entries(&self.spool_dir);
        if self.apply {
            for name in &databases {
                let quoted = quote_ident(name);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                    .await
                    .map_err(|e| db_error(&format!("cannot drop {quoted}"), &e))?;
            }
            for dir in &filestores {
                std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
            }
            for file in &spool_files {
                std::fs::remove_file(file).map_err(|e| Error::io("remove", file, e))?;
            }
            for (path, _) in &records {
                PendingRestore::finished(path)?;
            }
        }
        Ok(CleanupReport {
            applied: self.apply,
            databases,
            filestores,
            spool_files,
        })
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}
