//! `vigia backup`, `backup list`, `backup show` end to end: the real binary, a throwaway
//! PostgreSQL with an Odoo-shaped database, a filestore on disk, the local store.

use std::path::Path;
use std::process::Command;

use vigia_sandbox::postgres::PgCluster;
use vigia_sandbox::tls::TestCa;

use crate::common::{Stack, init_config, stack, stack_on, vigia};

fn setup() -> Stack {
    stack(0)
}

fn json(s: &Stack, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    s.json(args)
}

#[test]
fn backup_twice_then_list_and_show() {
    let s = setup();
    let (code, first) = json(&s, &["backup"]);
    assert_eq!(code, Some(0), "{first}");
    let data = &first["data"];
    assert_eq!(data["database"], "odoo");
    assert_eq!(data["filestore"]["files"], 12);
    assert_eq!(data["filestore"]["new_files"], 12);
    assert!(data["size_bytes"].as_u64().unwrap() >= data["uploaded_bytes"].as_u64().unwrap());
    for field in ["id", "duration_ms", "uploaded_bytes"] {
        assert!(!data[field].is_null(), "{field}");
    }

    let (_, second) = json(&s, &["backup"]);
    assert_eq!(second["data"]["filestore"]["new_files"], 0);
    assert_eq!(second["data"]["filestore"]["new_bytes"], 0);

    let (code, list) = json(&s, &["backup", "list"]);
    assert_eq!(code, Some(0));
    let backups = list["data"]["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2);
    assert_eq!(backups[0]["id"], first["data"]["id"]);
    for field in [
        "id",
        "started_at",
        "finished_at",
        "database",
        "size_bytes",
        "verified",
    ] {
        assert!(backups[0].get(field).is_some(), "backup list has `{field}`");
    }

    let id = first["data"]["id"].as_str().unwrap();
    let (code, show) = json(&s, &["backup", "show", id]);
    assert_eq!(code, Some(0), "{show}");
    assert_eq!(show["data"]["index"]["id"], id);
    assert_eq!(
        show["data"]["manifest"]["row_counts"]["public.res_partner"],
        50
    );
    assert_eq!(show["data"]["manifest"]["modules"]["base"], "19.0.1.3");
    assert!(Path::new(&s.dir.path().join("backups/keys/name-key.age")).exists());

    // Without vigia: the Go age CLI, zstd and pg_restore read the stored dump (format 1: one
    // archive; format 2: the schema and each data stream, archives of their own).
    let folder = s.dir.path().join(format!("backups/backups/{id}"));
    let pg_restore = s.cluster.as_ref().unwrap().bin_dir().join("pg_restore");
    let out = Command::new("bash")
        .arg("-c")
        // Through a file: pg_restore --list stops reading after the TOC, and the SIGPIPE that
        // would give zstd fails the pipe.
        .arg(format!(
            "set -o pipefail; shopt -s nullglob; cd '{0}'; \
             for f in dump.age schema.age data-*.age; do [ -e \"$f\" ] || continue; \
             age -d -i '{1}' \"$f\" | zstd -d -c > '{2}' && '{3}' --list '{2}' || exit 1; done",
            folder.display(),
            s.dir.path().join("backup.agekey").display(),
            s.dir.path().join("plain.dump").display(),
            pg_restore.display()
        ))
        .output()
        .unwrap();
    let toc = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && toc.contains("TABLE public res_partner")
            && toc.contains("TABLE DATA public res_partner"),
        "age | zstd -d | pg_restore --list (Debian packages age, zstd): {toc}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn show_of_an_unknown_or_malformed_id_is_invalid_input() {
    let s = setup();
    let (code, out) = json(&s, &["backup", "show", "20200101T000000Z-zzzz"]);
    assert_eq!(code, Some(11));
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vigia backup list")
    );
    let (code, _) = json(&s, &["backup", "show", "yesterday"]);
    assert_eq!(code, Some(11));
}

#[test]
fn a_missing_filestore_file_fails_the_backup_unless_allowed() {
    let s = setup();
    let filestore = s.dir.path().join("data/filestore/odoo");
    let first_dir = std::fs::read_dir(&filestore)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let victim = std::fs::read_dir(&first_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&victim).unwrap();
    let (code, out) = json(&s, &["backup"]);
    assert_eq!(code, Some(17), "{out}");
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(out["error"]["message"].as_str().unwrap().contains(name));
    let (_, list) = json(&s, &["backup", "list"]);
    assert_eq!(
        list["data"]["backups"].as_array().unwrap().len(),
        0,
        "a failed backup is not listed"
    );
    let (code, out) = json(&s, &["backup", "--allow-missing-files"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["filestore"]["files"], 11);
    assert_eq!(
        out["data"]["filestore"]["problems"][0]["problem"],
        "missing"
    );
}

/// The password reaches pg_dump and the connection through the environment: it appears on no
/// process's command line while the backup runs, and in none of vigia's output.
#[test]
fn the_database_password_is_on_no_command_line_and_in_no_output() {
    const PASSWORD: &str = "Sup3r-Secreta-pg-2026";
    let cluster = PgCluster::start_with_password(PASSWORD).unwrap();
    cluster.create_database("odoo").unwrap();
    cluster
        .psql("odoo", "CREATE TABLE ir_attachment (id int, store_fname varchar); CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path(), &cluster);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "# password = \"env:PGPASSWORD\"",
        "password = \"env:VIGIA_TEST_PG_PASSWORD\"",
    );
    std::fs::write(&config, text).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_vigia"))
        .args(["--config", &config, "backup", "-v"])
        .env("VIGIA_TEST_PG_PASSWORD", PASSWORD)
        .env_remove("PGPASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut samples = 0;
    let mut saw_pg_dump = false;
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !cmdline.contains(PASSWORD),
                "the password is on a command line: {cmdline}"
            );
            saw_pg_dump |= cmdline.contains("pg_dump");
        }
        samples += 1;
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        samples > 0 && saw_pg_dump,
        "pg_dump was seen while sampling ({samples} samples)"
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(PASSWORD));
    }
}

#[test]
fn a_wrong_database_password_is_a_database_error() {
    let cluster = PgCluster::start_with_password("the-right-one").unwrap();
    cluster.create_database("odoo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Stack {
        config: init_config(dir.path(), &cluster),
        cluster: Some(cluster),
        dir,
        env: vec![("VIGIA_TEST_PG_PASSWORD".into(), "a-wrong-one".into())],
    };
    s.edit_config(|t| {
        t.replace(
            "# password = \"env:PGPASSWORD\"",
            "password = \"env:VIGIA_TEST_PG_PASSWORD\"",
        )
    });
    let (code, out) = s.json(&["backup"]);
    assert_eq!(code, Some(14), "{out}");
    let message = out["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(!message.contains("a-wrong-one"));
}

/// Regression (issue 10 item 6): vigia had no `[postgres] sslmode` and connected without TLS.
/// Now the config's sslmode reaches pg_dump too, whatever PGSSL* variables vigia itself was
/// started with: here they say "no TLS" and "verify against an unrelated CA".
#[test]
fn a_backup_over_tls_follows_the_config_not_inherited_pgssl_variables() {
    const PASSWORD: &str = "tls-pg-2026";
    let mut s = stack_on(PgCluster::start_tls(PASSWORD).unwrap(), 0);
    let cluster = s.cluster.as_ref().unwrap();
    let socket = format!("host = \"{}\"", cluster.socket_dir().display());
    let unrelated = s.dir.path().join("unrelated-ca.crt");
    std::fs::write(&unrelated, TestCa::new("unrelated").unwrap().cert_pem()).unwrap();
    s.edit_config(|t| {
        t.replace(&socket, "host = \"localhost\"").replace(
            "# password = \"env:PGPASSWORD\"",
            "password = \"env:VIGIA_TEST_PG_PASSWORD\"\nsslmode = \"require\"",
        )
    });
    s.env = vec![
        ("VIGIA_TEST_PG_PASSWORD".into(), PASSWORD.into()),
        ("PGSSLMODE".into(), "disable".into()),
        ("PGSSLROOTCERT".into(), unrelated.display().to_string()),
    ];
    let (code, out) = s.json(&["backup"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["filestore"]["files"], 12);
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// A one-request HTTP server on loopback; returns its URL and the request line it received.
fn heartbeat_server() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ping/abc", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(socket.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK")
            .unwrap();
        line
    });
    (url, handle)
}

fn set_heartbeat(s: &Stack, url: &str) {
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "store = \"local\"",
        &format!("store = \"local\"\nheartbeat-url = \"{url}\""),
    );
    std::fs::write(&s.config, text).unwrap();
}

#[test]
fn success_writes_metrics_and_pings_the_heartbeat() {
    let s = setup();
    let (url, server) = heartbeat_server();
    set_heartbeat(&s, &url);
    let (code, out) = json(&s, &["backup"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["warnings"], serde_json::json!([]));
    assert_eq!(server.join().unwrap().trim(), "GET /ping/abc HTTP/1.1");
    let metrics = std::fs::read_to_string(s.dir.path().join("state/vigia-backup.prom")).unwrap();
    let size = out["data"]["size_bytes"].as_u64().unwrap();
    assert!(
        metrics.contains(&format!("vigia_backup_size_bytes {size}\n")),
        "{metrics}"
    );
    assert!(metrics.contains("vigia_backup_last_success_timestamp_seconds "));
}

#[test]
fn an_unreachable_heartbeat_is_a_warning_not_a_failed_backup() {
    let s = setup();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    set_heartbeat(&s, &format!("http://{closed}/ping"));
    let (code, out) = json(&s, &["backup"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out["data"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("heartbeat"),
        "{out}"
    );
    let (_, list) = json(&s, &["backup", "list"]);
    assert_eq!(list["data"]["backups"].as_array().unwrap().len(), 1);
}

#[test]
fn verify_records_its_result_and_fails_with_17_naming_a_corrupt_object() {
    let s = setup();
    let (_, backup) = json(&s, &["backup"]);
    let id = backup["data"]["id"].as_str().unwrap();

    let (code, out) = json(&s, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out["data"]["results"][0]["level"], "full",
        "an identity is configured"
    );
    let (code, out) = json(&s, &["verify", id, "--level", "drill"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["results"][0]["ok"], true);
    let (_, list) = json(&s, &["backup", "list"]);
    assert_eq!(list["data"]["backups"][0]["verified"]["level"], "drill");
    assert_eq!(list["data"]["backups"][0]["verified"]["ok"], true);

    let objects = s.dir.path().join("backups/objects");
    let victim = std::fs::read_dir(&objects)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(victim.path()).unwrap();
    let final_byte = bytes.len() - 1;
    bytes[final_byte] ^= 0x80;
    std::fs::write(victim.path(), bytes).unwrap();
    let (code, out) = json(&s, &["verify", "--all"]);
    assert_eq!(code, Some(17), "{out}");
    assert_eq!(out["ok"], false);
    assert_eq!(out["error"]["kind"], "integrity");
    let problem = &out["data"]["results"][0]["problems"][0];
    let key = format!("objects/{}", victim.file_name().to_str().unwrap());
    assert_eq!(problem["object"], key.as_str());
    assert!(
        problem["problem"]
            .as_str()
            .unwrap()
            .starts_with("sha256 mismatch")
    );
    let (code, _) = json(&s, &["verify", "--level", "sideways"]);
    assert_eq!(code, Some(11));
}

#[test]
fn prune_plans_then_applies_and_keeps_the_newest_verified_backup() {
    let s = setup();
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(
        "\n[backup.retention]\nkeep-last = 1\nkeep-daily = 0\nkeep-weekly = 0\nkeep-monthly = 0\n",
    );
    std::fs::write(&s.config, text).unwrap();
    let ids: Vec<String> = (0..3)
        .map(|_| {
            json(&s, &["backup"]).1["data"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let (code, _) = json(&s, &["verify", &ids[0]]);
    assert_eq!(code, Some(0));

    let (code, plan) = json(&s, &["prune", "--dry-run"]);
    assert_eq!(code, Some(0), "{plan}");
    assert_eq!(plan["data"]["applied"], false);
    assert_eq!(plan["data"]["keep"], serde_json::json!([ids[0], ids[2]]));
    assert_eq!(plan["data"]["delete"], serde_json::json!([ids[1]]));
    assert_eq!(plan["data"]["reasons"][&ids[0]][0], "newest verified");
    let (_, list) = json(&s, &["backup", "list"]);
    assert_eq!(list["data"]["backups"].as_array().unwrap().len(), 3);

    let (code, applied) = json(&s, &["prune"]);
    assert_eq!(code, Some(0), "{applied}");
    assert_eq!(applied["data"]["applied"], true);
    assert_eq!(applied["data"]["delete"], plan["data"]["delete"]);
    assert!(applied["data"]["bytes_freed"].as_u64().unwrap() > 0);
    let (_, list) = json(&s, &["backup", "list"]);
    let left: Vec<&str> = list["data"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [ids[0].as_str(), ids[2].as_str()]);
}

/// The README's first command: everything on embedded defaults, and the report says where.
#[test]
fn demo_backs_up_drills_and_backs_up_again_with_nothing_configured() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigia(&["demo", "--dir", dir.path().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Drill passed"), "{text}");
    assert!(
        text.contains("0 new filestore files, 0 B of filestore uploaded"),
        "{text}"
    );
    assert!(text.contains(&dir.path().join("backups").display().to_string()));
    // This binary is not on PATH: the "Try" lines name it.
    let me = std::fs::canonicalize(env!("CARGO_BIN_EXE_vigia")).unwrap();
    assert!(
        text.contains(&format!("  {} --config ", me.display())),
        "{text}"
    );

    let config = dir.path().join("vigia.toml");
    let s = Stack {
        cluster: None,
        config: config.to_str().unwrap().to_owned(),
        dir,
        env: Vec::new(),
    };
    let (code, list) = json(&s, &["backup", "list"]);
    assert_eq!(code, Some(0), "{list}");
    let backups = list["data"]["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2);
    assert_eq!(backups[0]["verified"]["level"], "drill");
    let (code, again) = json(&s, &["demo", "--dir", s.dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(11), "the demo never overwrites keys: {again}");
}

/// `extra.age` holds the config and the Hacienda certificate (encrypted, never in the clear),
/// and the manifest hashes the addons, so a restore knows which code matched the database.
#[test]
fn the_certificate_config_and_addon_hashes_are_in_the_backup() {
    const P12: &[u8] = b"0\x82\x0a\x1fllave criptografica de prueba 3101123456";
    let s = setup();
    std::fs::write(s.dir.path().join("llave.p12"), P12).unwrap();
    let module = s.dir.path().join("addons/l10n_cr_einvoice");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(module.join("__manifest__.py"), "{'version': '19.0.2.1.0'}").unwrap();
    s.edit_config(|t| {
        t.replace(
            "data-dir = \"data\"",
            "data-dir = \"data\"\naddons-paths = [\"addons\"]",
        ) + "\n[hacienda]\ncertificate = \"llave.p12\"\n"
    });
    let (code, backup) = json(&s, &["backup"]);
    assert_eq!(code, Some(0), "{backup}");
    let id = backup["data"]["id"].as_str().unwrap();
    let (_, show) = json(&s, &["backup", "show", id]);
    let manifest = &show["data"]["manifest"];
    assert_eq!(
        manifest["addons"]["l10n_cr_einvoice"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let names: Vec<&str> = manifest["extra"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config/vigia.toml", "hacienda/llave.p12"]);

    let extra = s.dir.path().join(format!("backups/backups/{id}/extra.age"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; age -d -i '{}' '{}' | zstd -d -c | tar -xO hacienda/llave.p12",
            s.dir.path().join("backup.agekey").display(),
            extra.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.stdout, P12, "{}", String::from_utf8_lossy(&out.stderr));
    let stored = std::fs::read(&extra).unwrap();
    assert!(!stored.windows(P12.len()).any(|w| w == P12));
    let (code, verify) = json(&s, &["verify"]);
    assert_eq!(code, Some(0), "{verify}");
}

#[test]
fn restore_dry_run_prints_the_plan_and_touches_nothing() {
    let s = setup();
    let (_, backup) = json(&s, &["backup"]);
    let id = backup["data"]["id"].as_str().unwrap();
    let databases = || {
        s.cluster
            .as_ref()
            .unwrap()
            .psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
            .unwrap()
    };
    let before = databases();
    let (code, out) = json(&s, &["restore", id, "--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    let plan = &out["data"]["plan"];
    assert_eq!(plan["source"]["backup"], id);
    assert_eq!(plan["live_database"], "odoo");
    assert!(
        plan["aside"]
            .as_str()
            .unwrap()
            .starts_with("odoo_pre_restore_")
    );
    assert!(plan["steps"].as_array().unwrap().len() > 5, "{plan}");
    let (code, beside) = json(&s, &["restore", id, "--target-db", "copy", "--dry-run"]);
    assert_eq!(code, Some(0), "{beside}");
    assert_eq!(beside["data"]["plan"]["copy"], "copy");
    assert!(beside["data"]["plan"]["aside"].is_null());
    assert_eq!(databases(), before);
    assert!(!s.dir.path().join("data/filestore/copy").exists());
    // A refusal is the same with or without --dry-run.
    let (code, refused) = json(
        &s,
        &[
            "restore",
            id,
            "--target-db",
            "x",
            "--force-sessions",
            "--dry-run",
        ],
    );
    assert_eq!(code, Some(11), "{refused}");
}

#[test]
fn restore_beside_the_live_database() {
    let s = setup();
    let (_, backup) = json(&s, &["backup"]);
    let id = backup["data"]["id"].as_str().unwrap();
    let (code, out) = json(
        &s,
        &["restore", id, "--target-db", "odoo_copy", "--jobs", "1"],
    );
    assert_eq!(code, Some(0), "{out}");
    insta::assert_json_snapshot!("restore_beside", out, {
        ".data.id" => "[id]",
        ".data.filestore" => "[dir]/data/filestore/odoo_copy",
        ".data.phases[].duration_ms" => "[ms]",
    });
    let data = &out["data"];
    assert_eq!(data["target_database"], "odoo_copy");
    assert_eq!(data["swapped"], false);
    assert!(data["aside"].is_null());
    assert_eq!(data["phases"].as_array().unwrap().len(), 4);
    let cluster = s.cluster.as_ref().unwrap();
    let partners = cluster
        .psql("odoo_copy", "SELECT count(*) FROM res_partner")
        .unwrap();
    assert_eq!(partners.trim(), "50");
    let restored = s.dir.path().join("data/filestore/odoo_copy");
    let files: usize = std::fs::read_dir(&restored)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 12);

    let (code, again) = json(&s, &["restore", id, "--target-db", "odoo_copy"]);
    assert_eq!(code, Some(11), "{again}");
    let (code, _) = json(
        &s,
        &["restore", id, "--target-db", "x", "--confirm", "odoo"],
    );
    assert_eq!(
        code,
        Some(11),
        "--confirm goes with an in-place restore only"
    );
}

/// `--neutralize` from the CLI; a restore beside that fails (here: its neutralize-sql) is
/// found by `--cleanup` through its record, though its name is the user's.
#[test]
fn a_failed_neutralized_restore_beside_is_found_and_removed_by_cleanup() {
    let s = setup();
    let (_, backup) = json(&s, &["backup"]);
    let id = backup["data"]["id"].as_str().unwrap();
    let (code, out) = json(
        &s,
        &["restore", id, "--target-db", "odoo_test", "--neutralize"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["neutralized"]["statements"], 0);
    let cluster = s.cluster.as_ref().unwrap();
    let active = |db: &str| {
        cluster
            .psql(db, "SELECT count(*) FROM ir_cron WHERE active")
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(active("odoo_test"), "1", "only the autovacuum");
    assert_eq!(active("odoo"), "4");

    s.edit_config(|t| format!("{t}\n[restore]\nneutralize-sql = [\"SELECT 1/0\"]\n"));
    let (code, failed) = json(
        &s,
        &["restore", id, "--target-db", "odoo_stage", "--neutralize"],
    );
    assert_eq!(code, Some(14), "{failed}");
    let (code, listed) = json(&s, &["restore", "--cleanup"]);
    assert_eq!(code, Some(0), "{listed}");
    assert_eq!(
        listed["data"]["databases"],
        serde_json::json!(["odoo_stage"])
    );
    let stage_files = s.dir.path().join("data/filestore/odoo_stage");
    assert_eq!(
        listed["data"]["filestores"],
        serde_json::json!([stage_files.to_str().unwrap()])
    );
    let (code, _) = json(&s, &["restore", "--cleanup", "--apply"]);
    assert_eq!(code, Some(0));
    assert!(!stage_files.exists());
    let (_, again) = json(&s, &["restore", "--cleanup"]);
    assert_eq!(again["data"]["databases"], serde_json::json!([]));
    assert_eq!(
        active("odoo_test"),
        "1",
        "a finished restore is not a leftover"
    );
}

/// `--from-odoo-zip` from the CLI: what the zip holds is in the output, and the copy lands.
#[test]
fn restore_from_an_odoo_zip_beside_the_live_database() {
    let s = setup();
    let cluster = s.cluster.as_ref().unwrap();
    let files = s.dir.path().join("data/filestore/odoo");
    let zip = s.dir.path().join("odoo.zip");
    let manifest = vigia_sandbox::odoo::ZipManifest::default();
    vigia_sandbox::odoo::OdooDump::new(cluster, "odoo", Some(&files), &manifest)
        .unwrap()
        .zip(&zip, true)
        .unwrap();
    let zip_arg = zip.to_str().unwrap();
    let out = s.run(
        &[
            "restore",
            "--from-odoo-zip",
            zip_arg,
            "--target-db",
            "odoo_zip",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Odoo 19.0 backup of database odoo"),
        "{stdout}"
    );
    assert!(
        stdout.contains("restored into database odoo_zip"),
        "{stdout}"
    );
    let partners = cluster
        .psql("odoo_zip", "SELECT count(*) FROM res_partner")
        .unwrap();
    assert_eq!(partners.trim(), "50");

    let (code, both) = json(&s, &["restore", "x", "--from-odoo-zip", zip_arg]);
    assert_eq!(code, Some(11), "{both}");
}
