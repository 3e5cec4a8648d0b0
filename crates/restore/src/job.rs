//! `RestoreJob`: one restore, from its plan to its report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigia_backup::format::BackupId;
use vigia_backup::{
    CopyKind, CopyRecords, Identity, LockRequest, StoreAccess, StoreLock, os_lock_dir,
};
use vigia_core::ports::database::Database as _;
use vigia_core::ports::progress::{NoProgress, Progress};
use vigia_core::ports::runtime::Runtime;
use vigia_core::{CancelToken, Config, Error, Result};
use vigia_odoo::{Neutralize, NeutralizeReport};
use vigia_pg::{PgAdmin, PgTarget, RestoreOptions, row_counts};
use vigia_runtime::silence::SilenceFile;

use crate::cutover::Cutover;
use crate::phases::Phases;
use crate::resume::take_stack_lock;
use crate::swap::Swap;
use crate::untrusted::CopyOwner;
use crate::{
    Aside, HEALTH_TIMEOUT, PlanInput, RestorePlan, RestoreReport, RestoreRequest, RestoreSource,
    SwapRecovery, swap_journal_path,
};

#[expect(
    clippy::struct_excessive_bools,
    reason = "each is an option of the restore"
)]
pub struct RestoreJob {
    pub access: StoreAccess,
    pub target: PgTarget,
    pub source: RestoreSource,
    /// Restore beside, into this new database (it must not exist); None: replace the live
    /// database (restored as `vigia_restore_<id>`, then swapped in).
    pub target_db: Option<String>,
    /// `--confirm DB`: required to replace the live database of a production environment.
    pub confirm: Option<String>,
    /// Replace the live database even though it holds e-invoices newer than the backup.
    pub accept_einvoice_loss: bool,
    /// `--force-sessions`: with runtime `none`, swap even though other sessions are connected
    /// to the live database (they are ended).
    pub force_sessions: bool,
    /// `--neutralize`: the restored copy can send no e-invoice or e-mail (refused in
    /// production).
    pub neutralize: bool,
    /// `[odoo] url`: the neutralized copy's `web.base.url`.
    pub base_url: Option<String>,
    /// `[restore] neutralize-sql`.
    pub neutralize_sql: Vec<String>,
    /// `--trust-zip`: an Odoo zip's SQL runs with the configured role's rights, not as a
    /// throwaway role (for a configured role that cannot create roles).
    pub trust_zip: bool,
    /// The environment says `production = true`.
    pub production: bool,
    /// Stops and starts Odoo around the swap.
    pub runtime: Arc<dyn Runtime>,
    /// `[odoo] internal-url`: Odoo's health is checked there after the swap when the runtime
    /// started it.
    pub odoo_url: Option<String>,
    /// How long Odoo may take to answer healthy after the swap.
    pub health_timeout: Duration,
    /// `<data-dir>/filestore`; None when `[odoo] data-dir` is not set.
    pub filestore_root: Option<PathBuf>,
    /// The live database, whose filestore folder lends its owner and mode.
    pub live_db: String,
    pub options: RestoreOptions,
    /// Where the dump is decrypted for `pg_restore -j` (`state-dir/spool`).
    pub spool_dir: PathBuf,
    /// Records of what restores make (`state-dir/restores`), for `--cleanup`.
    pub records_dir: PathBuf,
    /// The environment picked (`--env`), named in those records.
    pub environment: Option<String>,
    /// `<state-dir>/swap-journal.json`: written before the swap, removed once it is checked
    /// or undone.
    pub swap_journal: PathBuf,
    /// Where the stack lock lives (`locks/stack.json`).
    pub state_dir: PathBuf,
    /// This environment's alert silence, set while the live database is swapped (None: the
    /// environment's name cannot name the file, and alerts are not silenced).
    pub alert_silence: Option<SilenceFile>,
    pub lock_wait: Duration,
    pub os_lock_dir: Option<PathBuf>,
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
    /// `--dry-run`: only [`RestoreJob::plan`] may be called; `run` refuses.
    pub dry_run: bool,
}

impl std::fmt::Debug for RestoreJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreJob")
            .field("source", &self.source)
            .field("target_db", &self.target_db)
            .finish_non_exhaustive()
    }
}

/// The database restored into, and the live one's aside name when it is replaced.
pub(crate) struct Names {
    pub restored: String,
    pub aside: Option<String>,
}

/// A source restored into its new database and folder, checked.
pub(crate) struct Restored {
    pub filestore: Option<PathBuf>,
    /// The row counts the check after the swap expects.
    pub expected: BTreeMap<String, u64>,
    /// This restore's record in `records_dir`, removed when it ends well.
    pub record: PathBuf,
    /// Who runs SQL in the copy until it is handed back.
    pub owner: CopyOwner,
}

impl RestoreJob {
    pub async fn from_config(config: &Config, request: RestoreRequest) -> Result<Self> {
        if request.resume {
            return Err(Error::invalid_input(
                "--resume restores nothing: it is run by SwapRecovery",
            ));
        }
        let source = match (request.id, request.from_odoo_zip) {
            (Some(id), None) => RestoreSource::Backup(id.parse()?),
            (None, Some(zip)) => RestoreSource::OdooZip(zip),
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "restore either a backup id or --from-odoo-zip FILE, not both",
                ));
            }
            (None, None) => {
                return Err(Error::invalid_input(
                    "name the backup to restore (`vigia backup list` shows the ids) or \
                     --from-odoo-zip FILE",
                ));
            }
        };
        // Only a swap stops and starts Odoo.
        let runtime = match request.target_db {
            None => vigia_runtime::from_config(config)?,
            Some(_) => Arc::new(vigia_runtime::NoRuntime),
        };
        let restore = &config.restore;
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            target: PgTarget::from_config(config)?,
            source,
            target_db: request.target_db,
            confirm: request.confirm,
            accept_einvoice_loss: request.accept_einvoice_loss,
            force_sessions: request.force_sessions,
            neutralize: request.neutralize,
            base_url: config.odoo.url.clone(),
            neutralize_sql: restore.neutralize_sql.clone(),
            trust_zip: request.trust_zip,
            production: config.production,
            runtime,
            odoo_url: config.odoo.internal_url().map(str::to_owned),
            health_timeout: HEALTH_TIMEOUT,
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
            records_dir: config.state_dir.join("restores"),
            environment: config.environment.clone(),
            swap_journal: swap_journal_path(&config.state_dir),
            state_dir: config.state_dir.clone(),
            alert_silence: SilenceFile::from_config(config).ok(),
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
            dry_run: request.dry_run,
        })
    }

    /// Restores under the store lock (a prune must not delete what is being read; a backup
    /// must not read a database being replaced).
    pub async fn run(&self) -> Result<RestoreReport> {
        if self.dry_run {
            return Err(Error::invalid_input(
                "a --dry-run restore restores nothing: its result is plan()",
            ));
        }
        // The refusals that need no server come first: a refused restore touches nothing.
        let plan = self.plan()?;
        // A restore that replaces the live database changes the stack: no deploy (or other
        // swap) until it is done; one beside it changes nothing that runs.
        let _stack = match &self.target_db {
            None => {
                let owner = format!("vigia restore (swap into {})", self.live_db);
                Some(take_stack_lock(&self.state_dir, &owner).await?)
            }
            Some(_) => None,
        };
        // Then an interrupted swap undone (its own lock, so it never waits on ours).
        let recovered = self.recovery().run().await?.recovered;
        self.cancel.check()?;
        let identity = match &self.source {
            RestoreSource::Backup(_) => Some(self.access.identity()?.ok_or_else(|| {
                Error::config(
                    "a restore reads the backup's data and needs the private key: set \
                     [backup.encryption] identity",
                )
                .with_key("backup.encryption.identity")
            })?),
            RestoreSource::OdooZip(_) => None,
        };
        let names = Names {
            restored: plan.copy,
            aside: plan.aside,
        };
        let lock = StoreLock::acquire(
            Arc::clone(&self.access.store),
            &self.access.name_key,
            &LockRequest::new("restore", self.lock_wait, self.os_lock_dir.as_deref()),
        )
        .await?;
        let result = self.run_locked(identity.as_ref(), &names, &lock).await;
        let released = lock.release().await;
        let mut report = result?;
        released?;
        report.recovered = recovered;
        Ok(report)
    }

    /// The cutover of a restore that replaces the live database.
    pub(crate) fn cutover(&self) -> Cutover<'_> {
        Cutover {
            target: &self.target,
            live_db: &self.live_db,
            runtime: self.runtime.as_ref(),
            force_sessions: self.force_sessions,
            odoo_url: self.odoo_url.as_deref(),
            health_timeout: self.health_timeout,
            journal: &self.swap_journal,
            alert_silence: self.alert_silence.as_ref(),
            recovery: self.recovery(),
            start_odoo: true,
            progress: self.progress.as_ref(),
            cancel: &self.cancel,
        }
    }

    /// The undo of an interrupted swap, with this restore's settings; Odoo is managed only by
    /// a restore that replaces the live database (one beside it has no runtime).
    pub(crate) fn recovery(&self) -> SwapRecovery {
        SwapRecovery {
            access: Some(self.access.clone()),
            target: self.target.clone(),
            journal: self.swap_journal.clone(),
            runtime: self.target_db.is_none().then(|| Arc::clone(&self.runtime)),
            lock_wait: self.lock_wait,
            os_lock_dir: self.os_lock_dir.clone(),
            // run() holds it.
            stack_lock: None,
            progress: Arc::clone(&self.progress),
            cancel: self.cancel.clone(),
        }
    }

    /// This restore's plan: its names and steps, every refusal that needs no server. Made
    /// before anything is touched; `restore --dry-run` prints it.
    pub fn plan(&self) -> Result<RestorePlan> {
        RestorePlan::new(&PlanInput {
            source: &self.source,
            target_db: self.target_db.as_deref(),
            confirm: self.confirm.as_deref(),
            accept_einvoice_loss: self.accept_einvoice_loss,
            force_sessions: self.force_sessions,
            neutralize: self.neutralize,
            trust_zip: self.trust_zip,
            production: self.production,
            live_db: &self.live_db,
            runtime: self.runtime.kind(),
            zip_id: &BackupId::new(jiff::Timestamp::now()),
        })
    }

    pub(crate) async fn run_locked(
        &self,
        identity: Option<&Identity>,
        names: &Names,
        lock: &StoreLock,
    ) -> Result<RestoreReport> {
        if names.aside.is_some() {
            // Before the copy is made: Odoo connected now will most likely be there later.
            self.cutover().refuse_sessions(None).await?;
        }
        let mut phases = Phases::new(self.progress.as_ref());
        let (restored, id, odoo_zip) = match (&self.source, identity) {
            (RestoreSource::Backup(id), Some(identity)) => {
                let restored = self
                    .restore_backup(id, identity, names, &mut phases)
                    .await?;
                (restored, Some(id.clone()), None)
            }
            (RestoreSource::OdooZip(zip), _) => {
                let (restored, info) = self.restore_zip(zip, names, &mut phases).await?;
                (restored, None, Some(info))
            }
            (RestoreSource::Backup(_), None) => unreachable!("run() requires the identity"),
        };
        let mut report = RestoreReport {
            id,
            odoo_zip,
            target_database: names.restored.clone(),
            swapped: false,
            aside: None,
            filestore: restored.filestore.clone(),
            neutralized: None,
            phases: Vec::new(),
            recovered: None,
        };
        let mut expected = restored.expected;
        let owner = restored.owner;
        let neutralized = async {
            if !self.neutralize {
                return Ok(None);
            }
            phases.start("neutralize");
            let report = self
                .neutralize_copy(owner.target(), names, restored.filestore.as_deref())
                .await?;
            // The check after the swap compares with the neutralized copy.
            let client = owner.target().connect_guarded(&names.restored).await?;
            expected = row_counts(&client).await?;
            Ok(Some(report))
        }
        .await;
        match neutralized {
            Ok(neutralized) => {
                report.neutralized = neutralized;
                self.hand_back(owner, &names.restored).await?;
            }
            Err(e) => {
                self.abandon(owner, &names.restored).await;
                return Err(e);
            }
        }
        if let Some(aside_db) = &names.aside {
            phases.start("swap");
            let root = self.filestore_root.clone().unwrap_or_default();
            let swap = Swap {
                target: &self.target,
                live: &self.live_db,
                restored: &names.restored,
                aside: aside_db,
                filestore: restored
                    .filestore
                    .as_ref()
                    .map(|dir| (dir.clone(), root.join(&self.live_db), root.join(aside_db))),
            };
            lock.ensure_held().await?;
            self.cutover()
                .run(&swap, Some(&expected), &mut phases)
                .await?;
            report.target_database.clone_from(&self.live_db);
            report.swapped = true;
            report.aside = Some(Aside {
                database: aside_db.clone(),
                filestore: swap.filestore.as_ref().map(|(_, _, aside)| aside.clone()),
            });
            report.filestore = restored.filestore.map(|_| root.join(&self.live_db));
        }
        if let Some(aside) = &report.aside {
            self.records().write(
                CopyKind::Aside,
                &aside.database,
                aside.filestore.as_deref(),
                None,
            )?;
        }
        CopyRecords::finished(&restored.record)?;
        report.phases = phases.finish();
        Ok(report)
    }

    pub(crate) async fn neutralize_copy(
        &self,
        owner: &PgTarget,
        names: &Names,
        filestore: Option<&Path>,
    ) -> Result<NeutralizeReport> {
        Neutralize {
            base_url: self.base_url.as_deref(),
            extra_sql: &self.neutralize_sql,
        }
        .run(owner, &names.restored, filestore)
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
        })
    }

    /// The refusal of the e-invoice guard; `copy` names the restored copy when the guard
    /// could only run after restoring it.
    pub(crate) fn einvoice_refusal(&self, source: &str, newer: &str, copy: Option<&str>) -> Error {
        Error::invalid_input(format!(
            "the live database {} holds e-invoice documents created after {source} ({newer}); \
             restoring it would make Odoo reuse consecutives Hacienda already has. Restore \
             beside it with --target-db NAME, or pass --accept-einvoice-loss{}",
            self.live_db,
            copy.map(|c| format!(
                ". The restored copy {c} is kept; `vigia restore --cleanup --apply` removes it"
            ))
            .unwrap_or_default()
        ))
    }

    /// `<data-dir>/filestore`, required when the source (`what`) has files.
    pub(crate) fn filestore_root(&self, what: &str) -> Result<PathBuf> {
        self.filestore_root.clone().ok_or_else(|| {
            Error::config(format!(
                "{what} but `odoo.data-dir` is not set: set it to the host path of Odoo's data \
                 dir"
            ))
            .with_key("odoo.data-dir")
        })
    }

    pub(crate) fn live_filestore(&self) -> Option<PathBuf> {
        self.filestore_root.as_ref().map(|r| r.join(&self.live_db))
    }

    pub(crate) fn records(&self) -> CopyRecords {
        CopyRecords::new(&self.records_dir, self.environment.as_deref(), &self.target)
    }

    /// Records this restore for `--cleanup`, before its database (and `role`) is created.
    pub(crate) fn record(
        &self,
        database: &str,
        filestore: Option<&Path>,
        role: Option<&str>,
    ) -> Result<PathBuf> {
        self.records()
            .write(CopyKind::Restore, database, filestore, role)
    }

    /// The new database and filestore folder must not exist: a restore never overwrites.
    pub(crate) async fn refuse_existing(
        &self,
        database: &str,
        filestore_dir: Option<&Path>,
    ) -> Result<()> {
        if PgAdmin::connect(&self.target)
            .await?
            .exists(database)
            .await?
        {
            return Err(Error::invalid_input(format!(
                "database {database} already exists; a restore never overwrites: choose \
                 another --target-db, or drop it yourself"
            )));
        }
        // A link (even a dangling one) is there too: never "does not exist".
        if let Some(dir) = filestore_dir
            && std::fs::symlink_metadata(dir).is_ok()
        {
            return Err(Error::invalid_input(format!(
                "{} already exists; a restore never overwrites: choose another --target-db or \
                 move it away",
                dir.display()
            )));
        }
        Ok(())
    }

    /// Creates `database`, whose record is `record`; when it cannot be created it is not
    /// this restore's (someone may have made that name meanwhile): the record goes, so that
    /// `--cleanup` never drops it.
    pub(crate) async fn create_database_recorded(
        &self,
        database: &str,
        record: &Path,
    ) -> Result<()> {
        let created = self.create_database(database).await;
        if created.is_err() {
            CopyRecords::finished(record)?;
        }
        created
    }

    pub(crate) async fn create_database(&self, database: &str) -> Result<()> {
        PgAdmin::connect(&self.target).await?.create(database).await
    }
}
