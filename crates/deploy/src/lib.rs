//! Vigia's deploys (DESIGN.md "Workspace"): what a release holds (its modules' hashes and
//! versions), what deploying it changes (the installed modules to upgrade, the new ones, the
//! downgrades Odoo cannot make), the plan made of them before anything is touched, and the
//! journaled executor with its rollback, its gate and the audit log.

pub mod audit;
pub mod changes;
pub mod executor;
pub mod gate;
pub mod journal;
pub mod plan;
pub mod planner;
pub mod release;
pub mod report;
mod request;
mod rollback;

pub use changes::{Downgrade, ModuleChanges, downgrades, module_changes};
pub use executor::DeployJob;
pub use plan::{DeployPlan, PlanInput, plan};
pub use release::ReleaseModules;
pub use report::{DeployReport, RollbackReport, StepReport};
pub use request::{DeployData, DeployHistory, DeployRequest, RollbackRequest, history};
