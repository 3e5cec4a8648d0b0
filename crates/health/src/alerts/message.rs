//! One message per channel per run: what opened, escalated, was reminded or resolved.

use std::fmt::Write;

use vigia_core::ports::check::CheckStatus;
use vigia_core::ports::notifier::Alert;

use super::incidents::{Event, EventKind};

/// `[vigia production] CRITICAL: odoo.public opened, backup.age resolved`, then one line per
/// event. The status is the worst of the events that are not resolutions (ok when all are).
pub fn compose(env: &str, host: &str, events: &[Event]) -> Alert {
    let status = events
        .iter()
        .filter(|e| e.kind != EventKind::Resolved)
        .map(|e| e.status)
        .max()
        .unwrap_or(CheckStatus::Ok);
    let mut what: Vec<String> = events
        .iter()
        .take(5)
        .map(|e| format!("{} {}", e.check, e.kind.as_str()))
        .collect();
    if events.len() > 5 {
        what.push(format!("{} more", events.len() - 5));
    }
    let subject = format!(
        "[vigia {env}] {}: {}",
        status.as_str().to_uppercase(),
        what.join(", ")
    );
    let mut body = format!("Vigia health on {host}, environment {env}:\n\n");
    for e in events {
        let _ = writeln!(
            body,
            "{:<9} {:<8} {}  {}  (at {})",
            e.kind.as_str().to_uppercase(),
            e.status.as_str(),
            e.check,
            e.summary,
            e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        );
    }
    body.push_str("\nRun `vigia health` on that host for the details.\n");
    Alert {
        status,
        subject,
        body,
    }
}

/// The message `vigia alert test` sends.
pub fn test_message(env: &str, host: &str) -> Alert {
    Alert {
        status: CheckStatus::Ok,
        subject: format!("[vigia {env}] test: alerts from {host} reach you"),
        body: format!(
            "This is a test from `vigia alert test` on {host}, environment {env}.\nNothing is wrong.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_each_check_and_the_worst_open_status() {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let event = |check: &str, kind, status| Event {
            check: check.into(),
            kind,
            status,
            summary: format!("{check} summary"),
            at,
        };
        let alert = compose(
            "production",
            "erp1",
            &[
                event("odoo.public", EventKind::Opened, CheckStatus::Critical),
                event("backup.age", EventKind::Resolved, CheckStatus::Ok),
            ],
        );
        assert_eq!(alert.status, CheckStatus::Critical);
        assert_eq!(
            alert.subject,
            "[vigia production] CRITICAL: odoo.public opened, backup.age resolved"
        );
        assert!(
            alert
                .body
                .contains("OPENED    critical odoo.public  odoo.public summary")
        );
        let resolved = compose(
            "default",
            "erp1",
            &[event("memory", EventKind::Resolved, CheckStatus::Ok)],
        );
        assert_eq!(resolved.subject, "[vigia default] OK: memory resolved");
    }
}
