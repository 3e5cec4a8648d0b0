//! `vigia restore ID --target-db NAME`: a backup restored beside the live database, which is
//! never touched (DESIGN.md "Data flows: Restore", without the swap). Every object is checked
//! before anything is created; the dump is decrypted to a spool file (free space checked
//! first; `pg_restore -j` cannot read a pipe) and restored into a new database; the filestore
//! goes to a fresh `filestore/NAME` with every sha1 checked; then ANALYZE, and the restored
//! row counts must equal the manifest's.

mod files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use vigia_core::config::{StoreKind, check_database_name};
use vigia_core::ports::progress::{NoProgress, Progress, ProgressEvent};
use vigia_core::{CancelToken, Config, Error, ErrorKind, Outcome, Result};

use crate::access::StoreAccess;
use crate::catalog::Catalog;
use crate::format::{BackupId, BackupIndex, BackupManifest, dump_key};
use crate::keys::Identity;
use crate::lock::StoreLock;
use crate::pg::{PgTarget, RestoreOptions, db_error, pg_restore_file, row_counts};
use crate::seal::read_back;
use crate::verify::{quick_problems, read_manifest};

/// When the manifest predates `dump_bytes`: spool room as a multiple of the stored dump.
const SPOOL_ESTIMATE_FACTOR: u64 = 6;

pub struct RestoreJob {
    pub access: StoreAccess,
    pub target: PgTarget,
    pub id: BackupId,
    /// The new database; it must not exist.
    pub target_db: String,
    /// `<data-dir>/filestore`; None when `[odoo] data-dir` is not set.
    pub filestore_root: Option<PathBuf>,
    /// The live database, whose filestore folder lends its owner and mode.
    pub live_db: String,
    pub options: RestoreOptions,
    /// Where the dump is decrypted for `pg_restore -j` (`state-dir/spool`).
    pub spool_dir: PathBuf,
    pub lock_wait: Duration,
    pub os_lock_dir: Option<PathBuf>,
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
}

impl std::fmt::Debug for RestoreJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreJob")
            .field("id", &self.id)
            .field("target_db", &self.target_db)
            .finish_non_exhaustive()
    }
}

/// The `data` of `vigia restore --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub id: BackupId,
    pub target_database: String,
    /// False: restored beside the live database.
    pub swapped: bool,
    /// What the swap moved aside; null when nothing was swapped.
    pub aside: Option<serde_json::Value>,
    /// The restored filestore folder, when the backup has files.
    pub filestore: Option<PathBuf>,
    pub phases: Vec<Phase>,
}

impl Outcome for RestoreReport {}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub duration_ms: u64,
}

impl RestoreJob {
    pub async fn from_config(config: &Config, id: BackupId, target_db: String) -> Result<Self> {
        let restore = &config.restore;
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            target: PgTarget::from_config(config)?,
            id,
            target_db,
            filestore_root: config.odoo.data_dir.as_ref().map(|d| d.join("filestore")),
            live_db: config.odoo.database.clone(),
            options: RestoreOptions {
                jobs: restore.jobs,
                no_owner: restore.no_owner,
                role: Some(restore.role.clone()).filter(|r| !r.is_empty()),
            },
            spool_dir: config.state_dir.join("spool"),
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: match config.backup.store {
                Some(StoreKind::Local) => config.backup.path.clone(),
                _ => None,
            },
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
        })
    }

    /// Restores under the store lock (a prune must not delete what is being read).
    pub async fn run(&self) -> Result<RestoreReport> {
        let identity = self.access.identity()?.ok_or_else(|| {
            Error::config(
                "a restore reads the backup's data and needs the private key: set \
                 [backup.encryption] identity",
            )
            .with_key("backup.encryption.identity")
        })?;
        check_database_name(&self.target_db)
            .map_err(|e| Error::invalid_input(format!("--target-db: {e}")))?;
        let lock = StoreLock::acquire(
            Arc::clone(&self.access.store),
            &self.access.name_key,
            "restore",
            self.lock_wait,
            self.os_lock_dir.as_deref(),
        )
        .await?;
        let result = self.run_locked(&identity).await;
        let released = lock.release(&self.access.name_key).await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn run_locked(&self, identity: &Identity) -> Result<RestoreReport> {
        let mut phases = Phases::new(self.progress.as_ref());
        phases.start("check the backup");
        let index = self.index().await?;
        let manifest = self.check(&index, identity).await?;
        let filestore_dir = self.filestore_dir(&manifest)?;
        self.refuse_existing(filestore_dir.as_deref()).await?;

        phases.start("spool the dump");
        let spool = self.spool(&index, &manifest, identity).await?;
        let restored = async {
            self.cancel.check()?;
            phases.start("restore the database");
            self.create_database().await?;
            let (target, db, path, options) = (
                self.target.clone(),
                self.target_db.clone(),
                spool.path().to_path_buf(),
                self.options.clone(),
            );
            tokio::task::spawn_blocking(move || pg_restore_file(&target, &db, &path, &options))
                .await
                .map_err(|e| Error::internal(format!("the pg_restore task failed: {e}")))??;
            Ok::<_, Error>(())
        }
        .await;
        drop(spool);
        restored?;

        if let Some(dir) = &filestore_dir {
            self.cancel.check()?;
            phases.start("restore the filestore");
            let live = self.filestore_root.as_ref().map(|r| r.join(&self.live_db));
            files::restore_files(
                self.access.store.as_ref(),
                identity,
                &manifest,
                &index,
                dir,
                live.as_deref(),
            )
            .await?;
        }

        phases.start("analyze and compare row counts");
        self.analyze_and_compare(&manifest).await?;
        Ok(RestoreReport {
            id: self.id.clone(),
            target_database: self.target_db.clone(),
            swapped: false,
            aside: None,
            filestore: filestore_dir,
            phases: phases.finish(),
        })
    }

    async fn index(&self) -> Result<BackupIndex> {
        let store = self.access.store.as_ref();
        Catalog::read(store, &self.access.name_key)
            .await?
            .backups
            .into_iter()
            .find(|b| b.id == self.id)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "there is no backup {} in {}; see `vigia backup list`",
                    self.id,
                    store.location()
                ))
            })
    }

    /// Every object present with its size, and the manifest read and authenticated, before
    /// anything is created. (The dump's and files' sha256 are checked as they are read.)
    async fn check(&self, index: &BackupIndex, identity: &Identity) -> Result<BackupManifest> {
        let store = self.access.store.as_ref();
        let mut listing = HashMap::new();
        for prefix in [format!("backups/{}/", self.id), "objects/".to_owned()] {
            for meta in store.list(&prefix).await? {
                listing.insert(meta.key, meta.size_bytes);
            }
        }
        let refuse = |object: &str, problem: &str| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "backup {} is damaged and was not restored (nothing was created): {object}: \
                     {problem}",
                    self.id
                ),
            )
            .with_object(object)
        };
        if let Some(p) = quick_problems(index, &listing).first() {
            return Err(refuse(&p.object, &p.problem));
        }
        read_manifest(store, &self.access.name_key, identity, index)
            .await?
            .map_err(|p| refuse(&p.object, &p.problem))
    }

    fn filestore_dir(&self, manifest: &BackupManifest) -> Result<Option<PathBuf>> {
        if manifest.filestore.is_empty() {
            return Ok(None);
        }
        let root = self.filestore_root.as_ref().ok_or_else(|| {
            Error::config(format!(
                "backup {} has {} filestore files but `odoo.data-dir` is not set: set it to the \
                 host path of Odoo's data dir",
                self.id,
                manifest.filestore.len()
            ))
            .with_key("odoo.data-dir")
        })?;
        Ok(Some(root.join(&self.target_db)))
    }

    /// The new database and filestore folder must not exist: a restore never overwrites.
    async fn refuse_existing(&self, filestore_dir: Option<&Path>) -> Result<()> {
        let client = self.target.connect("postgres").await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.target_db],
            )
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?
            .is_some();
        if exists {
            return Err(Error::invalid_input(format!(
                "database {} already exists; a restore never overwrites: choose another \
                 --target-db, or drop it yourself",
                self.target_db
            )));
        }
        if let Some(dir) = filestore_dir
            && dir.exists()
        {
            return Err(Error::invalid_input(format!(
                "{} already exists; a restore never overwrites: choose another --target-db or \
                 move it away",
                dir.display()
            )));
        }
        Ok(())
    }

    /// The dump decrypted to `spool_dir/<id>.dump`, its sha256 checked on the way; removed
    /// when the returned guard drops.
    async fn spool(
        &self,
        index: &BackupIndex,
        manifest: &BackupManifest,
        identity: &Identity,
    ) -> Result<tempfile::NamedTempFile> {
        let dump = index
            .objects
            .iter()
            .find(|o| o.key == dump_key(&self.id))
            .expect("checked by quick_problems");
        std::fs::create_dir_all(&self.spool_dir)
            .map_err(|e| Error::io("create", &self.spool_dir, e))?;
        let needed = if manifest.dump_bytes > 0 {
            manifest.dump_bytes
        } else {
            dump.size_bytes * SPOOL_ESTIMATE_FACTOR
        };
        let free = vigia_core::disk::free_bytes(&self.spool_dir)
            .map_err(|e| Error::io("check free space on", &self.spool_dir, e))?;
        if free < needed {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "not enough free space in {} for the dump's spool: {needed} bytes needed, \
                     {free} free; free some, or point state-dir elsewhere",
                    self.spool_dir.display()
                ),
            ));
        }
        let spool = tempfile::Builder::new()
            .prefix(&format!("{}-", self.id))
            .suffix(".dump")
            .tempfile_in(&self.spool_dir)
            .map_err(|e| Error::io("create a spool file in", &self.spool_dir, e))?;
        let mut file = spool
            .reopen()
            .map_err(|e| Error::io("open", spool.path(), e))?;
        let written = read_back(self.access.store.as_ref(), dump, identity, move |plain| {
            std::io::copy(plain, &mut file)
        })
        .await?;
        written.map_err(|damage| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "backup {} is damaged and was not restored (nothing was created): {}: {damage}",
                    self.id, dump.key
                ),
            )
            .with_object(&dump.key)
        })?;
        Ok(spool)
    }

    async fn create_database(&self) -> Result<()> {
        let client = self.target.connect("postgres").await?;
        let quoted = format!("\"{}\"", self.target_db.replace('"', "\"\""));
        client
            .batch_execute(&format!("CREATE DATABASE {quoted} TEMPLATE template0"))
            .await
            .map_err(|e| {
                db_error(
                    &format!("cannot create {quoted} (the [postgres] user needs CREATEDB)"),
                    &e,
                )
            })
    }

    async fn analyze_and_compare(&self, manifest: &BackupManifest) -> Result<()> {
        let client = self.target.connect(&self.target_db).await?;
        client
            .batch_execute("ANALYZE")
            .await
            .map_err(|e| db_error(&format!("ANALYZE of {} failed", self.target_db), &e))?;
        let restored = row_counts(&client).await?;
        let differ: Vec<String> = manifest
            .row_counts
            .iter()
            .filter(|(table, n)| restored.get(*table) != Some(n))
            .map(|(table, n)| {
                format!(
                    "{table}: {} restored, {n} in the backup",
                    restored.get(table).map_or("none".into(), u64::to_string)
                )
            })
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the restored database {} does not match backup {} (left for inspection): {}",
                self.target_db,
                self.id,
                differ.join("; ")
            ),
        ))
    }
}

/// Phase timings for the report, each phase announced to the progress port.
struct Phases<'p> {
    progress: &'p dyn Progress,
    done: Vec<Phase>,
    current: Option<(String, Instant)>,
}

impl<'p> Phases<'p> {
    fn new(progress: &'p dyn Progress) -> Self {
        Self {
            progress,
            done: Vec::new(),
            current: None,
        }
    }

    fn start(&mut self, name: &str) {
        self.close();
        self.progress.report(&ProgressEvent::PhaseStarted {
            phase: name.to_owned(),
            total_bytes: None,
        });
        self.current = Some((name.to_owned(), Instant::now()));
    }

    fn close(&mut self) {
        if let Some((name, started)) = self.current.take() {
            self.done.push(Phase {
                name,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
    }

    fn finish(mut self) -> Vec<Phase> {
        self.close();
        self.done
    }
}
