//! Vigia's restore (DESIGN.md "Data flows: Restore"): a Vigia backup or an Odoo zip restored
//! into a new database and a fresh filestore folder, checked, optionally neutralized; then
//! either left beside the live database (`--target-db NAME`) or swapped in for it, with the
//! live one kept aside and a check after the swap that swaps back on failure. A failure
//! before the swap leaves the live database untouched; nothing is ever dropped here.
//!
//! The shape: a pure [`RestorePlan`] (plan.rs) made before anything is touched; the copy
//! (copy.rs, one path for both sources: from_backup.rs, from_zip.rs); the [`Cutover`]
//! (cutover.rs: stop, swap, compare, start, health, swap back), whose swap is journaled
//! (journal.rs, swap.rs) and undone by the next restore command or `--resume` (resume.rs,
//! undo.rs); `--cleanup` (cleanup.rs).

mod checks;
mod cleanup;
mod copy;
mod cutover;
mod files;
mod from_backup;
mod from_zip;
mod job;
mod journal;
mod phases;
mod plan;
mod report;
mod request;
mod resume;
mod sessions;
mod swap;
mod swap_in;
#[cfg(test)]
mod tests;
mod undo;
mod untrusted;

use std::time::Duration;

use checks::{analyze, compare, ensure_free};
pub use cleanup::{CleanupReport, CleanupRequest, RestoreCleanup};
pub use job::RestoreJob;
use job::{Names, Restored};
pub use journal::swap_journal_path;
pub use phases::Phase;
pub use plan::{PlanInput, RestorePlan, RestoreSource};
pub use report::{PlannedRestore, RestoreReport};
pub use request::RestoreRequest;
pub use resume::{Recovered, ResumeReport, SwapRecovery};
pub use swap::Aside;
pub use swap_in::SwapIn;

/// How long Odoo may take to start and answer healthy after a swap.
pub const HEALTH_TIMEOUT: Duration = Duration::from_mins(2);
