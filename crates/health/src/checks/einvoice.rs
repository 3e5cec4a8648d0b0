//! `einvoice.documents` (failed within `failed-window`, stuck for longer than `stuck-after`,
//! accepted without their e-mail) and `einvoice.queues` (the Hacienda retry queue's and the
//! POS offline queue's backlogs), with `[einvoice]`'s names and thresholds: warning above the
//! first, critical above the second (the module's own). Without `[einvoice]`, or without the
//! module's tables, skipped.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::config::EinvoiceConfig;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_odoo::einvoice::{DocumentQuery, backlog, document_counts};

use super::{Pg, result, skipped, unknown};

const NOT_CONFIGURED: &str = "[einvoice] is not configured";
const NOT_INSTALLED: &str = "l10n_cr_einvoice not installed";

pub(super) fn checks(pg: &Arc<Pg>, config: Option<&EinvoiceConfig>) -> Vec<Arc<dyn Check>> {
    let config = config.cloned().map(Arc::new);
    vec![
        Arc::new(Documents {
            pg: Arc::clone(pg),
            config: config.clone(),
        }),
        Arc::new(Queues {
            pg: Arc::clone(pg),
            config,
        }),
    ]
}

/// The worse of `value` against (warning, critical), strictly above each.
fn over(value: i64, warning: i64, critical: i64) -> CheckStatus {
    if value > critical {
        CheckStatus::Critical
    } else if value > warning {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}

/// The section and a session, or the result that says why there is none.
async fn session<'a>(
    pg: &'a Pg,
    config: Option<&'a Arc<EinvoiceConfig>>,
    name: &str,
) -> Result<
    (
        &'a EinvoiceConfig,
        tokio::sync::SemaphorePermit<'a>,
        tokio_postgres::Client,
    ),
    CheckResult,
> {
    let Some(config) = config else {
        return Err(skipped(name, NOT_CONFIGURED));
    };
    let (slot, client) = pg.session(name, CheckStatus::Unknown).await?;
    Ok((config, slot, client))
}

struct Documents {
    pg: Arc<Pg>,
    config: Option<Arc<EinvoiceConfig>>,
}

#[async_trait]
impl Check for Documents {
    fn name(&self) -> &'static str {
        "einvoice.documents"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let (c, _slot, client) = match session(&self.pg, self.config.as_ref(), name).await {
            Ok(ready) => ready,
            Err(skipped_or_failed) => return skipped_or_failed,
        };
        let query = DocumentQuery {
            table: &c.documents_table,
            failed_states: &c.failed_states,
            stuck_states: &c.stuck_states,
            failed_window_s: c.failed_window.0.as_secs_f64(),
            stuck_after_s: c.stuck_after.0.as_secs_f64(),
        };
        let counts = match document_counts(&client, &query).await {
            Ok(Some(counts)) => counts,
            Ok(None) => return skipped(name, NOT_INSTALLED),
            Err(e) => return unknown(name, &e),
        };
        let status = over(counts.failed, c.failed_warning, c.failed_critical)
            .max(over(counts.stuck, c.stuck_warning, c.stuck_critical))
            .max(over(
                counts.email_backlog,
                c.email_backlog_warning,
                c.email_backlog_critical,
            ));
        result(
            name,
            status,
            format!(
                "{} failed in the last {}, {} stuck for over {}, {} accepted without their e-mail",
                counts.failed, c.failed_window, counts.stuck, c.stuck_after, counts.email_backlog
            ),
            json!({
                "failed": counts.failed,
                "stuck": counts.stuck,
                "email_backlog": counts.email_backlog,
            }),
        )
    }
}

struct Queues {
    pg: Arc<Pg>,
    config: Option<Arc<EinvoiceConfig>>,
}

#[async_trait]
impl Check for Queues {
    fn name(&self) -> &'static str {
        "einvoice.queues"
    }

    async fn run(&self) -> CheckResult {
        let name = self.name();
        let (c, _slot, client) = match session(&self.pg, self.config.as_ref(), name).await {
            Ok(ready) => ready,
            Err(skipped_or_failed) => return skipped_or_failed,
        };
        let retry = backlog(&client, &c.retry_queue_table, &["pending", "processing"]).await;
        let pos = backlog(&client, &c.pos_queue_table, &["pending", "syncing"]).await;
        let (retry, pos) = match (retry, pos) {
            (Err(e), _) | (_, Err(e)) => return unknown(name, &e),
            (Ok(None), Ok(None)) => return skipped(name, NOT_INSTALLED),
            (Ok(retry), Ok(pos)) => (retry, pos),
        };
        let status = over(
            retry.unwrap_or(0),
            c.retry_backlog_warning,
            c.retry_backlog_critical,
        )
        .max(over(
            pos.unwrap_or(0),
            c.pos_backlog_warning,
            c.pos_backlog_critical,
        ));
        let shown = |n: Option<i64>| n.map_or_else(|| "no table".to_owned(), |n| n.to_string());
        result(
            name,
            status,
            format!(
                "retry queue backlog {}, POS offline backlog {}",
                shown(retry),
                shown(pos)
            ),
            json!({ "retry_backlog": retry, "pos_backlog": pos }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_strictly_above_as_the_module_says() {
        assert_eq!(over(5, 5, 10), CheckStatus::Ok);
        assert_eq!(over(6, 5, 10), CheckStatus::Warning);
        assert_eq!(over(10, 5, 10), CheckStatus::Warning);
        assert_eq!(over(11, 5, 10), CheckStatus::Critical);
    }
}
