//! `backup.age` (the newest backup: <= 1 d ok, <= 7 d warning, else critical) and
//! `backup.verified` (the newest passed full or drill verification: <= 8 d ok, <= 31 d
//! warning, else critical; a failed latest verification is critical). From the public
//! indexes and verification records: the name key, never the identity.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::sync::OnceCell;
use vigia_backup::{Freshness, StoreAccess};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error};

use super::{result, skipped, unknown};

const DAY: i64 = 86_400;

pub(super) fn checks(config: &Config) -> Vec<Arc<dyn Check>> {
    let shared = Arc::new(Store {
        config: config.clone(),
        read: OnceCell::new(),
    });
    vec![
        Arc::new(Age(Arc::clone(&shared))),
        Arc::new(Verified(shared)),
    ]
}

/// The store, read once for both checks.
struct Store {
    config: Config,
    read: OnceCell<Result<Freshness, Error>>,
}

impl Store {
    /// Why there is nothing to read (no `[backup] store`), or what the store says.
    async fn freshness(&self) -> Option<&Result<Freshness, Error>> {
        self.config.backup.store?;
        Some(
            self.read
                .get_or_init(|| async {
                    let access = StoreAccess::from_config(&self.config).await?;
                    Freshness::read(access.store.as_ref(), &access.name_key).await
                })
                .await,
        )
    }
}

impl Store {
    /// What the store says, or the result that says why it cannot be read.
    async fn read(&self, name: &str) -> Result<&Freshness, CheckResult> {
        match self.freshness().await {
            None => Err(skipped(name, "no [backup] store is configured")),
            Some(Err(e)) => Err(unknown(name, e)),
            Some(Ok(fresh)) => Ok(fresh),
        }
    }
}

fn age_days(at: Timestamp) -> f64 {
    Timestamp::now().duration_since(at).as_secs_f64() / DAY as f64
}

fn older_than(at: Timestamp, days: i64) -> bool {
    Timestamp::now().duration_since(at) > SignedDuration::from_secs(days * DAY)
}

/// Ok up to `warning_days` old, warning up to `critical_days`, critical after.
fn by_age(at: Timestamp, warning_days: i64, critical_days: i64) -> CheckStatus {
    if older_than(at, critical_days) {
        CheckStatus::Critical
    } else if older_than(at, warning_days) {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}

struct Age(Arc<Store>);

#[async_trait]
impl Check for Age {
    fn name(&self) -> &'static str {
        "backup.age"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let fresh = match self.0.read(name).await {
            Ok(fresh) => fresh,
            Err(skipped_or_unknown) => return skipped_or_unknown,
        };
        if fresh.newest.is_none() && fresh.damaged_newer > 0 {
            return result(
                name,
                CheckStatus::Unknown,
                format!(
                    "none of the {} newest indexes authenticates with backup.name-key: is it \
                     the store's name key?",
                    fresh.damaged_newer
                ),
                json!({ "damaged_newer": fresh.damaged_newer }),
            );
        }
        let Some((id, finished)) = &fresh.newest else {
            return result(
                name,
                CheckStatus::Critical,
                "the store holds no backup",
                json!({ "damaged_newer": fresh.damaged_newer }),
            );
        };
        let status = by_age(*finished, 1, 7);
        result(
            name,
            status,
            format!("newest backup {id}, {:.1} days old", age_days(*finished)),
            json!({ "id": id, "finished_at": finished, "damaged_newer": fresh.damaged_newer }),
        )
    }
}

struct Verified(Arc<Store>);

#[async_trait]
impl Check for Verified {
    fn name(&self) -> &'static str {
        "backup.verified"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let fresh = match self.0.read(name).await {
            Ok(fresh) => fresh,
            Err(skipped_or_unknown) => return skipped_or_unknown,
        };
        let evidence = json!({
            "latest": fresh.latest_verification,
            "newest_passed": fresh.newest_passed,
        });
        if let Some(latest) = fresh.latest_verification.as_ref().filter(|r| !r.ok) {
            return result(
                name,
                CheckStatus::Critical,
                format!(
                    "the latest {} verification of {} failed: {} problems",
                    latest.level.as_str(),
                    latest.id,
                    latest.problems.len()
                ),
                evidence,
            );
        }
        let Some(passed) = &fresh.newest_passed else {
            return result(
                name,
                CheckStatus::Critical,
                "no full or drill verification has passed: run `vigia verify`",
                evidence,
            );
        };
        let status = by_age(passed.at, 8, 31);
        result(
            name,
            status,
            format!(
                "{} passed a {} verification {:.1} days ago",
                passed.id,
                passed.level.as_str(),
                age_days(passed.at)
            ),
            evidence,
        )
    }
}
