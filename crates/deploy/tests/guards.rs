//! What stops a deploy or its rollback, on the real site: a database user that could not make
//! the pre-upgrade copy (found before anything stops), and an e-invoice made while the new
//! release is observed, whose loss a swap back would cause.

mod common;

use std::time::Duration;

use common::site;
use vigia_core::config::HumanDuration;
use vigia_core::ports::runtime::{Service, ServiceState};
use vigia_core::{ErrorKind, Outcome as _};
use vigia_deploy::DeployJob;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_that_cannot_copy_the_database_is_refused_before_anything_stops() {
    let site = site().await;
    site.psql(
        "CREATE ROLE deployer LOGIN; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public \
         TO deployer",
    );
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "pass",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    let before = site.fingerprint();
    let config = site.config_as("deployer", "");
    let job = DeployJob::from_config(&config).unwrap();

    let report = job.run("v2").await.unwrap();
    let err = report.failure().expect("refused");
    assert_eq!(report.outcome, "refused", "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("cannot create databases"), "{err}");
    assert!(report.rollback.is_none());

    site.psql("ALTER ROLE deployer CREATEDB");
    let report = job.run("v2").await.unwrap();
    let err = report.failure().expect("refused");
    assert!(err.message().contains("does not own odoo"), "{err}");
    assert_eq!(site.fingerprint(), before);
    assert_eq!(site.serving(), "v1");
    let runtime = vigia_runtime::from_config(&config).unwrap();
    assert_eq!(
        runtime.status(Service::Odoo).await.unwrap(),
        ServiceState::Running
    );
}

/// v2 upgrades and passes its gate; while it is observed an e-invoice is made and then Odoo
/// dies. The observation fails, but swapping the copy back would lose the e-invoice: the
/// rollback refuses (18), names the document, and v2 is started again on its database.
#[tokio::test(flavor = "multi_thread")]
async fn an_e_invoice_made_during_the_observation_keeps_the_new_release() {
    let site = site().await;
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "pass",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    let mut job = DeployJob::from_config(&site.config()).unwrap();
    job.settings.observe = HumanDuration::from_secs(30);
    let journals = site.dir.path().join("state/deploys");
    let observed = async {
        // Until the observation starts (a deploy that never gets there fails the test).
        let deadline = std::time::Instant::now() + Duration::from_mins(2);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the observation never started"
            );
            let started = std::fs::read_dir(&journals)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_to_string(e.path().join("journal.jsonl"))
                        .is_ok_and(|j| j.contains(r#""event":"start","step":"observe""#))
                });
            if started {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        site.psql(
            "INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total) \
             VALUES ('50607122600310112345600100001010000000777199999999', 'accepted', 'FE', 9)",
        );
        site.stop_odoo();
    };
    let (report, ()) = tokio::join!(job.run("v2"), observed);
    let report = report.unwrap();
    let err = report.failure().expect("the observation failed");
    assert_eq!(report.outcome, "rollback_refused", "{err}");
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{err}");
    let message = err.message();
    assert!(message.contains("into the observation"), "{err}");
    assert!(
        message.contains("last consecutive 00100001010000000777"),
        "{err}"
    );
    assert!(message.contains("passes its gate and stays"), "{err}");
    assert!(
        message.contains("not rolled back: e-invoices were made"),
        "{err}"
    );
    let rollback = report.rollback.as_ref().unwrap();
    assert!(rollback.refused && !rollback.swapped_back);
    assert!(
        site.fingerprint().contains("l10n_cr_v2"),
        "not swapped back"
    );
    assert_eq!(site.serving(), "v2");
    let runtime = vigia_runtime::from_config(&site.config()).unwrap();
    assert_eq!(
        runtime.status(Service::Odoo).await.unwrap(),
        ServiceState::Running
    );
}

/// v2 upgrades and fails its gate; the swap back fails after the rename (a fail point) and is
/// undone. Old code must never start on the upgraded schema: Odoo stays stopped behind the
/// maintenance page, v2 current. `vigia rollback` then finishes the job.
#[cfg(feature = "failpoints")]
#[allow(unsafe_code, reason = "the fail point is read from the environment")]
#[tokio::test(flavor = "multi_thread")]
async fn a_swap_back_that_fails_leaves_odoo_stopped_behind_the_maintenance_page() {
    let site = site().await;
    let before = site.fingerprint();
    let maint = site.dir.path().join("maintenance.on");
    let config = site.config_with(&format!("maintenance-file = \"{}\"\n", maint.display()));
    let job = DeployJob::from_config(&config).unwrap();
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "fail",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    // SAFETY: nextest runs each test in its own process; nothing else reads the variable.
    unsafe { std::env::set_var("VIGIA_FAILPOINT", "restore.after_swap:error") };
    let report = job.run("v2").await.unwrap();
    unsafe { std::env::remove_var("VIGIA_FAILPOINT") };
    let rollback = report.rollback.as_ref().unwrap();
    assert_eq!(report.outcome, "failed", "{report:?}");
    assert!(!rollback.ok && !rollback.swapped_back, "{rollback:?}");
    let err = report.failure().unwrap();
    assert!(err.message().contains("THE ROLLBACK FAILED"), "{err}");
    let runtime = vigia_runtime::from_config(&config).unwrap();
    assert_eq!(
        runtime.status(Service::Odoo).await.unwrap(),
        ServiceState::Stopped
    );
    assert!(maint.exists(), "the maintenance page stays up");
    assert!(
        site.fingerprint().contains("l10n_cr_v2"),
        "the swap was undone"
    );
    assert_eq!(
        std::fs::read_link(site.root().join("current")).unwrap(),
        std::path::Path::new("releases/v2")
    );

    let report = job.rollback_last(false).await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    assert_eq!(site.fingerprint(), before);
    assert_eq!(site.serving(), "v1");
    assert!(!maint.exists());
}
