//! `vigia verify`: levels quick < full < drill, each including the one before (DESIGN.md
//! "Data flows: Verify"). Results are recorded under `verifications/`.

mod check;
mod drill;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use vigia_core::ports::clock::{Clock, SystemClock};
use vigia_core::ports::progress::{NoProgress, Progress, ProgressEvent};
use vigia_core::{CancelToken, Config, Error, ErrorKind, Outcome, Result};

pub use check::quick_problems;

use crate::access::StoreAccess;
use crate::catalog::Catalog;
use crate::format::{BackupId, BackupIndex};
use crate::format::{Problem, VerificationRecord, VerifyLevel};
use crate::keys::Identity;
use crate::lock::{LockRequest, ReadLock};
use crate::metrics::write_verify_metrics;
use crate::requests::{Selection, VerifyRequest};
use check::Checker;
use vigia_pg::PgTarget;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    pub id: BackupId,
    pub level: VerifyLevel,
    pub ok: bool,
    pub problems: Vec<Problem>,
    pub duration_ms: u64,
}

/// The `data` of `vigia verify --json`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub results: Vec<VerifyResult>,
    /// What the run chose on its own (e.g. `quick` because no identity is configured).
    pub notes: Vec<String>,
}

impl Outcome for VerifyReport {
    fn failure(&self) -> Option<Error> {
        let failed: Vec<&VerifyResult> = self.results.iter().filter(|r| !r.ok).collect();
        let first = failed.first()?;
        let problem = first.problems.first().map_or_else(
            || "no detail".to_owned(),
            |p| format!("{}: {}", p.object, p.problem),
        );
        Some(
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "{} of {} backups failed verification; {}: {problem}",
                    failed.len(),
                    self.results.len(),
                    first.id
                ),
            )
            .with_object(first.problems.first().map_or("", |p| p.object.as_str())),
        )
    }
}

pub struct VerifyJob {
    pub access: StoreAccess,
    /// None: full when an identity is configured, else quick.
    pub level: Option<VerifyLevel>,
    pub selection: Selection,
    /// The PostgreSQL server for `pg_restore --list` and the drill's scratch database.
    pub target: PgTarget,
    pub clock: Arc<dyn Clock>,
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
    /// Where `vigia-verify.prom` goes and a drill spools the stored dump (`spool/`); None: no
    /// metrics, the spool in the system's temporary folder.
    pub state_dir: Option<PathBuf>,
    /// The environment picked (`--env`), named in a drill's record in `state-dir/restores`.
    pub environment: Option<String>,
    /// Filestore objects read back at once.
    pub concurrency: usize,
    /// How long to wait while a prune holds the store (`[backup] lock-wait`).
    pub lock_wait: Duration,
}

impl fmt::Debug for VerifyJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyJob")
            .field("store", &self.access.store.location())
            .field("level", &self.level)
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl VerifyJob {
    /// The PostgreSQL password is resolved only for a drill (the only level that connects).
    pub async fn from_config(config: &Config, request: &VerifyRequest) -> Result<Self> {
        let (level, selection) = (request.level()?, request.selection()?);
        let target = if level == Some(VerifyLevel::Drill) {
            PgTarget::from_config(config)?
        } else {
            PgTarget::client_only(config)
        };
        Ok(Self {
            access: StoreAccess::from_config(config).await?,
            level,
            selection,
            target,
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
            state_dir: Some(config.state_dir.clone()),
            environment: config.environment.clone(),
            concurrency: 8,
            lock_wait: config.backup.lock_wait.0,
        })
    }

    pub async fn run(&self) -> Result<VerifyReport> {
        let mut notes = Vec::new();
        let identity = self.access.identity()?;
        let level = match (self.level, &identity) {
            (Some(VerifyLevel::Quick), _) => VerifyLevel::Quick,
            (Some(level), Some(_)) => level,
            (Some(level), None) => {
                return Err(Error::config(format!(
                    "verify --level {level} reads the backups' data and needs the private key: set \
                     [backup.encryption] identity (or use --level quick)"
                ))
                .with_key("backup.encryption.identity"));
            }
            (None, Some(_)) => VerifyLevel::Full,
            (None, None) => {
                notes.push(
                    "level quick: no identity is configured ([backup.encryption] identity), so \
                     the data cannot be read back"
                        .into(),
                );
                VerifyLevel::Quick
            }
        };
        // A shared hold: a prune cannot delete what is being read back meanwhile.
        let hold = ReadLock::acquire(
            Arc::clone(&self.access.store),
            &self.access.name_key,
            &LockRequest::new("verify", self.lock_wait, None),
        )
        .await?;
        let result = self.run_held(level, identity, notes, &hold).await;
        let released = hold.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn run_held(
        &self,
        level: VerifyLevel,
        identity: Option<Identity>,
        notes: Vec<String>,
        hold: &ReadLock,
    ) -> Result<VerifyReport> {
        let store = self.access.store.as_ref();
        let catalog = Catalog::read(store, &self.access.name_key).await?;
        let mut results = self.damaged_results(&catalog, level);
        let selected = match self.select(&catalog, &store.location()) {
            Ok(selected) => selected,
            // `verify ID` of a damaged index: its failed result is the answer.
            Err(_) if !results.is_empty() => Vec::new(),
            Err(e) => return Err(e),
        };
        let checker = Checker::new(self, identity, level).await?;
        for index in selected {
            self.cancel.check()?;
            self.progress.report(&ProgressEvent::PhaseStarted {
                phase: format!("verify {} ({level})", index.id),
                total_bytes: None,
            });
            let timer = Instant::now();
            let problems = checker.check(index).await?;
            let result = VerifyResult {
                id: index.id.clone(),
                level,
                ok: problems.is_empty(),
                problems,
                duration_ms: u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX),
            };
            // A prune that judged this verify dead may have deleted what it read: such a
            // result is not recorded.
            hold.ensure_held().await?;
            self.record(&result).await?;
            results.push(result);
        }
        Ok(VerifyReport { results, notes })
    }

    fn select<'c>(&self, catalog: &'c Catalog, store: &str) -> Result<Vec<&'c BackupIndex>> {
        match &self.selection {
            // An empty store is a failed check, not a success: a monitor must not go green.
            Selection::All if !catalog.backups.is_empty() => Ok(catalog.backups.iter().collect()),
            Selection::All | Selection::Newest => {
                catalog.backups.last().map(|b| vec![b]).ok_or_else(|| {
                    Error::new(
                        ErrorKind::CheckFailed,
                        format!(
                            "there is no backup in {store} to verify; take one with `vigia backup`"
                        ),
                    )
                })
            }
            Selection::One(id) => catalog
                .backups
                .iter()
                .find(|b| &b.id == id)
                .map(|b| vec![b])
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "there is no backup {id} in {store}; see `vigia backup list`"
                    ))
                }),
        }
    }

    /// With `--all` (or the id of one), an index that fails its mac is a failed result.
    fn damaged_results(&self, catalog: &Catalog, level: VerifyLevel) -> Vec<VerifyResult> {
        catalog
            .damaged
            .iter()
            .filter_map(|(key, problem)| {
                let id: BackupId = key
                    .strip_prefix("backups/")?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()?;
                let wanted = match &self.selection {
                    Selection::All => true,
                    Selection::One(one) => *one == id,
                    Selection::Newest => false,
                };
                wanted.then(|| VerifyResult {
                    id,
                    level,
                    ok: false,
                    problems: vec![Problem::new(key, problem)],
                    duration_ms: 0,
                })
            })
            .collect()
    }

    async fn record(&self, result: &VerifyResult) -> Result<()> {
        let at = self.clock.now();
        VerificationRecord {
            id: result.id.clone(),
            level: result.level,
            at,
            ok: result.ok,
            problems: result.problems.clone(),
        }
        .write(self.access.store.as_ref(), &self.access.name_key)
        .await?;
        if result.ok
            && let Some(dir) = &self.state_dir
            && let Err(e) = write_verify_metrics(dir, result.level, at)
        {
            tracing::warn!("verify metrics not written: {e}");
        }
        Ok(())
    }
}
