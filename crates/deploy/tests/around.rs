//! What runs around a deploy's steps, on the real site: a release fetched and built before
//! anything stops, the hooks and what they are told, the maintenance page while Odoo is down
//! for the upgrade, old releases pruned, and a freeze.

mod common;

use std::path::Path;

use common::{script, site};
use vigia_core::{ErrorKind, Outcome as _};
use vigia_deploy::DeployJob;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn fetched_built_hooked_and_behind_the_maintenance_page() {
    let site = site().await;
    let dir = site.dir.path().to_owned();
    let (templates, maint, marker) = (
        dir.join("templates"),
        dir.join("maintenance.on"),
        dir.join("maintenance-during-upgrade"),
    );
    std::fs::create_dir_all(&templates).unwrap();
    // v2 is not a release yet: the fetch copies it from where a git server would have it.
    site.release(
        "v2",
        "2.2.0",
        "x = 2",
        "pass",
        "CREATE TABLE l10n_cr_v2 (id int);",
        0,
    );
    let upgrade = site.root().join("releases/v2/upgrade");
    let body = std::fs::read_to_string(&upgrade).unwrap();
    let body = body.trim_start_matches("#!/bin/sh\n");
    script(
        &upgrade,
        &format!(
            "test -f {} && echo on > {}\n{body}",
            maint.display(),
            marker.display()
        ),
    );
    std::fs::rename(site.root().join("releases/v2"), templates.join("v2")).unwrap();
    let extra = format!(
        "fetch-command = \"cp -R {templates}/{{ref}} {{dir}}\"\n\
         build-command = \"touch BUILT\"\n\
         keep-releases = 2\n\
         pre-hook = \"env | grep ^VIGIA_ | sort > {dir}/pre.env; test ! -f {dir}/veto\"\n\
         post-hook = \"echo $VIGIA_OUTCOME >> {dir}/post.log\"\n\
         maintenance-file = \"{maint}\"\n",
        templates = templates.display(),
        dir = dir.display(),
        maint = maint.display(),
    );
    let config = site.config_with(&extra);
    let job = DeployJob::from_config(&config).unwrap();

    let report = job.run("v2").await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(site.serving(), "v2");
    assert!(site.root().join("releases/v2/BUILT").exists(), "built");
    assert_eq!(
        entries(&site.root().join(".fetching")),
        Vec::<String>::new()
    );
    let env = std::fs::read_to_string(dir.join("pre.env")).unwrap();
    for line in [
        format!("VIGIA_DEPLOY_ID={}", report.id),
        "VIGIA_RELEASE=v2".to_owned(),
        "VIGIA_PREVIOUS_RELEASE=v1".to_owned(),
        "VIGIA_UPGRADE=l10n_cr_einvoice".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in {env}");
    }
    assert!(!env.contains("VIGIA_OUTCOME"), "{env}");
    assert_eq!(
        std::fs::read_to_string(dir.join("post.log")).unwrap(),
        "deployed\n"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "on",
        "the maintenance page was up while the upgrade ran"
    );
    assert!(!maint.exists(), "and is down once the gate passed");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "preflight",
            "stop",
            "copy",
            "upgrade",
            "hashes",
            "switch",
            "start",
            "gate",
            "public_gate"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_fetch_a_veto_and_a_freeze_touch_nothing_and_old_releases_go() {
    let site = site().await;
    let dir = site.dir.path().to_owned();
    let extra = format!(
        "fetch-command = \"false {{dir}}\"\n\
         keep-releases = 2\n\
         pre-hook = \"test ! -f {dir}/veto\"\n\
         post-hook = \"echo $VIGIA_OUTCOME >> {dir}/post.log\"\n",
        dir = dir.display(),
    );
    let config = site.config_with(&extra);
    let job = DeployJob::from_config(&config).unwrap();
    site.release("v2", "2.1.0", "x = 1", "pass", "SELECT 1;", 0);
    assert_eq!(job.run("v2").await.unwrap().outcome, "deployed");

    // A fetch that fails leaves no release and no half-made folder; nothing else moves.
    let err = job.run("v7").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("the fetch"), "{err}");
    assert!(err.message().contains("fetch.log"), "{err}");
    assert!(!site.root().join("releases/v7").exists());
    assert_eq!(
        entries(&site.root().join(".fetching")),
        Vec::<String>::new()
    );
    assert_eq!(site.serving(), "v2");

    // The pre-hook says no: refused before anything is touched, and no audit line.
    site.release("v3", "2.1.0", "x = 1", "pass", "SELECT 1;", 0);
    std::fs::write(dir.join("veto"), "").unwrap();
    let err = job.run("v3").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("the pre-hook"), "{err}");
    assert_eq!(site.serving(), "v2");
    let history = vigia_deploy::history(&config).unwrap();
    assert_eq!(history.deploys.len(), 1);
    std::fs::remove_file(dir.join("veto")).unwrap();

    // Frozen: refused (19) naming why; unfrozen, v3 goes, and v1 (neither current nor
    // previous, beyond keep-releases = 2) is pruned.
    vigia_deploy::lock(&config, "month-end close").unwrap();
    let err = job.run("v3").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert!(err.message().contains("month-end close"), "{err}");
    assert!(vigia_deploy::unlock(&config).unwrap().ended.is_some());
    let report = job.run("v3").await.unwrap();
    assert_eq!(report.outcome, "deployed", "{report:?}");
    assert_eq!(site.serving(), "v3");
    assert_eq!(entries(&site.root().join("releases")), ["v2", "v3"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("post.log")).unwrap(),
        "deployed\ndeployed\n"
    );
}
