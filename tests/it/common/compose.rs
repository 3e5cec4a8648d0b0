//! The stack under `[runtime] kind = "compose"` on a real engine: Odoo is the sandbox's
//! Odoo-like server in a release image (v1 answering its health as asked; v2 whose upgrade
//! makes table l10n_cr_v2; v3 whose health fails), the stack's cluster mounted at /pg.

use std::process::Command;

pub use vigia_sandbox::engine::image_id;
use vigia_sandbox::engine::{Engine, Project, odoo_service, run};

use super::Stack;
use super::releases::{free_port, sandbox_bin};

pub struct Compose<'s> {
    pub stack: &'s Stack,
    pub project: Project,
    /// v1, v2, v3.
    pub images: Vec<String>,
    pub port: u16,
}

impl<'s> Compose<'s> {
    /// v1 named in `.env` (not started); the config gains the compose runtime, the upgrade
    /// command inside the image and `[deploy]` with a quick gate.
    pub fn new(stack: &'s Stack, v1_health: &str) -> Self {
        let engine = Engine::get().unwrap_or_else(|e| panic!("{e}"));
        let cluster = stack.cluster.as_ref().unwrap();
        let images = engine
            .stack_images(&sandbox_bin(), cluster.bin_dir(), v1_health)
            .unwrap();
        let port = free_port();
        let compose = format!(
            "services:\n{}",
            odoo_service(port, cluster.socket_dir(), cluster.port(), cluster.user())
        );
        let project = Project::new(&compose, &format!("ODOO_IMAGE={}\n", images[0])).unwrap();
        let root = stack.dir.path().join("srv");
        std::fs::create_dir_all(&root).unwrap();
        stack.edit_config(|text| {
            format!(
                "{}\n{}[deploy]\nroot = \"{}\"\ngate = [\"odoo.internal\", \"postgres\"]\n\
                 gate-timeout = \"8s\"\nobserve = \"0s\"\n",
                text.replace(
                    "[odoo]\n",
                    &format!(
                        "[odoo]\ninternal-url = \"http://127.0.0.1:{port}\"\n\
                         upgrade-command = \"/release/upgrade {{database}}\"\n"
                    ),
                ),
                project.runtime_section(),
                root.display()
            )
        });
        Self {
            stack,
            project,
            images,
            port,
        }
    }

    /// `docker compose up -d odoo` as the operator would.
    pub fn start_odoo(&self) {
        self.project.compose(&["up", "-d", "odoo"]).unwrap();
    }

    /// The image id Odoo's container runs; None when it has no running container.
    pub fn running(&self) -> Option<String> {
        let state = self
            .project
            .compose(&["ps", "--format", "{{.State}}", "odoo"])
            .unwrap_or_default();
        if state.trim() != "running" {
            return None;
        }
        self.project.running_image("odoo")
    }

    /// When Odoo's container last started (a restart changes it).
    pub fn started_at(&self) -> String {
        let id = self.project.compose(&["ps", "-q", "odoo"]).unwrap();
        let id = id.lines().next().unwrap_or_default().trim().to_owned();
        run(Command::new("docker").args(["inspect", "--format", "{{.State.StartedAt}}", &id]))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The release `.env` names.
    pub fn named(&self) -> String {
        self.project
            .env()
            .trim()
            .trim_start_matches("ODOO_IMAGE=")
            .to_owned()
    }

    /// The upgrade tables the database holds.
    pub fn tables(&self) -> String {
        self.stack
            .cluster
            .as_ref()
            .unwrap()
            .psql(
                "odoo",
                "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM \
                 pg_tables WHERE tablename LIKE 'l10n_cr_v%'",
            )
            .unwrap()
            .trim()
            .to_owned()
    }
}
