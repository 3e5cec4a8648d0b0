//! A copy swapped in for the live database by another command: a deploy's rollback after an
//! upgrade puts its pre-deploy copy back, the upgraded database kept aside. The same cutover
//! as a restore's (journaled swap, undone on failure), except that Odoo is
//! neither started after it nor by its undo: the caller switches the release that matches
//! the database in place first. The filestore is not swapped (the copy shares it). The
//! caller holds the stack lock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vigia_core::ports::progress::Progress;
use vigia_core::ports::runtime::Runtime;
use vigia_core::{CancelToken, Config, Result};
use vigia_pg::PgTarget;

use crate::HEALTH_TIMEOUT;
use crate::cutover::Cutover;
use crate::journal::swap_journal_path;
use crate::phases::Phases;
use crate::resume::SwapRecovery;
use crate::swap::Swap;

/// What to swap, and with what.
pub struct SwapIn {
    pub target: PgTarget,
    pub live: String,
    /// The copy that takes the live one's name.
    pub copy: String,
    /// The name the live database is kept under.
    pub aside: String,
    pub runtime: Arc<dyn Runtime>,
    pub odoo_url: Option<String>,
    pub health_timeout: Duration,
    pub journal: PathBuf,
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
}

impl std::fmt::Debug for SwapIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapIn")
            .field("live", &self.live)
            .field("copy", &self.copy)
            .field("aside", &self.aside)
            .finish_non_exhaustive()
    }
}

impl SwapIn {
    pub fn from_config(
        config: &Config,
        copy: &str,
        aside: &str,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Self> {
        Ok(Self {
            target: PgTarget::from_config(config)?,
            live: config.odoo.database.clone(),
            copy: copy.to_owned(),
            aside: aside.to_owned(),
            runtime,
            odoo_url: config.odoo.internal_url().map(str::to_owned),
            health_timeout: HEALTH_TIMEOUT,
            journal: swap_journal_path(&config.state_dir),
            progress: Arc::new(vigia_core::ports::progress::NoProgress),
            cancel: CancelToken::new(),
        })
    }

    /// Swaps the copy in: Odoo stopped, the swap journaled and made; any failure undoes the
    /// swap. Odoo is left stopped either way.
    pub async fn run(&self) -> Result<()> {
        let recovery = SwapRecovery {
            access: None,
            target: self.target.clone(),
            journal: self.journal.clone(),
            // The undo starts nothing: the release in place matches the upgraded database.
            runtime: None,
            lock_wait: Duration::ZERO,
            os_lock_dir: None,
            stack_lock: None,
            progress: Arc::clone(&self.progress),
            cancel: self.cancel.clone(),
        };
        let cutover = Cutover {
            target: &self.target,
            live_db: &self.live,
            runtime: self.runtime.as_ref(),
            force_sessions: false,
            odoo_url: self.odoo_url.as_deref(),
            health_timeout: self.health_timeout,
            journal: &self.journal,
            alert_silence: None,
            recovery,
            start_odoo: false,
            progress: self.progress.as_ref(),
            cancel: &self.cancel,
        };
        let swap = Swap {
            target: &self.target,
            live: &self.live,
            restored: &self.copy,
            aside: &self.aside,
            filestore: None,
        };
        let mut phases = Phases::new(self.progress.as_ref());
        // No row counts: PostgreSQL made the copy itself, and the swap journal's oids prove
        // which database is which (counting would read the whole database twice).
        cutover.run(&swap, None, &mut phases).await
    }
}
