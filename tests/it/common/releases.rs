//! Releases for the deploy tests: `[deploy] root` under the stack's folder, the local runtime
//! running the sandbox's Odoo-like server from the current release, and an upgrade that
//! applies the release's `migrate.sql` with psql and sets the module's version.

use std::path::{Path, PathBuf};

use super::Stack;

/// The sandbox binary, built beside vigia.
pub fn sandbox_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_vigia")).with_file_name("vigia-sandbox");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-features`",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Releases<'s> {
    pub stack: &'s Stack,
    pub port: u16,
}

impl<'s> Releases<'s> {
    /// v1 (the database's 19.0.2.1.0) current; the config gains the local runtime, the
    /// upgrade command and `[deploy]` with a quick gate. Odoo is not started.
    pub fn new(stack: &'s Stack) -> Self {
        let releases = Self {
            stack,
            port: free_port(),
        };
        releases.release("v1", "2.1.0", "SELECT 1;");
        std::os::unix::fs::symlink("releases/v1", releases.root().join("current")).unwrap();
        let (port, root) = (releases.port, releases.root());
        stack.edit_config(|text| {
            format!(
                "{}\n[runtime]\nkind = \"local\"\nodoo-command = \"{{release}}/run\"\n\
                 [deploy]\nroot = \"{}\"\ngate = [\"odoo.internal\", \"postgres\"]\n\
                 gate-timeout = \"8s\"\nobserve = \"0s\"\n",
                text.replace(
                    "[odoo]\n",
                    &format!(
                        "[odoo]\ninternal-url = \"http://127.0.0.1:{port}\"\n\
                         upgrade-command = \"{{release}}/upgrade {{database}}\"\n"
                    ),
                ),
                root.display()
            )
        });
        releases
    }

    pub fn root(&self) -> PathBuf {
        self.stack.dir.path().join("srv")
    }

    /// The state of Odoo as the stack's local runtime sees it.
    pub fn odoo(&self, start: bool) -> vigia_core::ports::runtime::ServiceState {
        use vigia_core::ports::runtime::Service;
        let config = vigia_core::Config::load(Path::new(&self.stack.config), None).unwrap();
        let runtime = vigia_runtime::from_config(&config).unwrap();
        let tokio = tokio::runtime::Runtime::new().unwrap();
        tokio.block_on(async {
            if start {
                runtime.start(Service::Odoo).await.unwrap();
            }
            runtime.status(Service::Odoo).await.unwrap()
        })
    }

    /// Starts Odoo from the current release.
    pub fn start_odoo(&self) {
        self.odoo(true);
    }

    /// A release whose l10n_cr_einvoice is at `version`, whose upgrade runs `migrate`.
    pub fn release(&self, name: &str, version: &str, migrate: &str) {
        let cluster = self.stack.cluster.as_ref().unwrap();
        let dir = self.root().join("releases").join(name);
        let module = dir.join("addons/l10n_cr_einvoice");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(
            module.join("__manifest__.py"),
            format!("{{'name': 'E-invoicing CR', 'version': '{version}'}}"),
        )
        .unwrap();
        std::fs::write(module.join("models.py"), format!("V = '{version}'\n")).unwrap();
        let serving = self.stack.dir.path().join("serving");
        script(
            &dir.join("run"),
            &format!(
                "echo {name} > {}\nexec {} serve odoo --port {} --db-socket {}\n",
                serving.display(),
                sandbox_bin().display(),
                self.port,
                cluster.socket_dir().join(".s.PGSQL.5432").display()
            ),
        );
        std::fs::write(dir.join("migrate.sql"), migrate).unwrap();
        let psql = format!(
            "{} -X -q -v ON_ERROR_STOP=1 -h {} -p {} -U {} -d \"$1\"",
            cluster.bin_dir().join("psql").display(),
            cluster.socket_dir().display(),
            cluster.port(),
            cluster.user()
        );
        script(
            &dir.join("upgrade"),
            &format!(
                "set -e\n{psql} -f migrate.sql\n{psql} -c \"UPDATE ir_module_module SET \
                 latest_version = '19.0.{version}' WHERE name = 'l10n_cr_einvoice'\"\n"
            ),
        );
    }

    /// The release whose server last started.
    pub fn serving(&self) -> String {
        std::fs::read_to_string(self.stack.dir.path().join("serving"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// What an upgrade changes in the database.
    pub fn fingerprint(&self) -> String {
        self.stack
            .cluster
            .as_ref()
            .unwrap()
            .psql(
                "odoo",
                "SELECT string_agg(name || ':' || coalesce(latest_version, ''), ',' ORDER BY \
                 name) || '|' || (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM \
                 pg_tables WHERE schemaname = 'public') FROM ir_module_module",
            )
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Stops the Odoo the runtime left running.
    pub fn stop_odoo(&self) {
        let pid_file = self.stack.dir.path().join("state/run/odoo.pid");
        if let Ok(pid) = std::fs::read_to_string(pid_file) {
            let _ = vigia_core::process::signal_group(pid.trim().parse().unwrap(), libc::SIGKILL);
        }
    }
}

impl Drop for Releases<'_> {
    fn drop(&mut self) {
        self.stop_odoo();
    }
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
