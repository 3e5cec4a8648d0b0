//! What a restore is asked: the CLI's flags, the C ABI's `args_json`.

use std::path::PathBuf;

use serde::Deserialize;

/// What to restore and how: the CLI's flags, the C ABI's `args_json`. Unset fields take
/// the config's values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is a flag of the command"
)]
pub struct RestoreRequest {
    /// The backup, as `vigia backup list` shows it.
    pub id: Option<String>,
    /// Or a zip made by Odoo's database manager.
    pub from_odoo_zip: Option<PathBuf>,
    /// Restore beside the live database, into this new one.
    pub target_db: Option<String>,
    pub confirm: Option<String>,
    pub accept_einvoice_loss: bool,
    /// With `[runtime] kind = "none"`, swap even though other sessions are connected to the
    /// live database, ending them.
    pub force_sessions: bool,
    pub neutralize: bool,
    /// Run an Odoo zip's SQL with the configured role's rights (see [`RestoreJob::trust_zip`]).
    pub trust_zip: bool,
    /// `pg_restore -j` instead of `[restore] jobs`.
    pub jobs: Option<u32>,
    /// `pg_restore --role` (psql `SET ROLE` for a zip) instead of `[restore] role`.
    pub role: Option<String>,
    /// `--resume`: nothing restored; an interrupted swap undone from its journal
    /// (`SwapRecovery`).
    pub resume: bool,
    /// `--dry-run`: nothing touched; the plan is the result ([`RestoreJob::plan`]).
    pub dry_run: bool,
}
