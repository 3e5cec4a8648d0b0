//! `vigia health` as a monitoring plugin runs it: exit codes 0-3, `--legacy-exit`, the first
//! line, usage errors as unknown, and the JSON envelope.

use crate::common::stack;

#[test]
fn exit_codes_follow_the_worst_check_and_the_legacy_convention() {
    let s = stack(0);
    // No backup yet: backup.age is critical.
    let (code, out) = s.json(&["health", "--only", "postgres,backup.age"]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out["ok"], false);
    assert_eq!(out["error"]["kind"], "check_failed");
    assert_eq!(out["data"]["status"], "critical");
    let names: Vec<&str> = out["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres", "backup.age"]);
    let legacy = s.run(&["health", "--only", "backup.age", "--legacy-exit"], &[]);
    assert_eq!(legacy.status.code(), Some(1));

    let (code, backup) = s.json(&["backup"]);
    assert_eq!(code, Some(0), "{backup}");
    let text = s.run(&["health", "--only", "postgres,backup.age"], &[]);
    assert_eq!(text.status.code(), Some(0));
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(
        stdout.starts_with("VIGIA OK - 2 checks ok | 'postgres'="),
        "{stdout}"
    );
    let legacy = s.run(&["health", "--only", "postgres", "--legacy-exit"], &[]);
    assert_eq!(legacy.status.code(), Some(0));
}

#[test]
fn bad_arguments_and_a_bad_config_are_unknown_not_11() {
    let s = stack(0);
    let (code, out) = s.json(&["health", "--only", "odoo"]);
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(out["error"]["kind"], "invalid_input");
    let usage = s.run(&["health", "--no-such-flag"], &[]);
    assert_eq!(usage.status.code(), Some(3));
    s.edit_config(|text| format!("{text}\n[health]\ntimeout = \"0s\"\n"));
    let (code, out) = s.json(&["health"]);
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(out["error"]["kind"], "config");
}

#[test]
fn alert_commands_say_what_is_missing_and_silence_until_told_otherwise() {
    let s = stack(0);
    let (code, out) = s.json(&["health", "--only", "postgres", "--alert"]);
    assert_eq!(code, Some(3), "--alert without [alerting]: {out}");
    assert_eq!(out["error"]["kind"], "config");
    let (code, out) = s.json(&["alert", "test"]);
    assert_eq!(code, Some(10), "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[alerting]")
    );

    let (code, out) = s.json(&["alert", "silence", "--for", "2h", "--reason", "upgrade"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["reason"], "upgrade");
    assert!(out["data"]["until"].as_str().unwrap().ends_with('Z'));
    let (code, out) = s.json(&["alert", "silence", "--for", "2x", "--reason", "x"]);
    assert_eq!(code, Some(11), "{out}");
    let (code, out) = s.json(&["alert", "unsilence"]);
    assert_eq!(
        (code, &out["data"]["ended"]),
        (Some(0), &true.into()),
        "{out}"
    );

    // Nothing listens where the webhook points: a refused send is a network error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/T0K3N", closed.local_addr().unwrap());
    drop(closed);
    s.edit_config(|text| format!("{text}\n[alerting]\nwebhook-url = \"env:VIGIA_TEST_HOOK\"\n"));
    let out = s.run(&["alert", "test", "--json"], &[("VIGIA_TEST_HOOK", &url)]);
    assert_eq!(out.status.code(), Some(13));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("webhook"), "{stdout}");
    assert!(
        !stdout.contains("T0K3N"),
        "the webhook URL is a secret: {stdout}"
    );
}

#[test]
fn smoke_is_a_plugin_too_and_judges_the_site_it_is_given() {
    use vigia_sandbox::nginx::{NginxServer, OdooSite};
    use vigia_sandbox::odoo_http::{Health, OdooServer};
    use vigia_sandbox::odoo_site::Site;
    use vigia_sandbox::tls::{Leaf, TestCa};

    const HOST: &str = "erp.example.cr";
    let s = stack(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let odoo = runtime
        .block_on(OdooServer::start_site(
            0,
            0,
            Health::Pass { db_socket: None },
            Site::default(),
        ))
        .unwrap();
    let root = TestCa::new("Vigia CLI Root").unwrap();
    let leaf = root
        .leaf(&Leaf {
            names: &[HOST],
            common_name: Some(HOST),
            valid_days: Some((-1, 90)),
        })
        .unwrap();
    let nginx = NginxServer::odoo(
        &odoo.url(),
        &odoo.gevent_url(),
        (&leaf.cert_pem, &leaf.key_pem),
        &OdooSite::default(),
    )
    .unwrap();
    let ca = s.dir.path().join("ca.pem");
    std::fs::write(&ca, root.cert_pem()).unwrap();
    s.edit_config(|text| {
        format!(
            "{text}\n[health]\nresolve = {{ \"{HOST}\" = \"127.0.0.1\" }}\nca-file = \"{}\"\n\
             [smoke]\nhttp-url = \"http://{HOST}:{}\"\n",
            ca.display(),
            nginx.http_port().unwrap()
        )
    });
    let url = format!("https://{HOST}:{}", nginx.port());
    let (code, out) = s.json(&["smoke", "--url", &url]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["command"], "smoke");
    let names: Vec<&str> = out["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The names are interface (metric labels): pinned here, not taken from the library.
    assert_eq!(
        names,
        [
            "tls",
            "smoke.health",
            "smoke.login",
            "smoke.websocket",
            "smoke.version",
            "smoke.dbmanager",
            "smoke.latency",
            "smoke.tls",
            "smoke.headers",
            "smoke.score"
        ]
    );
    assert!(
        !s.dir.path().join("state/vigia-smoke.prom").exists(),
        "another site than [odoo] url's: reported, not exported"
    );

    // Odoo's own port, plain HTTP: no TLS is critical, the report kept.
    let (code, out) = s.json(&["smoke", "--url", &odoo.url()]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out["error"]["kind"], "check_failed");
    assert_eq!(out["data"]["status"], "critical");
    let text = s.run(&["smoke", "--url", &odoo.url(), "--legacy-exit"], &[]);
    assert_eq!(text.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("VIGIA CRITICAL - "));

    // A password in the URL is refused without being shown; bad arguments are unknown (3).
    let (code, out) = s.json(&["smoke", "--url", "https://admin:hunter2@erp.example.cr"]);
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(out["error"]["kind"], "invalid_input");
    assert!(!out.to_string().contains("hunter2"), "{out}");
    let usage = s.run(&["smoke", "--no-such-flag"], &[]);
    assert_eq!(usage.status.code(), Some(3));
}

#[test]
fn a_run_whose_alert_reaches_nobody_is_unknown_whatever_the_checks_said() {
    let s = stack(0);
    // Nothing listens where the webhook points.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    s.edit_config(|text| {
        format!(
            "{text}\n[alerting]\nwebhook-url = \"env:VIGIA_TEST_HOOK\"\nfailure-threshold = 1\n"
        )
    });
    let env = [("VIGIA_TEST_HOOK", url.as_str())];
    // No backup yet: backup.age is critical (2), and its alert is refused: unknown (3), so
    // that a unit taking 1 and 2 as results still fails.
    let out = s.run(&["health", "--only", "backup.age", "--alert"], &env);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.starts_with("VIGIA UNKNOWN - backup.age; alerts not delivered: backup.age"),
        "{stdout}"
    );
    // Alerting itself failing (its state cannot be written) is unknown too, even when every
    // check is ok.
    let alerts = std::path::Path::new(&s.config).with_file_name("state/alerts");
    std::fs::remove_dir_all(&alerts).unwrap();
    std::fs::write(&alerts, "not a folder").unwrap();
    let (code, out) = s.json_with(&["health", "--only", "postgres", "--alert"], &env);
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(out["data"]["status"], "ok", "{out}");
    assert_eq!(out["ok"], false, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alerting failed"),
        "{out}"
    );
}
