//! The cutover: the restored copy swapped in for the live database. Odoo stopped (or, with
//! runtime `none`, other sessions refused), the swap journaled and made, the copy checked in
//! place (row counts, Odoo started and healthy), and on any failure or cancellation the swap
//! undone from its journal. Signals wait until it is done or undone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use vigia_core::config::RuntimeKind;
use vigia_core::ports::progress::{Progress, ProgressEvent};
use vigia_core::ports::runtime::{Runtime, RuntimeAction, Service};
use vigia_core::{CancelToken, Error, ErrorKind, Result};
use vigia_pg::PgTarget;
use vigia_runtime::silence::{RunSilence, SilenceFile};

use crate::journal::SwapJournal;
use crate::phases::Phases;
use crate::resume::SwapRecovery;
use crate::swap::{self, Swap};
use crate::{analyze, compare, sessions};

/// The longest a swap silences alerts: a killed restore cannot silence them for longer.
const SILENCE_FOR: Duration = Duration::from_mins(30);

/// What a cutover needs, and nothing else.
pub(crate) struct Cutover<'a> {
    pub target: &'a PgTarget,
    pub live_db: &'a str,
    pub runtime: &'a dyn Runtime,
    /// `--force-sessions`: with runtime `none`, end the other sessions instead of refusing.
    pub force_sessions: bool,
    /// `[odoo] internal-url`, where Odoo's health is checked when the runtime started it.
    pub odoo_url: Option<&'a str>,
    pub health_timeout: Duration,
    /// The swap journal, `<state-dir>/swap-journal.json`.
    pub journal: &'a Path,
    /// Alerts are silenced from Odoo's stop until the swap is checked or undone.
    pub alert_silence: Option<&'a SilenceFile>,
    /// The undo of a failed swap, with the same runtime.
    pub recovery: SwapRecovery,
    /// Odoo is started after the swap (and again when nothing was swapped). False for a
    /// deploy's rollback: which release may run on the swapped-in database is its to say.
    pub start_odoo: bool,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancelToken,
}

impl Cutover<'_> {
    /// Odoo stopped, the journal written, the swap, the check after it (row counts; Odoo
    /// started and, when the runtime started it, healthy), the journal removed. A failed or
    /// cancelled swap or check is undone from the journal; signals wait until then.
    pub async fn run(
        &self,
        swap: &Swap<'_>,
        expected: Option<&BTreeMap<String, u64>>,
        phases: &mut Phases<'_>,
    ) -> Result<()> {
        self.cancel.check()?;
        let silence = self.alert_silence.and_then(|file| {
            let reason = format!("vigia restore: {} is swapped", self.live_db);
            RunSilence::begin(file, SILENCE_FOR, &reason, "vigia restore")
                .inspect_err(|e| tracing::warn!("alerts are not silenced during the swap: {e}"))
                .ok()
        });
        let result = self.swap_checked(swap, expected, phases).await;
        if let Some(silence) = silence
            && let Err(e) = silence.end()
        {
            tracing::warn!("the restore's alert silence was not ended (it ends by itself): {e}");
        }
        result
    }

    async fn swap_checked(
        &self,
        swap: &Swap<'_>,
        expected: Option<&BTreeMap<String, u64>>,
        phases: &mut Phases<'_>,
    ) -> Result<()> {
        self.refuse_sessions(Some(swap.restored)).await?;
        let odoo_stopped = self.odoo(false).await?;
        let _signals = vigia_core::signals::DeferredSignals::defer(self.cancel)?;
        let journal = match swap.journal(odoo_stopped).await {
            Ok(journal) => journal,
            Err(e) => return Err(self.not_swapped(e, odoo_stopped).await),
        };
        if let Err(e) = journal.write(self.journal) {
            return Err(self.not_swapped(e, odoo_stopped).await);
        }
        let swapped = async {
            swap::forward(self.target, &journal).await?;
            // A signal or cancellation during the renames counts once they are all done.
            self.cancel.check()
        }
        .await;
        let (checked, in_place) = match swapped {
            Ok(()) => {
                phases.start("check after the swap");
                let checked = tokio::select! {
                    checked = self.check_after_swap(expected) => checked,
                    () = self.cancel.cancelled() => self.cancel.check(),
                };
                (checked, true)
            }
            Err(e) => (Err(e), false),
        };
        let Err(e) = checked else {
            return SwapJournal::remove(self.journal).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "the restore is swapped in and checked, but its journal could not be \
                         removed ({e}): remove it by hand, or the next restore command will \
                         undo the swap"
                    ),
                )
            });
        };
        let what = match (in_place, e.kind()) {
            (_, ErrorKind::Cancelled) => "cancelled during the swap".to_owned(),
            (true, _) => format!("the check after the swap failed ({e})"),
            (false, _) => format!("the swap failed ({e})"),
        };
        let undone = match self.recovery.undo(&journal).await {
            Ok(recovered) => recovered.summary(),
            Err(undo) => undo.to_string(),
        };
        Err(Error::new(e.kind(), format!("{what}; {undone}")))
    }

    /// Nothing was renamed: Odoo started again if it was stopped for the swap.
    async fn not_swapped(&self, e: Error, odoo_stopped: bool) -> Error {
        if odoo_stopped
            && self.start_odoo
            && let Err(start) = self.odoo(true).await
        {
            return Error::new(
                e.kind(),
                format!("{e}; nothing was swapped, but Odoo did not start again: {start}"),
            );
        }
        e
    }

    /// The restored copy in place: its row counts (when `expected` has them), Odoo started,
    /// and healthy.
    async fn check_after_swap(&self, expected: Option<&BTreeMap<String, u64>>) -> Result<()> {
        vigia_core::failpoint::hit("restore.after_swap")?;
        if let Some(expected) = expected {
            let counts = analyze(self.target, self.live_db).await?;
            compare(self.live_db, &counts, expected, "the restored copy")?;
        }
        if !self.start_odoo {
            return Ok(());
        }
        self.odoo(true).await?;
        self.odoo_healthy().await
    }

    /// With runtime `none` (vigia cannot stop Odoo), refuses while other sessions are
    /// connected to the live database, unless `force_sessions`.
    pub async fn refuse_sessions(&self, copy: Option<&str>) -> Result<()> {
        if self.runtime.kind() != RuntimeKind::None || self.force_sessions {
            return Ok(());
        }
        sessions::refuse_others(self.target, self.live_db, copy).await
    }

    /// Stops (`start` false) or starts Odoo through the runtime; with `kind = "none"` says
    /// so and goes on. True when the runtime did it.
    async fn odoo(&self, start: bool) -> Result<bool> {
        let action = if start {
            self.runtime.start(Service::Odoo).await?
        } else {
            self.runtime.stop(Service::Odoo).await?
        };
        let RuntimeAction::Skipped { reason } = action else {
            return Ok(true);
        };
        let verb = if start { "started" } else { "stopped" };
        self.progress.report(&ProgressEvent::Message {
            text: format!("Odoo was not {verb} by vigia: {reason}"),
        });
        Ok(false)
    }

    /// When the runtime started Odoo: its health at the internal URL, within the timeout.
    async fn odoo_healthy(&self) -> Result<()> {
        if self.runtime.kind() == RuntimeKind::None {
            return Ok(());
        }
        let Some(url) = self.odoo_url else {
            self.progress.report(&ProgressEvent::Message {
                text: "Odoo's health after the swap was not checked: set [odoo] internal-url"
                    .into(),
            });
            return Ok(());
        };
        vigia_odoo::health::wait_healthy(url, self.health_timeout).await
    }
}
