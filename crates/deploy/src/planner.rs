//! The plan's input, read from where it lives: the runtime's current release, the releases'
//! modules (on disk, or inside their images), and the database's installed modules, series and recorded hashes. Reads
//! only: a plan has no side effect.

use std::collections::BTreeMap;
use std::sync::Arc;

use vigia_core::ports::runtime::Runtime;
use vigia_core::{Config, Error, Result};
use vigia_odoo::modules::applied_hashes;
use vigia_odoo::schema::{base_version, module_versions};
use vigia_pg::PgTarget;
use vigia_runtime::releases::ReleaseRef;

use crate::plan::{DeployPlan, PlanInput, plan};
use crate::release::ReleaseModules;
use crate::source::Source;

/// What a deploy of this config reads to plan.
pub struct Planner {
    pub source: Source,
    pub runtime: Arc<dyn Runtime>,
    pub target: PgTarget,
    pub database: String,
    pub upgrade_command: String,
    /// `[backup]` names a store: a backup comes first.
    pub backup: bool,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("source", &self.source)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Planner {
    /// From the config: `[deploy]` and a runtime that has releases.
    pub fn from_config(config: &Config) -> Result<Self> {
        let (source, runtime) = Source::from_config(config)?;
        Ok(Self {
            source,
            runtime,
            target: PgTarget::from_config(config)?,
            database: config.odoo.database.clone(),
            upgrade_command: config.odoo.upgrade_command.clone(),
            backup: config.backup.store.is_some(),
        })
    }

    /// The plan for deploying `to` as deploy `id`.
    pub async fn plan(&self, id: &str, to: &str) -> Result<DeployPlan> {
        let to = self.source.parse(to)?;
        let from = self.current().await?;
        if !self.source.exists(&to).await? {
            return Err(Error::invalid_input(format!(
                "release {to} is not there: {}",
                self.source.missing_hint(&to)
            )));
        }
        let db = self.read_database().await?;
        // The running release's modules stand in for the hashes the database never recorded;
        // when it did, they are not read (under compose, each read is a one-off container).
        let (from_modules, to_modules) = if db.applied.is_some() {
            (ReleaseModules::default(), self.source.modules(&to).await?)
        } else {
            tokio::try_join!(self.source.modules(&from), self.source.modules(&to))?
        };
        plan(&PlanInput {
            id,
            from: &from,
            to: &to,
            from_modules: &from_modules,
            to_modules: &to_modules,
            applied: db.applied.as_ref(),
            installed: &db.installed,
            serie: &db.serie,
            database: &self.database,
            upgrade_command: &self.upgrade_command,
            release_place: &self.source.place(&to),
            backup: self.backup,
        })
    }

    /// The release that runs; none yet is refused with how to mark one.
    async fn current(&self) -> Result<ReleaseRef> {
        let current = self.runtime.current_release().await?.ok_or_else(|| {
            Error::config(format!(
                "no release is marked current: mark the one that runs now with {}",
                self.source.mark_hint()
            ))
            .with_key("deploy.root")
        })?;
        self.source.parse(&current)
    }

    async fn read_database(&self) -> Result<DatabaseState> {
        let client = self.target.connect(&self.database).await?;
        let base = base_version(&client).await?.ok_or_else(|| {
            Error::invalid_input(format!(
                "database {} has no installed base module: not an Odoo database",
                self.database
            ))
        })?;
        let serie = base.split('.').take(2).collect::<Vec<_>>().join(".");
        Ok(DatabaseState {
            installed: module_versions(&client).await?,
            applied: applied_hashes(&client).await?,
            serie,
        })
    }
}

struct DatabaseState {
    installed: BTreeMap<String, String>,
    applied: Option<BTreeMap<String, String>>,
    serie: String,
}
