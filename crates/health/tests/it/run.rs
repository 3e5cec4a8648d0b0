//! The run as a whole: names, filesystems, services by runtime, the textfile.

use vigia_core::ports::check::CheckStatus;
use vigia_health::{HEALTH_METRICS_FILE, HealthRequest, HealthRun};

use crate::{check, config, run, status};

#[tokio::test]
async fn every_filesystem_is_measured_once_and_a_missing_path_at_its_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let not_yet = dir.path().join("data/not/made/yet");
    let tables = format!("[health]\ndisk-paths = [\"{}\"]", not_yet.display());
    let config = config(dir.path(), None, "", &tables);
    let report = run(&config, &[]).await;
    let disks: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("disk:"))
        .collect();
    assert!(!disks.is_empty());
    let names: std::collections::BTreeSet<_> = disks.iter().map(|c| &c.name).collect();
    assert_eq!(names.len(), disks.len(), "one result per filesystem");
    let paths = disks
        .iter()
        .flat_map(|c| c.evidence["paths"].as_array().unwrap().clone())
        .collect::<Vec<_>>();
    assert!(
        paths.contains(&not_yet.display().to_string().into()),
        "{paths:?}"
    );
    for disk in disks {
        assert_ne!(disk.status, CheckStatus::Unknown, "{disk:?}");
        assert!(disk.evidence["total_bytes"].as_u64().unwrap() > 0);
    }
}

#[tokio::test]
async fn unknown_names_and_unmeasured_filesystems_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), None, "", "");
    for only in [["odoo"], ["disk:/no/such/mount"]] {
        let request = HealthRequest {
            only: only.iter().map(|s| (*s).to_owned()).collect(),
            alert: false,
        };
        let err = HealthRun::from_config(&config, &request).unwrap_err();
        assert_eq!(err.kind(), vigia_core::ErrorKind::InvalidInput, "{err}");
    }
    let alert = HealthRequest {
        only: Vec::new(),
        alert: true,
    };
    let err = HealthRun::from_config(&config, &alert).unwrap_err();
    assert_eq!(
        err.kind(),
        vigia_core::ErrorKind::Config,
        "--alert needs [alerting]"
    );
}

#[tokio::test]
async fn services_are_skipped_unless_the_runtime_manages_them() {
    let dir = tempfile::tempdir().unwrap();
    let services = [
        "services.odoo",
        "services.postgres",
        "services.nginx",
        "services.redis",
    ];
    let report = run(&config(dir.path(), None, "", ""), &services).await;
    for name in services {
        assert_eq!(status(&report, name), CheckStatus::Skipped, "{name}");
    }
    // The local runtime manages Odoo: not started, it is critical.
    let tables = "[runtime]\nkind = \"local\"\nodoo-command = \"sleep 600\"";
    let report = run(&config(dir.path(), None, "", tables), &services).await;
    let odoo = check(&report, "services.odoo");
    assert_eq!(odoo.status, CheckStatus::Critical, "{odoo:?}");
    assert_eq!(status(&report, "services.redis"), CheckStatus::Skipped);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_counts_odoos_resident_memory_when_the_runtime_knows_its_pid() {
    use vigia_core::ports::runtime::Service;
    let dir = tempfile::tempdir().unwrap();
    // A shell that leads its group, with a worker of its own, as Odoo's master does.
    let tables = "[runtime]\nkind = \"local\"\nodoo-command = \"sleep 600 & sleep 600\"";
    let config = config(dir.path(), None, "", tables);
    let before = check(&run(&config, &["memory"]).await, "memory").clone();
    assert!(
        before.evidence.get("odoo_pid").is_none(),
        "not running: {before:?}"
    );
    let runtime = vigia_runtime::from_config(&config).unwrap();
    runtime.start(Service::Odoo).await.unwrap();
    let memory = check(&run(&config, &["memory"]).await, "memory").clone();
    runtime.stop(Service::Odoo).await.unwrap();
    let rss = memory.evidence["odoo_rss_bytes"].as_u64().unwrap();
    assert!(rss > 100 * 1024, "{memory:?}");
    assert!(memory.summary.contains("Odoo (pid"), "{}", memory.summary);
}

#[tokio::test]
async fn the_textfile_is_what_promtool_accepts_and_a_partial_run_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), None, "", "");
    run(&config, &[]).await;
    run(&config, &["memory"]).await;
    let file = dir.path().join("state").join(HEALTH_METRICS_FILE);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("vigia_check_status{check=\"memory\"}"),
        "{text}"
    );
    assert!(text.contains("vigia_check_status{check=\"disk:"), "{text}");
    crate::promtool_accepts(&file);
}
