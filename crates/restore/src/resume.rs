//! An interrupted swap undone from its journal: by `vigia restore --resume`, and first thing
//! by every `vigia restore` and `restore --cleanup`. Under the store lock, which a restore
//! holds while it swaps, so a swap in progress is never taken for an interrupted one. Odoo is
//! stopped around the undo when the command manages it, and started again when vigia had
//! stopped it for the swap. Signals wait until the undo is done (core's `signals`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::progress::{NoProgress, Progress, ProgressEvent};
use vigia_core::ports::runtime::{Runtime, RuntimeAction, Service};
use vigia_core::signals::DeferredSignals;
use vigia_core::{CancelToken, Config, Error, ErrorKind, Outcome, Result};

use super::RestoreRequest;
use super::cleanup::RestoreCleanup;
use super::journal::{SwapJournal, swap_journal_path};
use super::undo::{self, Undo};
use vigia_backup::StoreAccess;
use vigia_backup::{LockRequest, StoreLock, os_lock_dir};
use vigia_pg::PgTarget;
use vigia_runtime::stack_lock::StackLock;

pub struct SwapRecovery {
    /// The store whose lock an undo takes (a prune or backup must not read a database being
    /// renamed); None for a swap another command makes under the stack lock alone (a
    /// deploy's rollback, when no store is configured).
    pub access: Option<StoreAccess>,
    pub target: PgTarget,
    /// `<state-dir>/swap-journal.json`.
    pub journal: PathBuf,
    /// Stops Odoo before the undo and starts it after; None: this command does not manage
    /// Odoo (the report says so when vigia had stopped it).
    pub runtime: Option<Arc<dyn Runtime>>,
    pub lock_wait: Duration,
    pub os_lock_dir: Option<PathBuf>,
    /// The state dir whose stack lock an undo takes; None: the caller holds it (a restore
    /// that replaces the live database takes it for its whole run).
    pub stack_lock: Option<PathBuf>,
    pub progress: Arc<dyn Progress>,
    /// Set by a deferred signal (or `vigia_ctx_cancel`); the undo finishes regardless.
    pub cancel: CancelToken,
}

impl std::fmt::Debug for SwapRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapRecovery")
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

/// The `data` of `vigia restore --resume --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeReport {
    /// Whether a swap journal was found.
    pub journal: bool,
    /// The interrupted swap and its undo; null when there was none.
    pub recovered: Option<Recovered>,
}

impl Outcome for ResumeReport {}

/// An interrupted swap, undone.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// The PostgreSQL cluster, `host:port`.
    pub cluster: String,
    pub live: String,
    pub restored: String,
    pub aside: String,
    /// The swapping process and when it started, from the journal.
    pub pid: u32,
    pub started_at: jiff::Timestamp,
    /// What the undo did, in order; empty when the swap had renamed nothing yet.
    pub steps: Vec<String>,
    /// What was checked once it was done.
    pub checked: String,
}

impl Recovered {
    /// For messages: the live database back, checked; where the restored copy is.
    pub fn summary(&self) -> String {
        format!(
            "swapped back: {}; the restored copy is {}",
            self.checked, self.restored
        )
    }
}

impl SwapRecovery {
    /// For `vigia restore --resume` (`request` must hold nothing else). Odoo is stopped and
    /// started around the undo when the config's runtime can; one that cannot be driven
    /// (compose) never stopped it for a swap.
    pub async fn from_config(config: &Config, request: &RestoreRequest) -> Result<Self> {
        let alone = RestoreRequest {
            resume: true,
            ..RestoreRequest::default()
        };
        if *request != alone {
            return Err(Error::invalid_input(
                "--resume undoes an interrupted swap and takes no other restore option",
            ));
        }
        Ok(Self {
            access: Some(StoreAccess::from_config(config).await?),
            target: PgTarget::from_config(config)?,
            journal: swap_journal_path(&config.state_dir),
            runtime: vigia_runtime::from_config(config).ok(),
            lock_wait: config.backup.lock_wait.0,
            os_lock_dir: os_lock_dir(config),
            stack_lock: Some(config.state_dir.clone()),
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
        })
    }

    /// For `restore --cleanup`, from its own settings; it does not manage Odoo, and says
    /// what it did in the log.
    pub(super) fn for_cleanup(cleanup: &RestoreCleanup) -> Self {
        Self {
            access: Some(cleanup.access.clone()),
            target: cleanup.target.clone(),
            journal: cleanup.swap_journal.clone(),
            runtime: None,
            lock_wait: cleanup.lock_wait,
            os_lock_dir: cleanup.os_lock_dir.clone(),
            stack_lock: Some(cleanup.state_dir.clone()),
            progress: Arc::new(LogWarnings),
            cancel: CancelToken::new(),
        }
    }

    /// Undoes the interrupted swap, if there is one, under the store lock.
    pub async fn run(&self) -> Result<ResumeReport> {
        if SwapJournal::read(&self.journal)?.is_none() {
            return Ok(ResumeReport {
                journal: false,
                recovered: None,
            });
        }
        // The undo changes the stack: no deploy meanwhile.
        let _stack = match &self.stack_lock {
            Some(dir) => Some(take_stack_lock(dir, "vigia restore (undoing a swap)").await?),
            None => None,
        };
        let lock = match &self.access {
            Some(access) => Some(
                StoreLock::acquire(
                    Arc::clone(&access.store),
                    &access.name_key,
                    &LockRequest::new(
                        "restore resume",
                        self.lock_wait,
                        self.os_lock_dir.as_deref(),
                    ),
                )
                .await?,
            ),
            None => None,
        };
        // Read again under the lock: the swap's own process may have ended it meanwhile.
        let result = match SwapJournal::read(&self.journal) {
            Ok(Some(journal)) => {
                async {
                    if let Some(lock) = &lock {
                        lock.ensure_held().await?;
                    }
                    self.undo(&journal).await.map(Some)
                }
                .await
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let released = match lock {
            Some(lock) => lock.release().await,
            None => Ok(()),
        };
        let recovered = result?;
        released?;
        // A signal or cancellation that waited for the undo ends the command now.
        if self.cancel.is_cancelled() {
            return Err(Error::new(
                ErrorKind::Cancelled,
                format!(
                    "cancelled{}",
                    recovered
                        .map(|r| format!(" once the interrupted swap was undone: {}", r.summary()))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(r) = &recovered {
            self.progress.report(&ProgressEvent::Message {
                text: format!(
                    "an interrupted swap (pid {}, started {}) was undone ({}): {}",
                    r.pid,
                    r.started_at,
                    if r.steps.is_empty() {
                        "nothing had been renamed yet".to_owned()
                    } else {
                        r.steps.join("; ")
                    },
                    r.summary()
                ),
            });
        }
        Ok(ResumeReport {
            journal: true,
            recovered,
        })
    }

    /// Undoes the swap of `journal` (the caller holds the store lock): Odoo stopped, the
    /// databases and folders put back and checked, the journal removed, Odoo started again
    /// when vigia had stopped it. On an error the journal is kept and the error says what
    /// really exists now.
    pub(super) async fn undo(&self, journal: &SwapJournal) -> Result<Recovered> {
        let here = SwapJournal::cluster_of(&self.target);
        if journal.cluster != here {
            return Err(Error::invalid_input(format!(
                "{} was interrupted, on another cluster than this environment's ({here}): run \
                 `vigia restore --resume` with the environment of that cluster (--env)",
                journal.describe()
            )));
        }
        let _signals = DeferredSignals::defer(&self.cancel)?;
        let mut steps = Vec::new();
        let undone = async {
            // Odoo may run on the restored copy: it lets go of it first.
            if let Some(runtime) = self.managing()
                && runtime.stop(Service::Odoo).await? == RuntimeAction::Done
            {
                steps.push("stopped Odoo".to_owned());
            }
            Undo {
                target: &self.target,
                journal,
            }
            .run()
            .await
        }
        .await;
        let (undo_steps, checked) = match undone {
            Ok(done) => done,
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "undoing {} failed ({e}); the state now: {}. The journal {} is kept: \
                         `vigia restore --resume` finishes the undo once the cause is fixed",
                        journal.describe(),
                        undo::state(&self.target, journal).await,
                        self.journal.display()
                    ),
                ));
            }
        };
        steps.extend(undo_steps);
        SwapJournal::remove(&self.journal)?;
        if journal.odoo_stopped {
            match &self.runtime {
                Some(runtime) => {
                    let started = runtime.start(Service::Odoo).await.map_err(|e| {
                        Error::new(
                            e.kind(),
                            format!(
                                "the swap was undone ({checked}), but Odoo, stopped for it, did \
                                 not start again: {e}"
                            ),
                        )
                    })?;
                    steps.push(match started {
                        RuntimeAction::Done => "started Odoo".to_owned(),
                        RuntimeAction::Skipped { reason } => {
                            format!("Odoo was stopped for the swap and is not started: {reason}")
                        }
                    });
                }
                None => steps.push(
                    "Odoo was stopped for the swap and this command does not start it: start \
                     it (`vigia restore --resume` would have)"
                        .to_owned(),
                ),
            }
        }
        Ok(Recovered {
            cluster: journal.cluster.clone(),
            live: journal.live.name.clone(),
            restored: journal.restored.name.clone(),
            aside: journal.aside.clone(),
            pid: journal.pid,
            started_at: journal.started_at,
            steps,
            checked,
        })
    }

    /// The runtime, when it can stop Odoo.
    fn managing(&self) -> Option<&Arc<dyn Runtime>> {
        self.runtime
            .as_ref()
            .filter(|r| r.kind() != RuntimeKind::None)
    }
}

/// Progress for a command that has none of its own: messages go to the log as warnings.
#[derive(Debug)]
struct LogWarnings;

impl Progress for LogWarnings {
    fn report(&self, event: &ProgressEvent) {
        if let ProgressEvent::Message { text } = event {
            tracing::warn!("{text}");
        }
    }
}

/// The stack lock for `owner`, taken off the async threads; a live holder fails it at once.
pub(crate) async fn take_stack_lock(state_dir: &Path, owner: &str) -> Result<StackLock> {
    let (dir, owner) = (state_dir.to_path_buf(), owner.to_owned());
    vigia_core::task::blocking("stack lock", move || StackLock::acquire(&dir, &owner)).await
}
