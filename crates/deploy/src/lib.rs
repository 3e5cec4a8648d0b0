//! Vigia's deploys (DESIGN.md "Workspace"): what a release holds (its modules' hashes and
//! versions), what deploying it changes (the installed modules to upgrade, the new ones, the
//! downgrades Odoo cannot make), where releases come from (folders or images), the plan
//! made of them before anything is touched, and the
//! journaled executor with its rollback, its gate and the audit log.

mod after;
pub mod audit;
pub mod changes;
mod commands;
pub mod executor;
mod forward;
pub mod freeze;
pub mod gate;
mod hooks;
pub mod journal;
mod maintenance;
pub mod plan;
pub mod planner;
mod prepare;
pub mod release;
pub mod report;
mod request;
mod resume;
mod rollback;
pub mod source;

pub use changes::{Downgrade, ModuleChanges, downgrades, module_changes};
pub use executor::DeployJob;
pub use plan::{DeployPlan, PlanInput, plan};
pub use release::ReleaseModules;
pub use report::{DeployReport, RollbackReport, StepReport};
pub use request::{
    DeployData, DeployHistory, DeployRequest, RollbackRequest, history, lock, performer, unlock,
};
