//! Vigia's health checks (DESIGN.md "Health"): every check runs concurrently under
//! `[health] timeout`, a check whose source is absent is skipped with the reason, and the run's
//! status is the worst result. `HealthRun` is what `vigia health`, the C ABI and (later)
//! deploy's gates run; its report is JSON, a monitoring-plugin line and a Prometheus textfile.
//!
//! Check names are interface (metric labels, `--only` values); see [`names`].

pub mod alerts;
mod checks;
mod heartbeat;
mod http;
pub mod names;
mod report;
mod run;
mod textfile;

pub use report::{HealthReport, plugin_line};
pub use run::{HealthRequest, HealthRun, SmokeRequest};
pub use textfile::{HEALTH_METRICS_FILE, SMOKE_METRICS_FILE};
