//! What runs around a deploy's steps, on the real site: a release fetched and built before
//! anything stops, the hooks and what they are told, the maintenance page while Odoo is down
//! for the upgrade, old releases pruned, a freeze, the alert silence an upgrade holds and the
//! outcome sent to a real webhook, and what a swap back leaves (the upgraded database
//! recorded for cleanup, files the copy references that are gone).

mod common;

use std::path::Path;

use common::site;
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
    site.prefix_upgrade(
        "v2",
        &format!(
            "test -f {} && echo on > {}",
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
        "fetch-command = \"mkdir {{dir}} && touch {{dir}}/half && false\"\n\
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

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_reach_the_webhook_the_upgrade_is_silenced_and_a_swap_back_says_what_it_left() {
    use std::os::unix::fs::PermissionsExt;
    let site = site().await;
    let dir = site.dir.path().to_owned();
    let hook = vigia_sandbox::webhook::WebhookServer::start(0, 200)
        .await
        .unwrap();
    let url_file = dir.join("hook.url");
    std::fs::write(&url_file, hook.url()).unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // An invoice's PDF, in the filestore and referenced by the database.
    let filestore = site.data_dir().join("filestore/odoo");
    let pdf = vigia_sandbox::odoo::write_file(&filestore, b"%PDF factura 001").unwrap();
    vigia_sandbox::odoo::attach(&site.cluster, "odoo", std::slice::from_ref(&pdf)).unwrap();
    let config = site.config_with(&format!(
        "[alerting]\nwebhook-url = \"file:{}\"\n",
        url_file.display()
    ));
    let job = DeployJob::from_config(&config).unwrap();
    let silences = dir.join("silences-seen");
    let alerts_dir = dir.join("state/alerts");

    // v2 upgrades; its upgrade sees the silence in force.
    site.release("v2", "2.2.0", "x = 2", "pass", "SELECT 1;", 0);
    site.prefix_upgrade(
        "v2",
        &format!("ls {} > {}", alerts_dir.display(), silences.display()),
    );
    let report = job.run("v2").await.unwrap();
    assert_eq!(report.outcome, "deployed", "{report:?}");
    assert!(
        std::fs::read_to_string(&silences)
            .unwrap()
            .contains("silence-default.json"),
        "alerts were silenced during the upgrade"
    );
    assert!(
        !alerts_dir.join("silence-default.json").exists(),
        "and the silence ended with the deploy"
    );
    let sent = hook.received();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].to_string().contains("v2: deployed"), "{sent:?}");

    // v3's gate fails; while it ran, the PDF left the filestore (as Odoo's garbage
    // collector may do). The copy goes back, which references it: a warning names it.
    site.release("v3", "2.3.0", "x = 3", "fail", "SELECT 1;", 0);
    site.prefix_upgrade("v3", &format!("rm {}", filestore.join(&pdf).display()));
    let report = job.run("v3").await.unwrap();
    assert_eq!(report.outcome, "rolled_back", "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("references 1 file(s) missing") && w.contains(&pdf)),
        "{:?}",
        report.warnings
    );
    let sent = hook.received();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let text = sent[1].to_string();
    assert!(text.contains("v3: rolled_back"), "{text}");
    assert!(text.contains("the gate failed"), "{text}");
    // The upgraded database is recorded for `vigia restore --cleanup`.
    let record = dir
        .join("state/restores")
        .join(format!("base.odoo_upgraded_{}.json", report.id));
    let record = std::fs::read_to_string(&record).unwrap();
    assert!(record.contains("\"aside\""), "{record}");
}

/// The status line a plain HTTP/1.0 GET of `path` gets from `127.0.0.1:port`.
fn status_of(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: erp.example.cr\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A real nginx with the stack's `if (-f ..) { return 503; }`: while the upgrade runs, the
/// public site answers 503; once the deploy passed its gate (odoo.public through nginx
/// included), it serves again.
#[tokio::test(flavor = "multi_thread")]
async fn through_a_real_nginx_the_site_answers_503_while_the_upgrade_runs() {
    let site = site().await;
    let dir = site.dir.path().to_owned();
    let maint = dir.join("maintenance.on");
    let nginx = vigia_sandbox::nginx::NginxServer::proxy_with_maintenance(
        &format!("http://127.0.0.1:{}", site.port),
        &maint,
    )
    .unwrap();
    let public = format!("http://127.0.0.1:{}", nginx.port());
    let config = site.config_text(
        site.cluster.user(),
        &format!("url = \"{public}\"\n"),
        &format!(
            "gate = [\"odoo.internal\", \"odoo.public\"]\nmaintenance-file = \"{}\"\n",
            maint.display()
        ),
    );
    let job = DeployJob::from_config(&config).unwrap();
    // The upgrade says it runs, then waits (10 s at most) for the test to look at the site.
    let (upgrading, go) = (dir.join("upgrading"), dir.join("go"));
    site.release("v2", "2.2.0", "x = 2", "pass", "SELECT 1;", 0);
    site.prefix_upgrade(
        "v2",
        &format!(
            "touch {}\nfor i in $(seq 100); do test -f {} && break; sleep 0.1; done",
            upgrading.display(),
            go.display()
        ),
    );
    assert!(status_of(nginx.port(), "/web/health").contains(" 200"));
    let during = async {
        while !upgrading.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let status = status_of(nginx.port(), "/web/health");
        std::fs::write(&go, "").unwrap();
        status
    };
    let (report, during) = tokio::time::timeout(std::time::Duration::from_mins(2), async {
        tokio::join!(job.run("v2"), during)
    })
    .await
    .expect("the upgrade never started");
    let report = report.unwrap();
    assert_eq!(report.outcome, "deployed", "{report:?}");
    assert!(during.contains(" 503"), "during the upgrade: {during}");
    assert!(status_of(nginx.port(), "/web/health").contains(" 200"));
    assert!(!maint.exists());
}
