//! The site the deploy tests share: releases on disk whose `run` starts the sandbox's
//! Odoo-like server (as Odoo would run from a release) and whose `upgrade` applies a
//! `migrate.sql` with psql and sets `ir_module_module`, a real PostgreSQL with the Odoo-shaped
//! database, and the gate asking the server over a real socket.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::path::{Path, PathBuf};

use vigia_core::{Config, ConfigSource};
use vigia_sandbox::odoo::create_odoo_database;
use vigia_sandbox::postgres::PgCluster;

/// The sandbox binary, built beside the tests (`cargo build --workspace --all-features`).
pub fn sandbox_bin() -> PathBuf {
    vigia_sandbox::sandbox_beside_tests()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Site {
    pub cluster: PgCluster,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Site {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    /// A release: l10n_cr_einvoice at `version` with `code`; its server answers `health`;
    /// its upgrade runs `migrate` (SQL) and then exits `upgrade_exit`.
    pub fn release(
        &self,
        name: &str,
        version: &str,
        code: &str,
        health: &str,
        migrate: &str,
        upgrade_exit: u8,
    ) {
        let dir = self.root().join("releases").join(name);
        let module = dir.join("addons/l10n_cr_einvoice");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(
            module.join("__manifest__.py"),
            format!("{{'name': 'E-invoicing CR', 'version': '{version}'}}"),
        )
        .unwrap();
        std::fs::write(module.join("models.py"), code).unwrap();
        let socket = self.cluster.socket_dir().join(".s.PGSQL.5432");
        let serving = self.dir.path().join("serving");
        script(
            &dir.join("run"),
            &format!(
                "echo {name} > {}\nexec {} serve odoo --port {} --health {health} --db-socket {}\n",
                serving.display(),
                sandbox_bin().display(),
                self.port,
                socket.display()
            ),
        );
        std::fs::write(dir.join("migrate.sql"), migrate).unwrap();
        script(
            &dir.join("upgrade"),
            &format!(
                "set -e\n{psql} -X -q -v ON_ERROR_STOP=1 -h {host} -p {port} -U {user} -d \"$1\" -f migrate.sql\n\
                 {psql} -X -q -h {host} -p {port} -U {user} -d \"$1\" -c \"UPDATE ir_module_module SET latest_version = '19.0.{version}' WHERE name = 'l10n_cr_einvoice'\"\n\
                 exit {upgrade_exit}\n",
                psql = self.cluster.bin_dir().join("psql").display(),
                host = self.cluster.socket_dir().display(),
                port = self.cluster.port(),
                user = self.cluster.user(),
            ),
        );
    }

    pub fn config(&self) -> Config {
        self.config_with("")
    }

    /// The config with more `[deploy]` keys.
    pub fn config_with(&self, extra: &str) -> Config {
        self.config_as(self.cluster.user(), extra)
    }

    /// The config with more `[deploy]` keys, connecting as `user`.
    pub fn config_as(&self, user: &str, extra: &str) -> Config {
        self.config_text(user, "", extra)
    }

    /// The config with more `[odoo]` keys (`odoo`) and `[deploy]` keys (`extra`, which may
    /// name its own `gate`), connecting as `user`.
    pub fn config_text(&self, user: &str, odoo: &str, extra: &str) -> Config {
        let gate = if extra.contains("gate = ") {
            ""
        } else {
            "gate = [\"odoo.internal\", \"postgres\"]\n"
        };
        let text = format!(
            "state-dir = \"{state}\"\n[odoo]\ndatabase = \"odoo\"\n{odoo}\
             internal-url = \"http://127.0.0.1:{port}\"\n\
             data-dir = \"{data}\"\n\
             upgrade-command = \"{{release}}/upgrade {{database}}\"\n\
             [postgres]\nhost = \"{host}\"\nport = {pgport}\nuser = \"{user}\"\nbin-dir = \"{bin}\"\n\
             [runtime]\nkind = \"local\"\nodoo-command = \"{{release}}/run\"\n\
             [deploy]\nroot = \"{root}\"\n{gate}gate-timeout = \"6s\"\n\
             observe = \"0s\"\n{extra}",
            state = self.dir.path().join("state").display(),
            port = self.port,
            host = self.cluster.socket_dir().display(),
            pgport = self.cluster.port(),
            bin = self.cluster.bin_dir().display(),
            data = self.data_dir().display(),
            root = self.root().display(),
        );
        ConfigSource::from_text(text, Some(self.dir.path()))
            .unwrap()
            .load(None)
            .unwrap()
    }

    /// Puts `lines` (sh) before what `release`'s upgrade script does.
    pub fn prefix_upgrade(&self, release: &str, lines: &str) {
        let upgrade = self.root().join("releases").join(release).join("upgrade");
        let body = std::fs::read_to_string(&upgrade).unwrap();
        script(
            &upgrade,
            &format!("{lines}\n{}", body.trim_start_matches("#!/bin/sh\n")),
        );
    }

    /// `[odoo] data-dir`: the filestore is `filestore/odoo` in it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn psql(&self, sql: &str) -> String {
        self.cluster.psql("odoo", sql).unwrap().trim().to_owned()
    }

    /// What the database holds that an upgrade changes.
    pub fn fingerprint(&self) -> String {
        self.psql(
            "SELECT string_agg(name || ':' || coalesce(latest_version, ''), ',' ORDER BY name) \
             || '|' || (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables \
             WHERE schemaname = 'public') FROM ir_module_module",
        )
    }

    pub fn serving(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serving"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn stop_odoo(&self) {
        let pid_file = self.dir.path().join("state/run/odoo.pid");
        if let Ok(pid) = std::fs::read_to_string(pid_file) {
            let pid: u32 = pid.trim().parse().unwrap();
            let _ = vigia_core::process::signal_group(pid, libc::SIGKILL);
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop_odoo();
    }
}

pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// v1 current and running, at the database's version (19.0.2.1.0).
pub async fn site() -> Site {
    let cluster = PgCluster::start().unwrap();
    create_odoo_database(&cluster, "odoo").unwrap();
    let site = Site {
        cluster,
        dir: tempfile::tempdir().unwrap(),
        port: free_port(),
    };
    site.release("v1", "2.1.0", "x = 1", "pass", "SELECT 1;", 0);
    std::os::unix::fs::symlink("releases/v1", site.root().join("current")).unwrap();
    let runtime = vigia_runtime::from_config(&site.config()).unwrap();
    runtime
        .start(vigia_core::ports::runtime::Service::Odoo)
        .await
        .unwrap();
    site
}
