//! `memory`: available memory and swap in use, from `/proc/meminfo`, and Odoo's resident
//! memory (its workers included) when the runtime knows its pid.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::meminfo::Meminfo;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::ports::runtime::{Runtime, Service};

use super::{result, unknown};

pub(super) struct Memory {
    /// The runtime that may know Odoo's pid (None: it could not be built).
    pub runtime: Option<Arc<dyn Runtime>>,
}

const NAME: &str = "memory";

#[async_trait]
impl Check for Memory {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let mut result = match Meminfo::read() {
            Ok(m) => judge(&m),
            Err(e) => return unknown(NAME, &e),
        };
        let pid = match &self.runtime {
            Some(runtime) => runtime.main_pid(Service::Odoo).await,
            None => None,
        };
        if let Some(pid) = pid {
            let rss = vigia_core::process::group_rss_bytes(pid);
            result.summary = format!(
                "{}; Odoo (pid {pid} and its workers) uses {:.0} MiB",
                result.summary,
                rss as f64 / 1_048_576.0
            );
            result.evidence["odoo_pid"] = pid.into();
            result.evidence["odoo_rss_bytes"] = rss.into();
        }
        result
    }
}

/// Available < 10% warning, < 5% critical; swap used > 50% warning.
fn judge(m: &Meminfo) -> CheckResult {
    let available = percent(m.available, m.total);
    let swap_used = percent(m.swap_total - m.swap_free.min(m.swap_total), m.swap_total);
    let mut status = if available < 5.0 {
        CheckStatus::Critical
    } else if available < 10.0 {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    };
    if swap_used > 50.0 {
        status = status.max(CheckStatus::Warning);
    }
    result(
        NAME,
        status,
        format!("{available:.1}% of memory available, {swap_used:.1}% of swap used"),
        json!({
            "total_bytes": m.total * 1024,
            "available_bytes": m.available * 1024,
            "swap_total_bytes": m.swap_total * 1024,
            "swap_used_bytes": (m.swap_total - m.swap_free.min(m.swap_total)) * 1024,
        }),
    )
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 * 100.0 / whole as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(available: u64, swap_free: u64) -> Meminfo {
        Meminfo {
            total: 1000,
            available,
            swap_total: 100,
            swap_free,
        }
    }

    #[test]
    fn thresholds_follow_available_memory_and_swap() {
        assert_eq!(judge(&info(500, 100)).status, CheckStatus::Ok);
        assert_eq!(judge(&info(99, 100)).status, CheckStatus::Warning);
        assert_eq!(judge(&info(49, 100)).status, CheckStatus::Critical);
        assert_eq!(judge(&info(500, 40)).status, CheckStatus::Warning);
    }
}
