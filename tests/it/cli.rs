//! End-to-end tests of the `vigia` binary: init, config check / show, --json, exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn vigia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigia"))
        .args(args)
        .env_remove("VIGIA_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// With --json, stdout is exactly one JSON document.
fn envelope(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(&text).unwrap()
}

fn init(dir: &Path) -> String {
    let out = vigia(&["init", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir.join("vigia.toml").to_str().unwrap().to_owned()
}

#[test]
fn init_writes_a_config_that_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(&dir.path().join("etc"));
    let out = vigia(&["--config", &config, "config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("config OK"));
    for file in ["vigia.toml", "backup.agekey", "name.key"] {
        let mode = std::fs::metadata(dir.path().join("etc").join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn init_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let before = std::fs::read(&config).unwrap();
    let out = vigia(&["init", "--dir", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(11));
    assert_eq!(envelope(&out)["error"]["kind"], "invalid_input");
    assert_eq!(std::fs::read(&config).unwrap(), before);
}

#[test]
fn config_check_json_prints_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let out = vigia(&["--config", &config, "config", "check", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        envelope(&out),
        serde_json::json!({"ok": true, "command": "config check",
                           "data": {"environment": null, "warnings": []}, "error": null})
    );
}

#[test]
fn typo_in_a_key_fails_naming_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\nstore = ", "\nstroe = ");
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("stroe")).unwrap() + 1;

    let out = vigia(&["--config", &config, "config", "check"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(
        stderr(&out).contains(&format!("vigia.toml:{line}: unknown key `backup.stroe`")),
        "{}",
        stderr(&out)
    );
    let out = vigia(&["--config", &config, "config", "check", "--json"]);
    assert_eq!(out.status.code(), Some(10));
    let error = &envelope(&out)["error"];
    assert_eq!(error["kind"], "config");
    assert_eq!(error["code"], 10);
    assert_eq!(error["context"]["line"], line);
    assert_eq!(error["context"]["key"], "backup.stroe");
    assert_eq!(error["context"]["file"], config);
}

#[test]
fn secret_file_readable_by_others_is_refused_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let key = dir.path().join("name.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = vigia(&["--config", &config, "config", "check"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("mode 0644"), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn config_show_picks_the_environment_and_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigia.toml");
    std::fs::write(
        &config,
        "[odoo]\ndatabase = \"odoo\"\n[alerting]\nsmtp-url = \"smtp://hunter2@mail.example.cr:587\"\n\
         [environments.staging]\nodoo.database = \"odoo_staging\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = vigia(&["--config", config, "--env", "staging", "config", "show"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("database = \"odoo_staging\""), "{text}");
    assert!(!text.contains("hunter2"));
    let out = vigia(&["--config", config, "config", "show", "--json"]);
    let shown = envelope(&out);
    assert_eq!(shown["data"]["settings"]["odoo"]["database"], "odoo");
    assert_eq!(
        shown["data"]["settings"]["alerting"]["smtp-url"],
        "smtp://***@mail.example.cr:587"
    );
}

#[test]
fn config_path_comes_from_vigia_config_when_no_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_vigia"))
        .args(["config", "check", "--json"])
        .env("VIGIA_CONFIG", &config)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn missing_config_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = vigia(&[
        "--config",
        missing.to_str().unwrap(),
        "config",
        "check",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(10));
    assert!(
        envelope(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vigia init")
    );
}

#[test]
fn bad_arguments_exit_11_with_an_envelope_under_json() {
    let out = vigia(&["frobnicate", "--json"]);
    assert_eq!(out.status.code(), Some(11));
    assert_eq!(envelope(&out)["error"]["kind"], "invalid_input");
}

#[test]
fn init_print_is_the_commented_template() {
    let out = vigia(&["init", "--print"]);
    assert!(out.status.success());
    insta::assert_snapshot!("init_print", stdout(&out));
}

#[test]
fn help_lists_only_built_commands() {
    let out = vigia(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!("help", stdout(&out));
}

#[test]
fn readme_exit_code_table_matches_the_error_kinds() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for kind in vigia::core::ErrorKind::ALL {
        let row = format!("| {} | `{}` |", kind.code(), kind.as_str());
        assert!(readme.contains(&row), "README lacks the row `{row}`");
    }
}

#[test]
fn completion_scripts_are_made_for_each_shell_and_bash_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = vigia(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = stdout(&out);
        assert!(
            script.contains("deploy") && script.contains("rollback"),
            "{shell}"
        );
        if shell == "bash" {
            let path = dir.path().join("vigia.bash");
            std::fs::write(&path, &script).unwrap();
            let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(checked.status.success(), "{checked:?}");
        }
    }
    let out = vigia(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(11),
        "an unknown shell is a usage error"
    );
    let out = vigia(&["--json", "completions", "bash"]);
    let envelope: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["data"]["shell"], "bash");
}

#[test]
fn man_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = vigia(&["--json", "man", "--dir", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let envelope: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&str> = envelope["data"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for page in [
        "vigia.1",
        "vigia-deploy.1",
        "vigia-deploy-lock.1",
        "vigia-backup-list.1",
    ] {
        assert!(listed.contains(&page), "{page} in {listed:?}");
    }
    let text = std::fs::read_to_string(pages.join("vigia-backup-list.1")).unwrap();
    assert!(text.contains(".TH vigia-backup-list 1"), "{text}");
    assert!(text.contains("The backups in the store"), "{text}");
    assert_eq!(std::fs::read_dir(&pages).unwrap().count(), listed.len());
}
