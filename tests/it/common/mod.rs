//! For the end-to-end tests: the real `vigia` binary against a throwaway PostgreSQL holding
//! the Odoo-shaped database, a filestore on disk and a config written by `vigia init`.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use vigia_sandbox::postgres::PgCluster;

pub mod compose;
pub mod releases;

pub struct Stack {
    pub cluster: Option<PgCluster>,
    pub dir: tempfile::TempDir,
    pub config: String,
    /// Extra environment for every vigia run (secrets referenced as `env:`).
    pub env: Vec<(String, String)>,
}

/// 12 filestore files; `big_rows` rows of 64 hex characters in table `big` (a dump of a
/// few MiB per 100 000 rows).
pub fn stack(big_rows: u32) -> Stack {
    stack_on(PgCluster::start().unwrap(), big_rows)
}

/// [`stack`] on a cluster of the caller's (one with TLS, with a password).
pub fn stack_on(cluster: PgCluster, big_rows: u32) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    vigia_sandbox::fixture::odoo_database(&cluster, &dir.path().join("data/filestore/odoo"), 12)
        .unwrap();
    if big_rows > 0 {
        cluster
            .psql(
                "odoo",
                &format!(
                    "CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v \
                     FROM generate_series(1, {big_rows}) g"
                ),
            )
            .unwrap();
    }
    let config = init_config(dir.path(), &cluster);
    Stack {
        cluster: Some(cluster),
        dir,
        config,
        env: Vec::new(),
    }
}

/// The store format the tests' configs write: 2, or 1 when `VIGIA_TEST_FORMAT=1`
/// (scripts/test runs the backup and restore tests on both).
pub fn store_format() -> u32 {
    match std::env::var("VIGIA_TEST_FORMAT").as_deref() {
        Ok("1") => 1,
        _ => 2,
    }
}

/// `vigia init --dir DIR`, then the config pointed at `cluster` and `DIR/data`.
pub fn init_config(dir: &Path, cluster: &PgCluster) -> String {
    let out = vigia(&["init", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let config = dir.join("vigia.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("# data-dir = \"/srv/odoo/data\"", "data-dir = \"data\"")
        .replace(
            "host = \"localhost\"",
            &format!("host = \"{}\"", cluster.socket_dir().display()),
        )
        .replace("port = 5432", &format!("port = {}", cluster.port()))
        // scripts/test runs the backup and restore tests on both store formats.
        .replace(
            "\n[backup]\n",
            &format!("\n[backup]\nformat = {}\n", store_format()),
        )
        .replace(
            "user = \"odoo\"",
            &format!(
                "user = \"postgres\"\nbin-dir = \"{}\"",
                cluster.bin_dir().display()
            ),
        );
    std::fs::write(&config, text).unwrap();
    config.to_str().unwrap().to_owned()
}

impl Stack {
    /// Rewrites the config's text with `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, edit(text)).unwrap();
    }

    /// How many partners `database` holds (or the error, as text).
    pub fn partners(&self, database: &str) -> String {
        self.cluster
            .as_ref()
            .unwrap()
            .psql(database, "SELECT count(*) FROM res_partner")
            .map_or_else(|e| format!("error: {e}"), |out| out.trim().to_owned())
    }

    /// A backup, then the live database changed (partners 41-50 deleted); the backup's id.
    pub fn backup_then_change(&self) -> String {
        let (code, backup) = self.json(&["backup"]);
        assert_eq!(code, Some(0), "{backup}");
        self.cluster
            .as_ref()
            .unwrap()
            .psql("odoo", "DELETE FROM res_partner WHERE id > 40")
            .unwrap();
        backup["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Runs vigia with `--config` and `--json`; (exit code, the envelope).
    pub fn json(&self, args: &[&str]) -> (Option<i32>, serde_json::Value) {
        self.json_with(args, &[])
    }

    /// `json` with `extra_env`.
    pub fn json_with(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> (Option<i32>, serde_json::Value) {
        let out = self.run(&[&["--json"], args].concat(), extra_env);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.lines().count(),
            1,
            "one JSON document: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), serde_json::from_str(&text).unwrap())
    }

    /// Runs vigia with `--config`, the stack's environment and `extra_env`.
    pub fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        self.command(args, extra_env).output().unwrap()
    }

    /// `vigia` with this stack's config, started and left running (its output discarded).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigia"));
        command
            .args(["--config", &self.config])
            .args(args)
            .env_remove("VIGIA_CONFIG")
            .env_remove("VIGIA_FAILPOINT");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command
    }
}

pub fn vigia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigia"))
        .args(args)
        .env_remove("VIGIA_CONFIG")
        .output()
        .unwrap()
}
