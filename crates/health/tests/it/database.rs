//! The checks that read PostgreSQL: `postgres`, `odoo.cron`, `odoo.mail`, against a real
//! cluster holding the Odoo stack (with the scheduled actions' and mails' tables).

use vigia_core::ports::check::CheckStatus;
use vigia_sandbox::fixture::OdooStack;
use vigia_sandbox::odoo::add_operations_tables;

use crate::{check, config, config_with, run, status};

const CHECKS: [&str; 3] = ["postgres", "odoo.cron", "odoo.mail"];

fn stack() -> OdooStack {
    let stack = OdooStack::start().unwrap();
    add_operations_tables(&stack.cluster, "odoo").unwrap();
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_database_passes_then_late_crons_and_failed_mails_fail() {
    let s = stack();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Some(&s.cluster), "", "");
    let report = run(&config, &CHECKS).await;
    for name in CHECKS {
        assert_eq!(
            status(&report, name),
            CheckStatus::Ok,
            "{:?}",
            check(&report, name)
        );
    }
    let psql = |sql: &str| s.cluster.psql("odoo", sql).unwrap();

    psql(
        "UPDATE ir_cron SET nextcall = now() AT TIME ZONE 'UTC' - interval '2 hours' \
          WHERE id = (SELECT min(id) FROM ir_cron)",
    );
    psql("INSERT INTO mail_mail (state) VALUES ('exception'), ('sent')");
    let report = run(&config, &CHECKS).await;
    let cron = check(&report, "odoo.cron");
    assert_eq!(cron.status, CheckStatus::Warning, "{cron:?}");
    assert_eq!(cron.evidence["late_over_an_hour"], 1);
    assert_eq!(status(&report, "odoo.mail"), CheckStatus::Warning);

    psql("UPDATE ir_cron SET nextcall = now() AT TIME ZONE 'UTC' - interval '2 days'");
    psql("INSERT INTO mail_mail (state) SELECT 'exception' FROM generate_series(1, 19)");
    let report = run(&config, &CHECKS).await;
    assert_eq!(status(&report, "odoo.cron"), CheckStatus::Critical);
    assert_eq!(status(&report, "odoo.mail"), CheckStatus::Critical);
    // An inactive job is nobody's concern.
    psql("UPDATE ir_cron SET active = false");
    let report = run(&config, &["odoo.cron"]).await;
    assert_eq!(status(&report, "odoo.cron"), CheckStatus::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_tables_is_skipped_not_a_crash() {
    let s = OdooStack::start().unwrap();
    s.cluster.create_database("plain").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Some(&s.cluster), "database = \"plain\"", "");
    let report = run(&config, &CHECKS).await;
    assert_eq!(status(&report, "postgres"), CheckStatus::Ok);
    assert_eq!(status(&report, "odoo.cron"), CheckStatus::Skipped);
    assert_eq!(status(&report, "odoo.mail"), CheckStatus::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_gone_is_critical_and_what_reads_through_it_unknown() {
    let s = stack();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Some(&s.cluster), "", "");
    drop(s);
    let report = run(&config, &CHECKS).await;
    assert_eq!(status(&report, "postgres"), CheckStatus::Critical);
    assert_eq!(status(&report, "odoo.cron"), CheckStatus::Unknown);
    assert_eq!(status(&report, "odoo.mail"), CheckStatus::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_that_cannot_be_resolved_is_unknown_naming_the_key_never_the_secret() {
    let s = stack();
    let dir = tempfile::tempdir().unwrap();
    let password = "password = \"env:VIGIA_TEST_NEVER_SET_PASSWORD\"";
    let config = config_with(dir.path(), Some(&s.cluster), "", password, "");
    let report = run(&config, &CHECKS).await;
    let postgres = check(&report, "postgres");
    assert_eq!(postgres.status, CheckStatus::Unknown);
    assert!(
        postgres.summary.contains("postgres.password"),
        "{}",
        postgres.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn einvoice_documents_and_queues_against_the_modules_thresholds() {
    let s = stack();
    let dir = tempfile::tempdir().unwrap();
    let checks = ["einvoice.documents", "einvoice.queues"];
    let report = run(&config(dir.path(), Some(&s.cluster), "", ""), &checks).await;
    for name in checks {
        let skipped = check(&report, name);
        assert_eq!(skipped.status, CheckStatus::Skipped);
        assert_eq!(skipped.summary, "[einvoice] is not configured");
    }
    let config = config(dir.path(), Some(&s.cluster), "", "[einvoice]");
    let report = run(&config, &checks).await;
    for name in checks {
        assert_eq!(
            status(&report, name),
            CheckStatus::Ok,
            "{:?}",
            check(&report, name)
        );
    }
    let psql = |sql: &str| s.cluster.psql("odoo", sql).unwrap();
    let documents = |state: &str, n: u32, age: &str| {
        psql(&format!(
            "INSERT INTO l10n_cr_einvoice_document (state, document_type, create_date) \
             SELECT '{state}', 'FE', now() AT TIME ZONE 'UTC' - interval '{age}' \
             FROM generate_series(1, {n})"
        ));
    };
    // Rejected long ago is final, not today's failure.
    documents("rejected", 30, "30 days");
    documents("rejected", 6, "1 hour");
    psql(
        "INSERT INTO l10n_cr_einvoice_retry_queue (state) SELECT 'pending' \
          FROM generate_series(1, 21)",
    );
    let report = run(&config, &checks).await;
    let docs = check(&report, "einvoice.documents");
    assert_eq!(docs.status, CheckStatus::Warning, "{docs:?}");
    assert_eq!(docs.evidence["failed"], 6);
    assert_eq!(status(&report, "einvoice.queues"), CheckStatus::Warning);

    documents("signed", 21, "2 days");
    psql(
        "INSERT INTO l10n_cr_pos_offline_queue (state) SELECT 'syncing' \
          FROM generate_series(1, 51)",
    );
    let report = run(&config, &checks).await;
    let docs = check(&report, "einvoice.documents");
    assert_eq!(docs.status, CheckStatus::Critical, "{docs:?}");
    assert_eq!(docs.evidence["stuck"], 21);
    assert_eq!(status(&report, "einvoice.queues"), CheckStatus::Critical);
    let textfile = dir
        .path()
        .join("state")
        .join(vigia_health::HEALTH_METRICS_FILE);
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains("vigia_einvoice_documents{state=\"stuck\"} 21\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigia_einvoice_queue_backlog{queue=\"pos\"} 51\n"),
        "{metrics}"
    );
    crate::promtool_accepts(&textfile);

    // Without the module's tables: skipped, not a crash.
    s.cluster.create_database("plain").unwrap();
    let plain = config_with(
        dir.path(),
        Some(&s.cluster),
        "database = \"plain\"",
        "",
        "[einvoice]",
    );
    let report = run(&plain, &checks).await;
    for name in checks {
        let skipped = check(&report, name);
        assert_eq!(skipped.status, CheckStatus::Skipped);
        assert_eq!(skipped.summary, "l10n_cr_einvoice not installed");
    }
}
