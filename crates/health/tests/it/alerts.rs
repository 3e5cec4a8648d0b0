//! Alerts over separate runs, to a real SMTP server (aiosmtpd) and a real webhook receiver:
//! three bad runs send one message per channel, two good ones one resolution, a channel that
//! is down gets the message on the next run, and a silence sends nothing.

use std::net::TcpListener;
use std::path::Path;

use vigia_core::config::HumanDuration;
use vigia_core::{Config, ConfigSource};
use vigia_health::alerts::{self, Alerting, SilenceRequest};
use vigia_health::{HealthReport, HealthRequest, HealthRun};
use vigia_sandbox::odoo_http::{Health, OdooServer};
use vigia_sandbox::smtp::SmtpServer;
use vigia_sandbox::webhook::WebhookServer;

/// A port nothing listens on: Odoo is down until a test starts it there.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, odoo_port: u16, smtp: &str, webhook: &str) -> Config {
    config_with(dir, odoo_port, smtp, webhook, "")
}

/// [`config`] with more top-level sections.
fn config_with(dir: &Path, odoo_port: u16, smtp: &str, webhook: &str, more: &str) -> Config {
    let hook_file = dir.join("webhook-url");
    std::fs::write(&hook_file, webhook).unwrap();
    std::fs::set_permissions(
        &hook_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let text = format!(
        "state-dir = \"{}\"\n[odoo]\ndatabase = \"odoo\"\ninternal-url = \"http://127.0.0.1:{odoo_port}\"\n\
         [alerting]\nemail-to = [\"ops@example.cr\"]\nemail-from = \"vigia@example.cr\"\n\
         smtp-url = \"{smtp}\"\nwebhook-url = \"file:{}\"\n{more}\n",
        dir.join("state").display(),
        hook_file.display()
    );
    ConfigSource::from_text(text, Some(dir))
        .unwrap()
        .load(None)
        .unwrap()
}

async fn run(config: &Config) -> HealthReport {
    let request = HealthRequest {
        only: vec!["odoo.internal".into()],
        alert: true,
    };
    HealthRun::from_config(config, &request)
        .unwrap()
        .run()
        .await
}

fn events(report: &HealthReport) -> Vec<(String, String)> {
    report
        .alerts
        .iter()
        .map(|a| {
            let e = serde_json::to_value(a.event).unwrap();
            (a.check.clone(), e.as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_bad_runs_send_one_message_and_two_good_ones_resolve_it() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let port = closed_port();
    let c = config(dir.path(), port, &smtp.url(), &hook.url());

    for _ in 0..2 {
        let r = run(&c).await;
        assert_eq!(r.checks[0].status.plugin_code(), 2, "{r:?}");
        assert!(r.alerts.is_empty(), "{r:?}");
    }
    let third = run(&c).await;
    assert_eq!(events(&third), [("odoo.internal".into(), "opened".into())]);
    let channels = &third.alerts[0].channels;
    assert!(channels.iter().all(|c| c.ok), "{channels:?}");
    assert_eq!(channels.len(), 2);
    assert!(run(&c).await.alerts.is_empty(), "no message on every run");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [vigia default] CRITICAL: odoo.internal opened"));
    assert!(mails[0].contains("To: ops@example.cr"), "{}", mails[0]);
    let posts = hook.received();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("odoo.internal opened")
    );

    let _odoo = OdooServer::start(port, Health::Pass { db_socket: None })
        .await
        .unwrap();
    assert!(
        run(&c).await.alerts.is_empty(),
        "one good run is not enough"
    );
    let resolved = run(&c).await;
    assert_eq!(
        events(&resolved),
        [("odoo.internal".into(), "resolved".into())]
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert!(mails[1].contains("Subject: [vigia default] OK: odoo.internal resolved"));
    assert_eq!(hook.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_that_is_down_gets_the_message_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let smtp_port = smtp.port();
    let smtp_url = smtp.url();
    drop(smtp);
    let hook = WebhookServer::start(0, 500).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp_url, &hook.url());

    run(&c).await;
    run(&c).await;
    let third = run(&c).await;
    assert_eq!(events(&third), [("odoo.internal".into(), "opened".into())]);
    for channel in &third.alerts[0].channels {
        assert!(!channel.ok, "{channel:?}");
        let error = channel.error.as_deref().unwrap();
        assert!(
            !error.contains("/hook"),
            "the webhook URL is a secret: {error}"
        );
    }
    let webhook = third.alerts[0]
        .channels
        .iter()
        .find(|c| c.channel == "webhook");
    let why = webhook.unwrap().error.as_deref().unwrap();
    assert!(why.contains("HTTP 500"), "{why}");

    let smtp = SmtpServer::start_on(smtp_port).unwrap();
    let fourth = run(&c).await;
    let email: Vec<_> = fourth
        .alerts
        .iter()
        .flat_map(|a| a.channels.iter())
        .filter(|c| c.channel == "email")
        .collect();
    assert!(email.len() == 1 && email[0].ok, "{fourth:?}");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("odoo.internal opened"));
    assert_eq!(
        hook.received().len(),
        2,
        "the refusing webhook was tried again"
    );
    assert!(
        run(&c)
            .await
            .alerts
            .iter()
            .all(|a| a.channels.iter().all(|c| c.channel == "webhook"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silence_sends_nothing_and_checks_still_count() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp.url(), &hook.url());
    let silence = alerts::silence(
        &c,
        &SilenceRequest {
            length: HumanDuration::from_secs(3600),
            reason: "planned upgrade".into(),
        },
    )
    .unwrap();
    assert!(silence.by.contains('@'));
    for _ in 0..3 {
        let r = run(&c).await;
        assert_eq!(r.silenced.as_ref().unwrap().reason, "planned upgrade");
        assert!(r.alerts.iter().all(|a| a.channels.is_empty()));
    }
    assert!(smtp.messages().is_empty());
    assert!(hook.received().is_empty());
    assert!(alerts::unsilence(&c).unwrap().ended);
    assert!(!alerts::unsilence(&c).unwrap().ended);
    let r = run(&c).await;
    assert!(r.silenced.is_none());
    assert_eq!(
        events(&r),
        [("odoo.internal".into(), "opened".into())],
        "opened under the silence, announced by the first run after it"
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_notify_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp.url(), &hook.url());
    run(&c).await;
    run(&c).await;
    let (a, b) = tokio::join!(run(&c), run(&c));
    let opened = events(&a).len() + events(&b).len();
    assert_eq!(opened, 1, "{a:?} {b:?}");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_server_that_never_answers_is_a_failed_send_not_a_hung_run() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_url = format!("smtp://{}", silent.local_addr().unwrap());
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let more = "[health]\ntimeout = \"1s\"";
    let c = config_with(dir.path(), closed_port(), &smtp_url, &hook.url(), more);
    let started = std::time::Instant::now();
    let test = Alerting::from_config(&c).unwrap().test().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let email = test.channels.iter().find(|c| c.channel == "email").unwrap();
    assert!(!email.ok, "{email:?}");
    assert!(
        email
            .error
            .as_deref()
            .unwrap()
            .contains("no answer within 1 s")
    );
    assert!(test.channels.iter().any(|c| c.channel == "webhook" && c.ok));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_cannot_be_resolved_is_a_config_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let c = config(
        dir.path(),
        closed_port(),
        &smtp.url(),
        "https://x.example/T0K3N",
    );
    std::fs::remove_file(dir.path().join("webhook-url")).unwrap();
    let test = Alerting::from_config(&c).unwrap().test().await.unwrap();
    let failure = vigia_core::Outcome::failure(&test).unwrap();
    assert_eq!(failure.kind(), vigia_core::ErrorKind::Config, "{failure}");
    assert!(
        failure.to_string().contains("alerting.webhook-url"),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_test_reaches_every_channel_or_says_which_refused() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp.url(), &hook.url());
    let test = Alerting::from_config(&c).unwrap().test().await.unwrap();
    assert!(test.channels.iter().all(|c| c.ok), "{test:?}");
    assert!(smtp.messages()[0].contains("test: alerts from"));
    assert_eq!(hook.received().len(), 1);

    let refusing = WebhookServer::start(0, 403).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp.url(), &refusing.url());
    let test = Alerting::from_config(&c).unwrap().test().await.unwrap();
    let failure = vigia_core::Outcome::failure(&test).unwrap();
    assert_eq!(failure.kind(), vigia_core::ErrorKind::Network);
    assert!(failure.to_string().contains("webhook"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_state_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().unwrap();
    let hook = WebhookServer::start(0, 200).await.unwrap();
    let c = config(dir.path(), closed_port(), &smtp.url(), &hook.url());
    run(&c).await;
    let state = dir.path().join("state/alerts/default.json");
    std::fs::write(&state, b"{\"checks\": 12").unwrap();
    run(&c).await;
    let rebuilt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(rebuilt["checks"]["odoo.internal"]["bad_runs"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_run_fetches_the_heartbeat_and_a_dead_one_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let beat = WebhookServer::start(0, 200).await.unwrap();
    let file = dir.path().join("heartbeat");
    std::fs::write(&file, format!("{}?token=s3cr3t", beat.url())).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let text = format!(
        "state-dir = \"{}\"\n[odoo]\ndatabase = \"odoo\"\n[health]\nheartbeat-url = \"file:{}\"\n",
        dir.path().join("state").display(),
        file.display()
    );
    let c = ConfigSource::from_text(text, None)
        .unwrap()
        .load(None)
        .unwrap();
    let request = HealthRequest {
        only: vec!["memory".into()],
        alert: false,
    };
    let run = HealthRun::from_config(&c, &request).unwrap();
    run.run().await;
    run.run().await;
    assert_eq!(beat.gets(), ["/hook?token=s3cr3t", "/hook?token=s3cr3t"]);
    drop(beat);
    let report = run.run().await;
    assert_eq!(report.checks.len(), 1, "a dead heartbeat is not a result");
}
