//! Vigia's deploys (DESIGN.md "Workspace"): what a release holds (its modules' hashes and
//! versions) and what deploying it changes: the installed modules to upgrade, the new ones,
//! and the downgrades Odoo cannot make; and the plan made of them before anything is
//! touched. The journaled executor, rollback and history build on these.

pub mod changes;
pub mod journal;
pub mod plan;
pub mod planner;
pub mod release;

pub use changes::{Downgrade, ModuleChanges, downgrades, module_changes};
pub use plan::{DeployPlan, PlanInput, plan};
pub use release::ReleaseModules;
