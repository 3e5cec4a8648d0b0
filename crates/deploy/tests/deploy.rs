//! Deploys on the local runtime against real parts: releases on disk whose `run` starts the
//! sandbox's Odoo-like server (as Odoo would run from a release) and whose `upgrade` applies
//! a `migrate.sql` with psql and sets `ir_module_module`, a real PostgreSQL with the Odoo-
//! shaped database, and the gate asking the server over a real socket.

mod common;

use std::path::Path;

use common::{script, site};
use vigia_core::{ErrorKind, Outcome as _};
use vigia_deploy::DeployJob;

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_deploy_and_the_rollbacks_that_follow_failures() {
    let site = site().await;
    let job = DeployJob::from_config(&site.config()).unwrap();

    // v1 -> v2: the module changed, so the database is copied and upgraded.
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "pass",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    let report = job.run("v2").await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    assert_eq!(report.outcome, "deployed");
    assert_eq!(report.upgraded, ["l10n_cr_einvoice"]);
    assert_eq!(site.serving(), "v2");
    assert!(site.fingerprint().contains("l10n_cr_v2"));
    assert!(
        site.psql("SELECT value FROM ir_config_parameter WHERE key = 'vigia.addon_hashes'")
            .contains("l10n_cr_einvoice")
    );
    let history = vigia_deploy::audit::history(&site.dir.path().join("state/deploys")).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from.as_str(), history[0].outcome.as_str()),
        ("v1", "deployed")
    );
    let before = site.fingerprint();

    // v3's upgrade fails halfway (its table is made, then it exits 1): the copy is swapped
    // back, v2 serves on the database as it was.
    site.release(
        "v3",
        "2.3.0",
        "x = 3",
        "pass",
        "CREATE TABLE l10n_cr_v3 (id int);",
        1,
    );
    let report = job.run("v3").await.unwrap();
    let err = report.failure().expect("a failed deploy fails the command");
    assert_eq!(report.outcome, "rolled_back", "{err}");
    assert!(report.rollback.as_ref().unwrap().swapped_back);
    assert!(err.message().contains("the upgrade exited 1"), "{err}");
    assert_eq!(
        site.fingerprint(),
        before,
        "the database is the pre-deploy one"
    );
    assert_eq!(site.serving(), "v2");

    // v4 upgrades, but its Odoo fails its health: the gate fails, the copy goes back.
    site.release(
        "v4",
        "2.4.0",
        "x = 4",
        "fail",
        "CREATE TABLE l10n_cr_v4 (id int);",
        0,
    );
    let report = job.run("v4").await.unwrap();
    let err = report.failure().unwrap();
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{err}");
    assert_eq!(report.outcome, "rolled_back");
    assert!(err.message().contains("the gate failed"), "{err}");
    assert_eq!(site.fingerprint(), before);
    assert_eq!(site.serving(), "v2");
    let aside = format!("odoo_upgraded_{}", report.id);
    let kept = site
        .cluster
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{aside}'"),
        )
        .unwrap();
    assert_eq!(kept.trim(), "1", "the upgraded database is kept aside");

    // v5 changes no addon but fails its gate: no copy, the rollback only switches back.
    site.release("v5", "2.2.0", "x = 2", "fail", "SELECT 1;", 0);
    let report = job.run("v5").await.unwrap();
    assert_eq!(report.outcome, "rolled_back");
    assert!(report.upgraded.is_empty());
    let rollback = report.rollback.unwrap();
    assert!(!rollback.swapped_back);
    assert!(
        !report.steps.iter().any(|s| s.name == "copy"),
        "{:?}",
        report.steps
    );
    assert_eq!(site.serving(), "v2");
    assert_eq!(
        std::fs::read_link(site.root().join("current")).unwrap(),
        Path::new("releases/v2")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_touch_nothing_and_a_held_stack_fails_at_once() {
    let site = site().await;
    let job = DeployJob::from_config(&site.config()).unwrap();
    site.release("old", "2.0.0", "x = 0", "pass", "SELECT 1;", 0);
    let before = site.fingerprint();
    for (release, kind) in [
        ("old", ErrorKind::InvalidInput),
        ("../v1", ErrorKind::InvalidInput),
        ("v9", ErrorKind::InvalidInput),
    ] {
        let err = job.run(release).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{release}: {err}");
    }
    let report = job.run("v1").await.unwrap();
    assert_eq!(report.outcome, "nothing_to_do");
    assert_eq!(site.fingerprint(), before);
    assert!(!site.dir.path().join("state/deploys/audit.jsonl").exists());

    site.release("v2", "2.2.0", "x = 2", "pass", "SELECT 1;", 0);
    let held = vigia_runtime::stack_lock::StackLock::acquire(
        &site.dir.path().join("state"),
        "vigia restore (swap into odoo)",
    )
    .unwrap();
    let err = job.run("v2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert!(err.message().contains("vigia restore"), "{err}");
    drop(held);
    assert_eq!(site.serving(), "v1");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_deploy_is_rolled_back_from_its_journal_unless_e_invoices_were_made() {
    let site = site().await;
    let job = DeployJob::from_config(&site.config()).unwrap();
    let before = site.fingerprint();
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "pass",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    assert_eq!(job.run("v2").await.unwrap().outcome, "deployed");

    // An e-invoice made on v2: the rollback refuses before touching anything; v2 runs on.
    site.psql(
        "INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total) \
         VALUES ('50629112600310112345600100001010000000999199999999', 'accepted', 'FE', 5)",
    );
    let report = job.rollback_last(false).await.unwrap();
    let err = report.failure().expect("a refused rollback fails");
    assert!(err.message().contains("e-invoices were made"), "{err}");
    assert!(!report.rollback.as_ref().unwrap().swapped_back);
    assert!(
        site.fingerprint().contains("l10n_cr_v2"),
        "not swapped back"
    );
    let runtime = vigia_runtime::from_config(&site.config()).unwrap();
    let odoo = async || {
        runtime
            .status(vigia_core::ports::runtime::Service::Odoo)
            .await
            .unwrap()
    };
    assert_eq!(
        odoo().await,
        vigia_core::ports::runtime::ServiceState::Running
    );
    assert_eq!(report.outcome, "rollback_refused");
    assert!(report.rollback.as_ref().unwrap().refused);

    // Refused, so it may be run again: accepting the loss swaps the copy back.
    let report = job.rollback_last(true).await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    assert!(report.rollback.unwrap().swapped_back);
    assert_eq!(site.fingerprint(), before);
    assert_eq!(site.serving(), "v1");
    assert_eq!(
        odoo().await,
        vigia_core::ports::runtime::ServiceState::Running
    );
    let err = job.rollback_last(true).await.unwrap_err();
    assert!(err.message().contains("nothing to roll back"), "{err}");

    // Deployed again (v3 over v1), then rolled back: the copy goes back in.
    let with_invoice = site.fingerprint();
    site.release(
        "v3",
        "2.3.0",
        "x = 3",
        "pass",
        "CREATE TABLE l10n_cr_v3 (id int);",
        0,
    );
    assert_eq!(job.run("v3").await.unwrap().outcome, "deployed");
    assert_ne!(site.fingerprint(), with_invoice);
    let report = job.rollback_last(false).await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    assert!(report.rollback.unwrap().swapped_back);
    assert_eq!(site.fingerprint(), with_invoice);
    assert_eq!(site.serving(), "v1");
    assert_eq!(
        odoo().await,
        vigia_core::ports::runtime::ServiceState::Running
    );

    // A copy that is gone is found before anything stops.
    assert_eq!(job.run("v3").await.unwrap().outcome, "deployed");
    let copies = site
        .cluster
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'vigia_predeploy_%'",
        )
        .unwrap();
    assert_eq!(
        copies.lines().count(),
        1,
        "earlier copies dropped: {copies}"
    );
    site.cluster
        .psql("postgres", &format!("DROP DATABASE \"{}\"", copies.trim()))
        .unwrap();
    let report = job.rollback_last(false).await.unwrap();
    assert!(report.failure().unwrap().message().contains("is gone"));
    assert_eq!(site.serving(), "v3");
    assert_eq!(
        odoo().await,
        vigia_core::ports::runtime::ServiceState::Running
    );
}

/// An upgrade that logs CRITICAL, one that runs past its limit (killed), and a cancelled
/// deploy: each rolled back, the database as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_critical_line_a_slow_upgrade_and_a_cancel_are_rolled_back() {
    let site = site().await;
    let mut job = DeployJob::from_config(&site.config()).unwrap();
    let before = site.fingerprint();
    let upgrade = |name: &str, body: &str| {
        script(
            &site.root().join("releases").join(name).join("upgrade"),
            body,
        );
    };

    site.release("v2", "2.2.0", "x = 2", "pass", "SELECT 1;", 0);
    upgrade(
        "v2",
        "echo '2026-11-29 12:00:00,001 42 CRITICAL odoo odoo.modules: failed'\n",
    );
    let report = job.run("v2").await.unwrap();
    let err = report.failure().unwrap();
    assert_eq!(report.outcome, "rolled_back", "{err}");
    assert!(err.message().contains("logged a CRITICAL line"), "{err}");
    assert_eq!(site.fingerprint(), before);

    site.release("v3", "2.3.0", "x = 3", "pass", "SELECT 1;", 0);
    let marker = site.dir.path().join("slow.pid");
    upgrade(
        "v3",
        &format!("echo $$ > {}\nexec sleep 600\n", marker.display()),
    );
    job.upgrade_timeout = std::time::Duration::from_secs(1);
    let report = job.run("v3").await.unwrap();
    let err = report.failure().unwrap();
    assert!(
        err.message().contains("ran past 1 s and was killed"),
        "{err}"
    );
    assert_eq!(report.outcome, "rolled_back");
    let pid: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed (a zombie waiting for its reaper is not running).
    assert!(
        !vigia_core::process::is_running(pid),
        "the upgrade was killed"
    );
    assert_eq!(site.fingerprint(), before);
    assert_eq!(site.serving(), "v1");

    job.cancel.cancel();
    let report = job.run("v3").await.unwrap();
    let err = report.failure().unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(
        report.steps.is_empty() || report.steps[0].outcome == "failed",
        "{:?}",
        report.steps
    );
    assert_eq!(site.fingerprint(), before);
}
