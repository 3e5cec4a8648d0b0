//! `odoo.cron` (active scheduled actions late by > 1 h warning, > 24 h critical) and
//! `odoo.mail` (e-mails in `exception`: > 0 warning, >= 20 critical), from Odoo's database.
//! A missing table is skipped: that part of Odoo is not installed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::{Pg, above, result, skipped, unknown};

pub(super) fn checks(pg: &Arc<Pg>) -> Vec<Arc<dyn Check>> {
    vec![
        Arc::new(Cron(Arc::clone(pg))),
        Arc::new(Mail(Arc::clone(pg))),
    ]
}

struct Cron(Arc<Pg>);

#[async_trait]
impl Check for Cron {
    fn name(&self) -> &'static str {
        "odoo.cron"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let (_slot, client) = match self.0.session(name, CheckStatus::Unknown).await {
            Ok(session) => session,
            Err(failed) => return failed,
        };
        match vigia_odoo::queues::late_crons(&client).await {
            Ok(None) => skipped(name, "ir_cron is not in the database: not an Odoo database"),
            Ok(Some(late)) => {
                let status = if late.over_a_day > 0 {
                    CheckStatus::Critical
                } else if late.over_an_hour > 0 {
                    CheckStatus::Warning
                } else {
                    CheckStatus::Ok
                };
                let summary = if late.over_an_hour == 0 {
                    "no scheduled action is late".to_owned()
                } else {
                    format!(
                        "{} scheduled actions late by over an hour ({} by over a day): {}",
                        late.over_an_hour,
                        late.over_a_day,
                        late.latest.join(", ")
                    )
                };
                result(
                    name,
                    status,
                    summary,
                    json!({
                        "late_over_an_hour": late.over_an_hour,
                        "late_over_a_day": late.over_a_day,
                        "latest": late.latest,
                    }),
                )
            }
            Err(e) => unknown(name, &e),
        }
    }
}

struct Mail(Arc<Pg>);

#[async_trait]
impl Check for Mail {
    fn name(&self) -> &'static str {
        "odoo.mail"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let (_slot, client) = match self.0.session(name, CheckStatus::Unknown).await {
            Ok(session) => session,
            Err(failed) => return failed,
        };
        match vigia_odoo::queues::failed_mails(&client).await {
            Ok(None) => skipped(
                name,
                "mail_mail is not in the database: mail is not installed",
            ),
            Ok(Some(failed)) => result(
                name,
                above(failed, 1, 20),
                format!("{failed} e-mails Odoo gave up sending"),
                json!({ "exception": failed }),
            ),
            Err(e) => unknown(name, &e),
        }
    }
}
