//! The compose runtime against a real engine (podman's Docker API, DOCKER_HOST): status of
//! running, stopped and missing services, logs, one-offs in a given image, and the release
//! switch through `.env`. No engine fails these tests naming what to install.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigia_core::config::ConfigSource;
use vigia_core::ports::runtime::{OneOff, Runtime, RuntimeAction, Service, ServiceState};
use vigia_core::{CancelToken, ErrorKind};
use vigia_runtime::ComposeRuntime;
use vigia_sandbox::engine::{Engine, Project, ReleaseImage, idle_service, odoo_service};
use vigia_sandbox::postgres::PgCluster;

struct Stack {
    project: Project,
    runtime: Arc<ComposeRuntime>,
    v1: String,
    port: u16,
    _cluster: PgCluster,
}

fn runtime_for(project: &Project, extra: &str) -> ComposeRuntime {
    let text = format!(
        "[odoo]\ndatabase = \"odoo\"\n{}{extra}",
        project.runtime_section()
    );
    let config = ConfigSource::from_text(text, Some(&project.dir))
        .unwrap()
        .load(None)
        .unwrap();
    ComposeRuntime::from_config(&config).unwrap()
}

fn stack(extra_runtime: &str) -> Stack {
    let engine = Engine::get().unwrap_or_else(|e| panic!("{e}"));
    let cluster = PgCluster::start().unwrap();
    let base = engine
        .base_image(&vigia_sandbox::sandbox_beside_tests(), cluster.bin_dir())
        .unwrap();
    let v1 = engine
        .release_image(
            &base,
            &ReleaseImage {
                version: "2.1.0",
                migrate: "SELECT 1;",
                health: "pass",
            },
        )
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let compose = format!(
        "services:\n{}{}",
        odoo_service(port, cluster.socket_dir(), cluster.port(), cluster.user()),
        idle_service("redis", &base)
    );
    let env = format!("# the release\nODOO_IMAGE={v1}\nOTHER=1\n");
    let project = Project::new(&compose, &env).unwrap();
    let runtime = Arc::new(runtime_for(&project, extra_runtime));
    Stack {
        project,
        runtime,
        v1,
        port,
        _cluster: cluster,
    }
}

fn one_off(dir: &Path, timeout: Duration) -> OneOff {
    OneOff {
        timeout,
        output: dir.join("one-off.log"),
        cancel: CancelToken::new(),
        hide: Vec::new(),
    }
}

/// Whether `url` answers 200 (curl: no HTTP client among this crate's dependencies).
async fn answers(url: &str) -> bool {
    for _ in 0..100 {
        let out = tokio::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                url,
            ])
            .output()
            .await;
        if out.is_ok_and(|o| o.stdout == b"200") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_started_stopped_and_read_from_the_engine() {
    let s = stack("");
    let rt = &s.runtime;
    let state = |service| async move { rt.status(service).await.unwrap() };
    assert_eq!(
        state(Service::Odoo).await,
        ServiceState::Stopped,
        "never started"
    );
    assert!(
        !rt.manages(Service::Nginx).await.unwrap(),
        "not in the file"
    );
    assert!(matches!(
        state(Service::Nginx).await,
        ServiceState::Unknown { .. }
    ));
    assert!(matches!(
        rt.start(Service::Nginx).await.unwrap(),
        RuntimeAction::Skipped { .. }
    ));

    assert_eq!(rt.start(Service::Redis).await.unwrap(), RuntimeAction::Done);
    assert_eq!(rt.start(Service::Odoo).await.unwrap(), RuntimeAction::Done);
    assert_eq!(state(Service::Odoo).await, ServiceState::Running);
    assert_eq!(state(Service::Redis).await, ServiceState::Running);
    let url = format!("http://127.0.0.1:{}/web/health", s.port);
    assert!(
        answers(&url).await,
        "Odoo's container does not answer on {url}"
    );
    let logs = rt.logs(Service::Odoo, 20).await.unwrap();
    assert!(!logs.is_empty() && logs.len() <= 20, "{logs:?}");

    assert_eq!(rt.stop(Service::Redis).await.unwrap(), RuntimeAction::Done);
    assert_eq!(state(Service::Redis).await, ServiceState::Stopped);
    assert_eq!(state(Service::Odoo).await, ServiceState::Running);
    assert!(rt.calls() > 5, "engine calls are counted: {}", rt.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_off_runs_in_the_image_it_is_given_and_dies_at_its_limit() {
    let s = stack("");
    let dir = tempfile::tempdir().unwrap();
    let limits = one_off(dir.path(), Duration::from_mins(2));
    let rt = &s.runtime;
    // .env names v1; the one-off runs the image it is given (not there: it fails).
    let exit = rt.run("exit 0", "localhost/vigia-none:1", &limits).await;
    let text = std::fs::read_to_string(&limits.output).unwrap_or_default();
    assert!(exit.is_ok_and(|e| !e.success()), "{text}");

    let command = "echo \"image=$ODOO_IMAGE\"; cat /addons/l10n_cr_einvoice/models.py; exit 3";
    let exit = rt.run(command, &s.v1, &limits).await.unwrap();
    let text = std::fs::read_to_string(&limits.output).unwrap();
    assert_eq!(exit.code, Some(3), "{text}");
    assert!(text.contains("V = '2.1.0'"), "{text}");

    let exit = rt
        .run(
            "sleep 600",
            &s.v1,
            &one_off(dir.path(), Duration::from_secs(3)),
        )
        .await
        .unwrap();
    assert!(exit.timed_out, "{exit:?}");
    let left = s.project.compose(&["ps", "--all", "-q"]).unwrap();
    assert!(
        left.trim().is_empty(),
        "the one-off's container is gone: {left}"
    );
    // Nor does a one-off count as the service running.
    assert_eq!(
        rt.status(Service::Odoo).await.unwrap(),
        ServiceState::Stopped
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_release_is_one_env_line_switched_only_when_compose_accepts_it() {
    let s = stack("");
    let rt = &s.runtime;
    assert_eq!(rt.current_release().await.unwrap(), Some(s.v1.clone()));
    rt.switch("localhost/vigia-odoo:next", "d1").await.unwrap();
    assert_eq!(
        s.project.env(),
        "# the release\nODOO_IMAGE=localhost/vigia-odoo:next\nOTHER=1\n"
    );
    let kept = std::fs::read_to_string(s.project.dir.join(".env.vigia-d1")).unwrap();
    assert!(kept.contains(&s.v1), "the file before is kept: {kept}");
    for bad in ["--help", "a b", "x\nOTHER=2"] {
        assert!(rt.switch(bad, "d2").await.is_err(), "{bad:?}");
    }

    // A compose file Compose refuses: nothing is rewritten.
    let before = s.project.env();
    let text = std::fs::read_to_string(&s.project.file).unwrap();
    std::fs::write(&s.project.file, text.replace("services:", "services: [")).unwrap();
    let fresh = runtime_for(&s.project, "");
    let err = fresh.switch(&s.v1, "d3").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(err.context().key.as_deref(), Some("runtime.compose-file"));
    assert_eq!(s.project.env(), before);
    let err = fresh.status(Service::Odoo).await.unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("runtime.compose-file"));
    std::fs::write(&s.project.file, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapped_service_missing_from_the_file_names_its_key() {
    let s = stack("[runtime.services]\nodoo = \"odoo\"\nnginx = \"web\"\n");
    let err = s.runtime.status(Service::Nginx).await.unwrap_err();
    assert_eq!(
        err.context().key.as_deref(),
        Some("runtime.services.nginx"),
        "{err}"
    );
    assert!(
        !s.runtime.manages(Service::Redis).await.unwrap(),
        "not named"
    );
    assert_eq!(
        s.runtime.status(Service::Odoo).await.unwrap(),
        ServiceState::Stopped
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_engine_is_a_network_error_with_the_tools_words() {
    let s = stack("");
    let dead = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("docker")
        .env(
            "DOCKER_HOST",
            format!("unix://{}/none.sock", dead.path().display()),
        )
        .args(["compose", "-f"])
        .arg(&s.project.file)
        .args(["ps", "--all", "--format", "json"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err = vigia_runtime::compose::tool::failure("docker compose ps", out.status, &stderr);
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(
        err.message().contains("none.sock"),
        "the tool's words: {err}"
    );
}
