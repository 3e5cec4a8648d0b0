//! `vigia restore ID --target-db NAME`: a backup restored beside the live database, which is
//! never touched (DESIGN.md "Data flows: Restore", without the swap). Every object is checked
//! before anything is created; the dump is decrypted to a spool file (free space checked
//! first; `pg_restore -j` cannot read a pipe) and restored into a new database; the filestore
//! goes to a fresh `filestore/NAME` with every sha1 checked; then ANALYZE, and the restored
//! row counts must equal the manifest's.

mod cleanup;
mod files;
mod neutralize;
mod pending;
mod swap;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vigia_core::config::check_database_name;
use vigia_core::ports::progress::{NoProgress, Progress, ProgressEvent};
use vigia_core::ports::runtime::{NoRuntime, Runtime, RuntimeAction, Service};
use vigia_core::{CancelToken, Config, Error, ErrorKind, Outcome, Result};

use crate::access::StoreAccess;
use crate::format::{BackupId, BackupIndex, BackupManifest, dump_key};
use crate::keys::Identity;
use crate::lock::{StoreLock, os_lock_dir};
use crate::pg::{PgTarget, RestoreOptions, db_error, pg_restore_file, quote_ident, row_counts};
use crate::seal::read_back;
use crate::verify::{quick_problems, read_manifest};
pub use cleanup::{CleanupReport, RestoreCleanup};
use neutralize::Neutralize;
pub use neutralize::NeutralizeReport;
use pending::PendingRestore;
pub use swap::Aside;
use swap::{Swap, newer_einvoices};

/// When the manifest predates `dump_bytes`: spool room as a multiple of the stored dump.
const SPOOL_ESTIMATE_FACTOR: u64 = 6;

pub struct RestoreJob {
    pub access: StoreAccess,
    pub target: PgTarget,
    pub id: BackupId,
    /// Restore beside, into this new database (it must not exist); None: replace the live
    /// database (restored as `vigia_restore_<id>`, then swapped in).
    pub target_db: Option<String>,
    /// `--confirm DB`: required to replace the live database of a production environment.
    pub confirm: Option<String>,
    /// Replace the live database even though it holds e-invoices newer than the backup.
    pub accept_einvoice_loss: bool,
    /// `--neutralize`: the restored copy can send no e-invoice or e-mail (refused in
    /// production).
    pub neutralize: bool,
    /// `[odoo] url`: the neutralized copy's `web.base.url`.
    pub base_url: Option<String>,
    /// `[restore] neutralize-sql`.
    pub neutralize_sql: Vec<String>,
    /// The environment says `production = true`.
    pub production: bool,
    /// Stops and starts Odoo around the swap.
    pub runtime: Arc<dyn Runtime>,
    /// `<data-dir>/filestore`; None when `[odoo] data-dir` is not set.
    pub filestore_root: Option<PathBuf>,
    /// The live database, whose filestore folder lends its owner and mode.
    pub live_db: String,
    pub options: RestoreOptions,
    /// Where the dump is decrypted for `pg_restore -j` (`state-dir/spool`).
    pub spool_dir: PathBuf,
    /// Records of restores in progress (`state-dir/restores`), for `--cleanup`.
    pub pending_dir: PathBuf,
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

/// What to restore and how: the CLI's flags, the C ABI's `args_json`. Unset fields take
/// the config's values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestoreRequest {
    /// The backup, as `vigia backup list` shows it.
    pub id: Option<String>,
    /// Restore beside the live database, into this new one.
    pub target_db: Option<String>,
    pub confirm: Option<String>,
    pub accept_einvoice_loss: bool,
    pub neutralize: bool,
    /// `pg_restore -j` instead of `[restore] jobs`.
    pub jobs: Option<u32>,
    /// `pg_restore --role` instead of `[restore] role`.
    pub role: Option<String>,
}

/// The `data` of `vigia restore --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub id: BackupId,
    pub target_database: String,
    /// False: restored beside the live database.
    pub swapped: bool,
    /// What the swap moved aside; null when nothing was swapped.
    pub aside: Option<Aside>,
    /// The restored filestore folder, when the backup has files.
    pub filestore: Option<PathBuf>,
    /// What `--neutralize` did; null without it.
    pub neutralized: Option<NeutralizeReport>,
    pub phases: Vec<Phase>,
}

impl Outcome for RestoreReport {}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub duration_ms: u64,
}

impl RestoreJob {
    pub async fn from_config(config: &Config, request: RestoreRequest) -> Result<Self> {
        let id: BackupId = request
            .id
            .ok_or_else(|| {
                Error::invalid_input(
                    "name the backup to restore (`vigia backup list` shows the ids)",
                )
            })?
            .parse()?;
        let restore = &config.restore;
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            target: PgTarget::from_config(config)?,
            id,
            target_db: request.target_db,
            confirm: request.confirm,
            accept_einvoice_loss: request.accept_einvoice_loss,
            neutralize: request.neutralize,
            base_url: config.odoo.url.clone(),
            neutralize_sql: restore.neutralize_sql.clone(),
            production: config.production,
            runtime: Arc::new(NoRuntime),
            filestore_root: config.odoo.data_dir.as_ref().map(|d| d.join("filestore")),
            live_db: config.odoo.database.clone(),
            options: RestoreOptions {
                jobs: request.jobs.unwrap_or(restore.jobs),
                no_owner: restore.no_owner,
                role: request
                    .role
                    .or_else(|| Some(restore.role.clone()))
                    .filter(|r| !r.is_empty()),
            },
            spool_dir: config.state_dir.join("spool"),
            pending_dir: config.state_dir.join("restores"),
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
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
        let names = self.names()?;
        let lock = StoreLock::acquire(
            Arc::clone(&self.access.store),
            &self.access.name_key,
            "restore",
            self.lock_wait,
            self.os_lock_dir.as_deref(),
        )
        .await?;
        let result = self.run_locked(&identity, &names).await;
        let released = lock.release(&self.access.name_key).await;
        let report = result?;
        released?;
        Ok(report)
    }

    /// The database to restore into and, when replacing the live one, its aside name; the
    /// production confirmation. All checked before anything happens.
    fn names(&self) -> Result<Names> {
        if self.target_db.is_some() && (self.confirm.is_some() || self.accept_einvoice_loss) {
            return Err(Error::invalid_input(
                "--confirm and --accept-einvoice-loss go with replacing the live database, not \
                 with --target-db (which never touches it)",
            ));
        }
        if self.neutralize && self.production {
            return Err(Error::invalid_input(
                "--neutralize is refused in a production environment (it says production = \
                 true): restore under the environment the copy is for, e.g. --env staging",
            ));
        }
        let names = if let Some(target) = &self.target_db {
            Names {
                restored: target.clone(),
                aside: None,
            }
        } else {
            if self.production && self.confirm.as_deref() != Some(self.live_db.as_str()) {
                return Err(Error::invalid_input(format!(
                    "this environment is production: replacing database {0} needs --confirm {0} \
                     (or restore beside it with --target-db NAME)",
                    self.live_db
                )));
            }
            let suffix = self.id.as_str().to_lowercase().replace('-', "_");
            Names {
                restored: format!("vigia_restore_{suffix}"),
                aside: Some(format!("{}_pre_restore_{suffix}", self.live_db)),
            }
        };
        for name in std::iter::once(&names.restored).chain(names.aside.as_ref()) {
            check_database_name(name)
                .map_err(|e| Error::invalid_input(format!("cannot restore into {name}: {e}")))?;
        }
        Ok(names)
    }

    async fn run_locked(&self, identity: &Identity, names: &Names) -> Result<RestoreReport> {
        let mut phases = Phases::new(self.progress.as_ref());
        phases.start("check the backup");
        let index = self.access.read_index(&self.id).await?;
        let manifest = self.check(&index, identity).await?;
        let filestore_dir = self.filestore_dir(&manifest, &names.restored)?;
        self.refuse_existing(&names.restored, filestore_dir.as_deref())
            .await?;
        if names.aside.is_some() && !self.accept_einvoice_loss {
            self.einvoice_guard(&index).await?;
        }

        // The dump is read back (and its sha256 checked) before anything is created; then
        // the filestore is written while pg_restore runs.
        phases.start("spool the dump");
        let spool = self.spool(&index, &manifest, identity).await?;
        self.cancel.check()?;
        let record =
            PendingRestore::record(&self.pending_dir, &names.restored, filestore_dir.as_deref())?;
        phases.start("restore the database and the filestore");
        let database = async {
            self.create_database(&names.restored).await?;
            let (target, db, path, options) = (
                self.target.clone(),
                names.restored.clone(),
                spool.path().to_path_buf(),
                self.options.clone(),
            );
            tokio::task::spawn_blocking(move || pg_restore_file(&target, &db, &path, &options))
                .await
                .map_err(|e| Error::internal(format!("the pg_restore task failed: {e}")))??;
            drop(spool);
            Ok::<_, Error>(())
        };
        let filestore = async {
            let Some(dir) = &filestore_dir else {
                return Ok(());
            };
            let live = self.filestore_root.as_ref().map(|r| r.join(&self.live_db));
            files::restore_files(
                self.access.store.as_ref(),
                identity,
                &manifest,
                &index,
                dir,
                live.as_deref(),
            )
            .await
        };
        tokio::try_join!(database, filestore)?;
        self.cancel.check()?;

        phases.start("analyze and compare row counts");
        let mut expected = manifest.row_counts.clone();
        self.analyze_and_compare(&names.restored, &expected).await?;
        let neutralized = if self.neutralize {
            phases.start("neutralize");
            let report = Neutralize {
                base_url: self.base_url.as_deref(),
                extra_sql: &self.neutralize_sql,
            }
            .run(&self.target, &names.restored, filestore_dir.as_deref())
            .await
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "{e}; the restored copy {} is NOT neutralized: remove it with `vigia \
                         restore --cleanup --apply`",
                        names.restored
                    ),
                )
            })?;
            // The check after the swap compares with the neutralized copy.
            let client = self.target.connect(&names.restored).await?;
            expected = row_counts(&client).await?;
            Some(report)
        } else {
            None
        };
        let Some(aside_db) = &names.aside else {
            PendingRestore::finished(&record)?;
            return Ok(RestoreReport {
                id: self.id.clone(),
                target_database: names.restored.clone(),
                swapped: false,
                aside: None,
                filestore: filestore_dir,
                neutralized,
                phases: phases.finish(),
            });
        };

        phases.start("swap");
        let root = self.filestore_root.clone().unwrap_or_default();
        let swap = Swap {
            target: &self.target,
            live: &self.live_db,
            restored: &names.restored,
            aside: aside_db,
            filestore: filestore_dir
                .as_ref()
                .map(|dir| (dir.clone(), root.join(&self.live_db), root.join(aside_db))),
        };
        self.odoo(false).await?;
        if let Err(e) = swap.run().await {
            self.odoo(true).await?;
            return Err(Error::new(
                e.kind(),
                format!(
                    "the swap failed and was undone; the live database {} is as it was: {e}",
                    self.live_db
                ),
            ));
        }
        phases.start("check after the swap");
        let checked = async {
            vigia_core::failpoint::hit("restore.after_swap")?;
            self.analyze_and_compare(&self.live_db, &expected).await?;
            self.odoo(true).await
        }
        .await;
        if let Err(e) = checked {
            let undone = swap.undo().await;
            let _ = self.odoo(true).await;
            let what = match undone {
                Ok(()) => format!(
                    "swapped back: {} is the database it was before; the restored copy is {}{}",
                    self.live_db,
                    names.restored,
                    filestore_dir
                        .as_ref()
                        .map(|d| format!(" (filestore {})", d.display()))
                        .unwrap_or_default()
                ),
                Err(back) => format!(
                    "swapping back failed too ({back}): the previous database is {aside_db}, \
                     the restored one {}; fix by hand",
                    self.live_db
                ),
            };
            return Err(Error::new(
                e.kind(),
                format!("the check after the swap failed ({e}); {what}"),
            ));
        }
        PendingRestore::finished(&record)?;
        Ok(RestoreReport {
            id: self.id.clone(),
            target_database: self.live_db.clone(),
            swapped: true,
            aside: Some(Aside {
                database: aside_db.clone(),
                filestore: swap.filestore.as_ref().map(|(_, _, aside)| aside.clone()),
            }),
            filestore: filestore_dir.map(|_| root.join(&self.live_db)),
            neutralized,
            phases: phases.finish(),
        })
    }

    /// Refuses to replace a live database holding e-invoices created after the backup.
    async fn einvoice_guard(&self, index: &BackupIndex) -> Result<()> {
        match newer_einvoices(&self.target, &self.live_db, index.started_at).await? {
            None => Ok(()),
            Some(newer) => Err(Error::invalid_input(format!(
                "the live database {} holds e-invoice documents created after backup {} \
                 ({newer}); restoring it would make Odoo reuse consecutives Hacienda already \
                 has. Restore beside it with --target-db NAME, or pass --accept-einvoice-loss",
                self.live_db, self.id
            ))),
        }
    }

    /// Stops (`start` false) or starts Odoo through the runtime; with `kind = "none"` says
    /// so and goes on.
    async fn odoo(&self, start: bool) -> Result<()> {
        let action = if start {
            self.runtime.start(Service::Odoo).await?
        } else {
            self.runtime.stop(Service::Odoo).await?
        };
        if let RuntimeAction::Skipped { reason } = action {
            let verb = if start { "started" } else { "stopped" };
            self.progress.report(&ProgressEvent::Message {
                text: format!("Odoo was not {verb} by vigia: {reason}"),
            });
        }
        Ok(())
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

    fn filestore_dir(&self, manifest: &BackupManifest, database: &str) -> Result<Option<PathBuf>> {
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
        Ok(Some(root.join(database)))
    }

    /// The new database and filestore folder must not exist: a restore never overwrites.
    async fn refuse_existing(&self, database: &str, filestore_dir: Option<&Path>) -> Result<()> {
        let client = self.target.connect("postgres").await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?
            .is_some();
        if exists {
            return Err(Error::invalid_input(format!(
                "database {database} already exists; a restore never overwrites: choose \
                 another --target-db, or drop it yourself"
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

    async fn create_database(&self, database: &str) -> Result<()> {
        let client = self.target.connect("postgres").await?;
        let quoted = quote_ident(database);
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

    /// ANALYZE, then the row counts must equal `expected` (the manifest's, or the
    /// neutralized copy's).
    async fn analyze_and_compare(
        &self,
        database: &str,
        expected: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let client = self.target.connect(database).await?;
        client
            .batch_execute("ANALYZE")
            .await
            .map_err(|e| db_error(&format!("ANALYZE of {database} failed"), &e))?;
        let restored = row_counts(&client).await?;
        let differ: Vec<String> = expected
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
                "the restored database {database} does not match backup {} (left for \
                 inspection): {}",
                self.id,
                differ.join("; ")
            ),
        ))
    }
}

/// The database restored into, and the live one's aside name when it is replaced.
struct Names {
    restored: String,
    aside: Option<String>,
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
