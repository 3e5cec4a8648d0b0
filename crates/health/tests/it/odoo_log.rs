//! `odoo.log` on a real log file: errors in the window counted, old ones and werkzeug's access
//! lines not, a large file read from its end only, no source skipped.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use vigia_core::ports::check::CheckStatus;

use crate::{check, config, run, status};

fn line(ago_s: i64, level: &str, logger: &str, text: &str) -> String {
    let at = Timestamp::now() - SignedDuration::from_secs(ago_s);
    let stamp = at.strftime("%Y-%m-%d %H:%M:%S,%3f");
    format!("{stamp} 4242 {level} odoo {logger}: {text}\n")
}

#[tokio::test]
async fn errors_in_the_window_make_a_warning_then_a_critical() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("odoo-server.log");
    let tables = format!("[health]\nlog-file = \"{}\"", log.display());
    let config = config(dir.path(), None, "", &tables);

    let mut text = line(7200, "ERROR", "odoo.addons.base", "two hours ago");
    text += &line(60, "INFO", "odoo.modules", "loaded");
    text += &line(50, "ERROR", "werkzeug", "127.0.0.1 GET /web 500");
    std::fs::write(&log, &text).unwrap();
    let report = run(&config, &["odoo.log"]).await;
    assert_eq!(status(&report, "odoo.log"), CheckStatus::Ok, "{report:?}");

    text += &line(
        30,
        "ERROR",
        "odoo.addons.l10n_cr_einvoice",
        "signing failed",
    );
    text += "Traceback (most recent call last):\n  File \"x.py\"\n";
    std::fs::write(&log, &text).unwrap();
    let report = run(&config, &["odoo.log"]).await;
    let found = check(&report, "odoo.log");
    assert_eq!(found.status, CheckStatus::Warning, "{found:?}");
    assert!(
        found.evidence["first"][0]
            .as_str()
            .unwrap()
            .contains("signing failed")
    );

    for i in 0..9 {
        text += &line(
            20,
            "CRITICAL",
            "odoo.service.server",
            &format!("worker {i} died"),
        );
    }
    std::fs::write(&log, &text).unwrap();
    let report = run(&config, &["odoo.log"]).await;
    assert_eq!(status(&report, "odoo.log"), CheckStatus::Critical);
}

#[tokio::test]
async fn a_large_log_is_read_from_its_end_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("odoo-server.log");
    let mut text = String::new();
    for i in 0..40_000 {
        let _ = write!(
            text,
            "{}",
            line(600, "INFO", "odoo.http", &format!("request {i}"))
        );
    }
    text += &line(10, "ERROR", "odoo.sql_db", "bad query");
    assert!(text.len() > 2 << 20, "bigger than the 1 MiB window");
    std::fs::write(&log, &text).unwrap();
    let tables = format!("[health]\nlog-file = \"{}\"", log.display());
    let report = run(&config(dir.path(), None, "", &tables), &["odoo.log"]).await;
    let found = check(&report, "odoo.log");
    assert_eq!(found.status, CheckStatus::Warning, "{found:?}");
    assert_eq!(found.evidence["lines_read"], 1000);
}

#[tokio::test]
async fn without_a_log_file_or_a_runtime_with_logs_it_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(&config(dir.path(), None, "", ""), &["odoo.log"]).await;
    let skipped = check(&report, "odoo.log");
    assert_eq!(skipped.status, CheckStatus::Skipped);
    assert!(
        skipped.summary.contains("runtime none"),
        "{}",
        skipped.summary
    );
    let missing = format!(
        "[health]\nlog-file = \"{}\"",
        dir.path().join("nope.log").display()
    );
    let report = run(&config(dir.path(), None, "", &missing), &["odoo.log"]).await;
    assert_eq!(status(&report, "odoo.log"), CheckStatus::Unknown);
}
