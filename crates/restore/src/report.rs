//! What a restore answers: its report, or with `--dry-run` its plan.

use std::path::PathBuf;

use serde::Serialize;
use vigia_backup::format::BackupId;
use vigia_core::Outcome;
use vigia_odoo::{NeutralizeReport, OdooZipInfo};

use crate::resume::Recovered;
use crate::{Aside, Phase, RestorePlan};

/// The `data` of `vigia restore --dry-run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRestore {
    pub plan: RestorePlan,
}

impl Outcome for PlannedRestore {}

/// The `data` of `vigia restore --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The backup restored; null for an Odoo zip.
    pub id: Option<BackupId>,
    /// The Odoo zip restored, as its manifest describes it; null for a backup.
    pub odoo_zip: Option<OdooZipInfo>,
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
    /// An interrupted swap this restore undid before it started; null when there was none.
    pub recovered: Option<Recovered>,
}

impl Outcome for RestoreReport {}
