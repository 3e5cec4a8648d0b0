//! `odoo.log`: ERROR and CRITICAL records newer than `[health] log-window` among the last
//! 1000 lines (read from the end, at most 1 MiB) of `[health] log-file`, else the runtime's
//! log: 0 ok, 1-9 warning, 10 or more critical, the first three as evidence.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::check::{Check, CheckResult};
use vigia_core::ports::runtime::{Runtime, Service};
use vigia_core::{Config, Error, Result};

use super::{above, result, skipped, unknown};

const NAME: &str = "odoo.log";
const LINES: usize = 1000;
const WINDOW_BYTES: u64 = 1 << 20;

pub(super) fn check(
    config: &Config,
    runtime: &std::result::Result<Arc<dyn Runtime>, String>,
) -> Arc<dyn Check> {
    let source = match (&config.health.log_file, config.runtime.kind) {
        (Some(file), _) => Source::File(file.clone()),
        (None, RuntimeKind::None) => {
            Source::Absent("no [health] log-file, and runtime none has no logs".to_owned())
        }
        (None, _) => match runtime {
            Ok(runtime) => Source::Runtime(Arc::clone(runtime)),
            Err(why) => Source::Absent(why.clone()),
        },
    };
    Arc::new(OdooLog {
        source,
        window: config.health.log_window.0,
    })
}

enum Source {
    File(PathBuf),
    Runtime(Arc<dyn Runtime>),
    Absent(String),
}

struct OdooLog {
    source: Source,
    window: std::time::Duration,
}

impl OdooLog {
    async fn lines(&self) -> Option<Result<Vec<String>>> {
        match &self.source {
            Source::Absent(_) => None,
            Source::Runtime(runtime) => Some(runtime.logs(Service::Odoo, LINES).await),
            Source::File(file) => {
                let file = file.clone();
                Some(
                    vigia_core::task::blocking("log", move || {
                        vigia_core::disk::tail_lines(&file, WINDOW_BYTES, LINES)
                            .map_err(|e| Error::io("read", &file, e))
                    })
                    .await,
                )
            }
        }
    }
}

#[async_trait]
impl Check for OdooLog {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let lines = match self.lines().await {
            None => {
                let Source::Absent(why) = &self.source else {
                    unreachable!("only an absent source has no lines")
                };
                return skipped(NAME, why.clone());
            }
            Some(Err(e)) => return unknown(NAME, &e),
            Some(Ok(lines)) => lines,
        };
        let window = SignedDuration::try_from(self.window).unwrap_or(SignedDuration::MAX);
        let since = Timestamp::now()
            .checked_sub(window)
            .unwrap_or(Timestamp::MIN);
        let found = vigia_odoo::log::errors_since(&lines, since);
        let count = i64::try_from(found.count).unwrap_or(i64::MAX);
        result(
            NAME,
            above(count, 1, 10),
            format!(
                "{} ERROR or CRITICAL records in the last {}",
                found.count,
                vigia_core::config::HumanDuration(self.window)
            ),
            json!({ "errors": found.count, "first": found.first, "lines_read": lines.len() }),
        )
    }
}
