//! Taking a backup: one snapshot for the dump, the filestore list and the row counts; the
//! dump (one archive, or the schema and the data streams side by side) and the filestore
//! streamed concurrently; the manifest, then the index last (the commit point).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use vigia_core::CancelToken;
use vigia_core::ports::clock::{Clock, SystemClock};
use vigia_core::ports::progress::{NoProgress, Progress, ProgressEvent, ProgressReader};
use vigia_core::ports::store::{ObjectStore, StoreError};
use vigia_core::task::blocking;
use vigia_core::{Config, Error, ErrorKind, Result, VERSION};

use crate::access::StoreAccess;
use crate::catalog::Catalog;
use crate::dead_runs::sweep_dead_runs;
use crate::dump_plan::{DumpLayout, plan_streams};
use crate::extra::{ExtraFile, bundle, extra_files};
use crate::filestore::{FilestoreBackup, FilestoreReport};
use crate::format::{
    BackupId, BackupIndex, BackupManifest, NAME_KEY_KEY, NameKey, data_key, dump_key, extra_key,
    index_key, manifest_key, schema_key,
};
use crate::format::{ExtraEntry, SealedObject};
use crate::keys::Recipients;
use crate::lock::{LockRequest, StoreLock, os_lock_dir};
use crate::metrics::{ping_heartbeat, write_backup_metrics};
use crate::requests::BackupRequest;
use crate::seal::put_sealed;
use vigia_odoo::addons::addon_hashes;
use vigia_pg::{DumpScope, PgDump, PgTarget, SnapshotSession, table_sizes};

/// The phase the dump streams in; its bytes are reported as they are read from pg_dump.
const DUMP_PHASE: &str = "dump and filestore";

/// Everything a backup needs; `from_config` builds it from `[postgres]`, `[odoo]`, `[backup]`.
/// Only public keys are needed: a host that takes backups cannot read them.
#[derive(Clone)]
pub struct BackupJob {
    pub store: Arc<dyn ObjectStore>,
    pub name_key: NameKey,
    pub recipients: Recipients,
    pub target: PgTarget,
    pub database: String,
    /// `<data-dir>/filestore/<database>`; None when `[odoo] data-dir` is not set.
    pub filestore_dir: Option<PathBuf>,
    pub allow_missing_files: bool,
    /// One archive (format 1) or the schema and data streams (format 2).
    pub layout: DumpLayout,
    /// How long to wait for a busy store lock.
    pub lock_wait: Duration,
    /// The local store's directory, locked with an OS lock too; None for S3.
    pub os_lock_dir: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
    pub progress: Arc<dyn Progress>,
    /// Where the textfile metrics go; None: not written.
    pub state_dir: Option<PathBuf>,
    /// GET after each successful backup.
    pub heartbeat_url: Option<String>,
    /// Checked between phases and while the dump streams; a cancelled run stores no index.
    pub cancel: CancelToken,
    /// `[odoo] addons-paths`, hashed into the manifest.
    pub addons_paths: Vec<PathBuf>,
    /// The config, certificate and compose file, stored as `extra.age`.
    pub extra: Vec<ExtraFile>,
}

impl std::fmt::Debug for BackupJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupJob")
            .field("store", &self.store.location())
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The `data` of `vigia backup --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub id: BackupId,
    pub database: String,
    /// Everything the backup references (what a restore reads).
    pub size_bytes: u64,
    /// What this run stored.
    pub uploaded_bytes: u64,
    pub filestore: FilestoreReport,
    pub duration_ms: u64,
    /// What went wrong after the backup was safely stored (metrics, heartbeat).
    pub warnings: Vec<String>,
}

impl BackupJob {
    pub async fn from_config(config: &Config, request: BackupRequest) -> Result<Self> {
        let access = StoreAccess::from_config(config).await?;
        let encryption = config
            .backup
            .encryption
            .as_ref()
            .expect("checked by backup_requirements");
        Ok(Self {
            store: access.store,
            name_key: access.name_key,
            recipients: Recipients::from_config(encryption)?,
            target: PgTarget::from_config(config)?,
            database: config.odoo.database.clone(),
            filestore_dir: config.odoo.filestore_dir(),
            allow_missing_files: request.allow_missing_files,
            layout: DumpLayout::from_config(&config.backup),
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
            state_dir: Some(config.state_dir.clone()),
            heartbeat_url: config.backup.heartbeat_url.clone(),
            addons_paths: config.odoo.addons_paths.clone(),
            extra: extra_files(config),
        })
    }

    /// Takes a backup under the store lock.
    pub async fn run(&self) -> Result<BackupReport> {
        let lock = StoreLock::acquire(
            Arc::clone(&self.store),
            &self.name_key,
            &LockRequest::new("backup", self.lock_wait, self.os_lock_dir.as_deref()),
        )
        .await?;
        let result = async {
            if lock.sole_writer() {
                sweep_dead_runs(self.store.as_ref(), &lock).await?;
            }
            self.run_locked(&lock).await
        }
        .await;
        let released = lock.release().await;
        let mut report = result?;
        released?;
        self.after_success(&mut report).await;
        Ok(report)
    }

    /// Metrics and heartbeat: their failure is a warning, the backup itself is safe.
    async fn after_success(&self, report: &mut BackupReport) {
        if let Some(dir) = &self.state_dir {
            let written =
                write_backup_metrics(dir, self.clock.now(), report.size_bytes, report.duration_ms);
            if let Err(e) = written {
                report.warnings.push(format!("metrics not written: {e}"));
            }
        }
        if let Some(url) = &self.heartbeat_url
            && let Err(e) = ping_heartbeat(url).await
        {
            report.warnings.push(e);
        }
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
    }

    async fn run_locked(&self, lock: &StoreLock) -> Result<BackupReport> {
        let timer = Instant::now();
        self.phase("snapshot");
        let started_at = self.clock.now();
        let id = BackupId::new(started_at);
        let known = Catalog::read(self.store.as_ref(), &self.name_key)
            .await?
            .known_objects();

        let session = SnapshotSession::open(&self.target, &self.database).await?;
        self.target
            .check_client_version(session.server_version_num())?;
        let refs = vigia_odoo::schema::filestore_refs(session.client())
            .await?
            .unwrap_or_default();
        let filestore_dir = match (&self.filestore_dir, refs.is_empty()) {
            (Some(dir), _) => Some(dir.clone()),
            (None, true) => None,
            (None, false) => {
                return Err(Error::config(format!(
                    "database {} references {} filestore files, but `odoo.data-dir` is not set: \
                     set it to the host path of Odoo's data dir",
                    self.database,
                    refs.len()
                ))
                .with_key("odoo.data-dir"));
            }
        };
        let modules = vigia_odoo::schema::module_versions(session.client()).await?;
        let parts = self.dump_parts(&id, &session).await?;
        vigia_core::failpoint::hit("backup.snapshot")?;
        self.cancel.check()?;
        self.phase(DUMP_PHASE);

        let dump = self.dump(parts, &session);
        let filestore = async {
            match &filestore_dir {
                Some(dir) => {
                    FilestoreBackup {
                        store: self.store.as_ref(),
                        dir,
                        name_key: &self.name_key,
                        recipients: &self.recipients,
                        allow_missing: self.allow_missing_files,
                    }
                    .run(&refs, &known)
                    .await
                }
                None => Ok(FilestoreReport::default()),
            }
        };
        // Exact row counts in the same snapshot, on the session's own connection while the
        // dump streams: their cost hides behind the dump instead of adding to it.
        let row_counts = session.row_counts();
        let (dump, filestore, row_counts) = tokio::select! {
            done = async { tokio::try_join!(dump, filestore, row_counts) } => done?,
            () = self.cancel.cancelled() => return Err(self.cancel.check().unwrap_err()),
        };
        let snapshot = session.snapshot_id().to_owned();
        let server_version_num = session.server_version_num();
        session.close().await?;

        self.cancel.check()?;
        self.phase("manifest and index");
        let mut warnings = Vec::new();
        let (extra_object, extra, addons) = self.extras(&id, &mut warnings).await?;
        let manifest = BackupManifest {
            format: self.layout.format(),
            id: id.clone(),
            database: self.database.clone(),
            started_at,
            vigia_version: VERSION.to_owned(),
            snapshot,
            server_version_num,
            row_counts,
            modules,
            filestore: filestore.entries.clone(),
            filestore_problems: filestore.problems.clone(),
            addons,
            extra,
            dump_bytes: dump.iter().map(|o| o.plain_bytes).sum(),
            schema_bytes: plain_bytes(&dump, &schema_key(&id)),
        };
        let manifest = self
            .put_sealed_bytes(&manifest_key(&id), self.name_key.seal(&manifest)?)
            .await?;
        self.ensure_name_key_copy().await?;
        vigia_core::failpoint::hit("backup.manifest")?;

        // The dump's objects first and together: data-0, data-1, ... as DumpObjects reads them.
        let mut objects = dump;
        objects.extend([manifest, extra_object]);
        let uploaded_bytes =
            objects.iter().map(|o| o.size_bytes).sum::<u64>() + filestore.new_bytes;
        objects.extend(filestore.objects.iter().cloned());
        let index = self.commit(lock, &id, started_at, objects).await?;
        Ok(BackupReport {
            id,
            database: self.database.clone(),
            size_bytes: index.size_bytes(),
            uploaded_bytes,
            filestore,
            duration_ms: u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX),
            warnings,
        })
    }

    /// `extra.age` stored, and the addons hashed; what could not be bundled or hashed is a
    /// warning.
    async fn extras(
        &self,
        id: &BackupId,
        warnings: &mut Vec<String>,
    ) -> Result<(SealedObject, Vec<ExtraEntry>, BTreeMap<String, String>)> {
        let (archive, extra, missing) = bundle(&self.extra)?;
        warnings.extend(
            missing
                .into_iter()
                .map(|m| format!("not in extra.age: {m}")),
        );
        let extra_object = self.put_sealed_bytes(&extra_key(id), archive).await?;
        let paths = self.addons_paths.clone();
        let (addons, addon_problems) =
            blocking("addon hashing", move || Ok(addon_hashes(&paths))).await?;
        warnings.extend(addon_problems);
        Ok((extra_object, extra, addons))
    }

    /// Writes the index, the backup's commit, once every object it names is in the store and
    /// the lock is still this run's.
    async fn commit(
        &self,
        lock: &StoreLock,
        id: &BackupId,
        started_at: jiff::Timestamp,
        objects: Vec<SealedObject>,
    ) -> Result<BackupIndex> {
        let index = BackupIndex {
            format: self.layout.format(),
            id: id.clone(),
            database: self.database.clone(),
            started_at,
            finished_at: self.clock.now(),
            vigia_version: VERSION.to_owned(),
            objects,
        };
        let sealed_index = self.name_key.seal(&index)?;
        // The objects reused from earlier backups were listed when this run began; a prune
        // that ran without the lock since (on a store that ignores conditional writes, or
        // after this run lost it) may have collected them. The index must not name them then.
        confirm_present(self.store.as_ref(), &index.objects).await?;
        lock.ensure_held().await?;
        self.store
            .put_bytes(&index_key(id), sealed_index.into())
            .await?;
        Ok(index)
    }

    fn phase(&self, phase: &str) {
        self.progress.report(&ProgressEvent::PhaseStarted {
            phase: phase.to_owned(),
            total_bytes: None,
        });
    }

    /// The objects the database goes into, and what each holds: one archive, or the schema
    /// and the tables shared among the data streams by size (read in the snapshot).
    async fn dump_parts(
        &self,
        id: &BackupId,
        session: &SnapshotSession,
    ) -> Result<Vec<(String, DumpScope)>> {
        Ok(match self.layout {
            DumpLayout::OneArchive => vec![(dump_key(id), DumpScope::Whole)],
            DumpLayout::Parts { streams } => {
                let tables = table_sizes(session.client()).await?;
                let data = plan_streams(&tables, streams)
                    .into_iter()
                    .enumerate()
                    .map(|(n, scope)| (data_key(id, n), scope));
                std::iter::once((schema_key(id), DumpScope::Schema))
                    .chain(data)
                    .collect()
            }
        })
    }

    /// Every part dumped and stored side by side, each by its own `pg_dump` in the snapshot.
    async fn dump(
        &self,
        parts: Vec<(String, DumpScope)>,
        session: &SnapshotSession,
    ) -> Result<Vec<SealedObject>> {
        let snapshot = session.snapshot_id().to_owned();
        let dumps = parts.into_iter().map(|(key, scope)| {
            let (target, database) = (self.target.clone(), self.database.clone());
            let (snapshot, progress) = (snapshot.clone(), Arc::clone(&self.progress));
            async move {
                let open = move || {
                    PgDump::spawn(&target, &database, Some(&snapshot), &scope).map(|d| {
                        Box::new(ProgressReader::new(d, progress, DUMP_PHASE)) as Box<dyn Read>
                    })
                };
                put_sealed(self.store.as_ref(), &key, &self.recipients, open).await
            }
        });
        futures::future::try_join_all(dumps).await
    }

    async fn put_sealed_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<SealedObject> {
        put_sealed(self.store.as_ref(), key, &self.recipients, move || {
            Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn Read>)
        })
        .await
    }

    /// `keys/name-key.age`: the name key, encrypted to the recipients, so that whoever holds
    /// the identity can recover it from the store alone.
    async fn ensure_name_key_copy(&self) -> Result<()> {
        match self.store.head(NAME_KEY_KEY).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                let hex = self.name_key.to_hex();
                self.put_sealed_bytes(NAME_KEY_KEY, format!("{}\n", hex.as_str()).into_bytes())
                    .await
                    .map(drop)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl vigia_core::Outcome for BackupReport {}

/// The plain size of object `key` of `objects`; 0 when there is none.
fn plain_bytes(objects: &[SealedObject], key: &str) -> u64 {
    objects
        .iter()
        .find(|o| o.key == key)
        .map_or(0, |o| o.plain_bytes)
}

/// Fails unless every object an index is about to name is in the store with its size: the
/// filestore objects reused from earlier backups were listed when the run began, and on a
/// store that ignores conditional writes even this run's own files could have been swept.
async fn confirm_present(store: &dyn ObjectStore, objects: &[SealedObject]) -> Result<()> {
    let folders: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.key.rsplit_once('/').map(|(folder, _)| folder))
        .collect();
    let mut listed = HashMap::new();
    for folder in folders {
        for meta in store.list(&format!("{folder}/")).await? {
            listed.insert(meta.key, meta.size_bytes);
        }
    }
    let missing: Vec<&str> = objects
        .iter()
        .filter(|o| listed.get(&o.key) != Some(&o.size_bytes))
        .map(|o| o.key.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Storage,
        format!(
            "{} objects this backup's index would name are gone from {} or changed size ({}): \
             another run removed them while this one ran. No index was written, so this \
             backup does not exist; run it again",
            missing.len(),
            store.location(),
            missing.join(", ")
        ),
    ))
}
