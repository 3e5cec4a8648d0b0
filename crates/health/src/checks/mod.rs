//! The checks, and what they share: the PostgreSQL target (at most two sessions at once, as
//! `vigia-health`) and the result helpers.

mod backups;
mod disk;
mod einvoice;
mod hacienda;
mod memory;
mod odoo_db;
mod odoo_http;
mod odoo_log;
mod p12;
mod postgres;
mod redis;
mod services;
pub(crate) mod smoke;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};
use vigia_pg::PgTarget;

/// Sessions a health run may hold at once.
const PG_SESSIONS: usize = 2;
const APP_NAME: &str = "vigia-health";

/// What the database checks share.
pub(crate) struct Pg {
    config: Config,
    /// The target, made once (resolving the password may run a `cmd:` secret) off the
    /// runtime's threads, or why there is none.
    target: OnceCell<std::result::Result<PgTarget, Error>>,
    pub database: String,
    slots: Semaphore,
    /// A statement or a lock wait longer than the check's budget is ended by the server, so
    /// that a session abandoned at the timeout does not stay queued behind a lock.
    budget: Duration,
}

impl Pg {
    fn from_config(config: &Config) -> Self {
        Self {
            config: config.clone(),
            target: OnceCell::new(),
            database: config.odoo.database.clone(),
            slots: Semaphore::new(PG_SESSIONS),
            budget: config.health.timeout.0,
        }
    }

    /// A session on Odoo's database, holding one of the run's two slots while it lives. A
    /// target that cannot be made (a password that does not resolve) is unknown; a server
    /// that cannot be reached is `unreachable` (critical for `postgres`, unknown for the
    /// checks that only read through it).
    pub async fn session(
        &self,
        name: &str,
        unreachable: CheckStatus,
    ) -> std::result::Result<(SemaphorePermit<'_>, tokio_postgres::Client), CheckResult> {
        let target = self
            .target
            .get_or_init(|| {
                let config = self.config.clone();
                vigia_core::task::blocking("health", move || PgTarget::from_config(&config))
            })
            .await;
        let target = target.as_ref().map_err(|e| unknown(name, e))?;
        self.connect(target)
            .await
            .map_err(|e| result(name, unreachable, e.message(), Value::Null))
    }

    async fn connect(
        &self,
        target: &PgTarget,
    ) -> Result<(SemaphorePermit<'_>, tokio_postgres::Client)> {
        let permit = self
            .slots
            .acquire()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        let client = target.connect_as(&self.database, APP_NAME).await?;
        let ms = self.budget.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}"
            ))
            .await
            .map_err(|e| vigia_pg::db_error("cannot limit the session", &e))?;
        Ok((permit, client))
    }
}

/// Every check the config allows, in report order (`names::FIXED`, then the filesystems).
pub(crate) fn all(config: &Config) -> Result<Vec<Arc<dyn Check>>> {
    let pg = Arc::new(Pg::from_config(config));
    let mut checks: Vec<Arc<dyn Check>> = Vec::new();
    // One runtime for the checks that ask it (service states, Odoo's log).
    let runtime = vigia_runtime::from_config(config).map_err(|e| e.message().to_owned());
    checks.extend(services::checks(config, &runtime));
    checks.extend(odoo_http::checks(config)?);
    checks.push(tls::check(config));
    checks.push(Arc::new(postgres::Postgres(Arc::clone(&pg))));
    checks.push(Arc::new(memory::Memory {
        runtime: runtime.as_ref().ok().map(Arc::clone),
    }));
    checks.extend(backups::checks(config));
    checks.push(redis::check(config));
    checks.push(odoo_log::check(config, &runtime));
    checks.extend(odoo_db::checks(&pg));
    checks.extend(einvoice::checks(&pg, config.einvoice.as_ref()));
    checks.push(p12::check(config, &pg));
    checks.push(hacienda::check(config, &pg)?);
    checks.extend(disk::checks(config));
    Ok(checks)
}

pub(crate) fn result(
    name: &str,
    status: CheckStatus,
    summary: impl Into<String>,
    evidence: Value,
) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status,
        summary: summary.into(),
        evidence,
        duration_ms: 0,
    }
}

pub(crate) fn skipped(name: &str, reason: impl Into<String>) -> CheckResult {
    result(name, CheckStatus::Skipped, reason, Value::Null)
}

/// Whether a per-item check should look at `item` (`--only p12:1` names `1`; none: all).
pub(crate) fn wanted(items: &[String], item: &str) -> bool {
    items.is_empty() || items.iter().any(|i| i == item)
}

/// Unknown for each item `--only` named that the check did not find.
pub(crate) fn not_found(family: &str, items: &[String], found: &[CheckResult]) -> Vec<CheckResult> {
    items
        .iter()
        .filter(|i| !found.iter().any(|r| r.name == format!("{family}:{i}")))
        .map(|i| {
            result(
                &format!("{family}:{i}"),
                CheckStatus::Unknown,
                format!("no company {i} with the e-invoicing module configured"),
                Value::Null,
            )
        })
        .collect()
}

/// The worst of a per-item check's results, for callers of `run`.
pub(crate) fn worst(family: &str, results: Vec<CheckResult>) -> CheckResult {
    results
        .into_iter()
        .max_by_key(|r| r.status)
        .unwrap_or_else(|| skipped(family, "nothing to check"))
}

/// A check that could not measure: unknown, saying why.
pub(crate) fn unknown(name: &str, e: &Error) -> CheckResult {
    result(name, CheckStatus::Unknown, e.message(), Value::Null)
}

/// The status of `value` against thresholds where higher is worse.
pub(crate) fn above<T: PartialOrd + Copy>(value: T, warning: T, critical: T) -> CheckStatus {
    if value >= critical {
        CheckStatus::Critical
    } else if value >= warning {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are interface: every check the run builds has one of them, in their order.
    #[test]
    fn the_checks_are_the_named_ones_in_order() {
        let config = vigia_core::ConfigSource::from_text("[odoo]\ndatabase = \"odoo\"\n", None)
            .unwrap()
            .load(None)
            .unwrap();
        let names: Vec<String> = all(&config)
            .unwrap()
            .iter()
            .map(|c| c.name().to_owned())
            .filter(|n| !n.starts_with(crate::names::DISK))
            .collect();
        assert_eq!(names, crate::names::FIXED);
    }
}
