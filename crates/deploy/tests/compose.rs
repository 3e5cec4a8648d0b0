//! Deploys under the compose runtime on a real engine: release images v1, v2 (its upgrade
//! makes a table, run as a one-off in the new image before the switch) and v3 (its Odoo
//! fails its health), the sandbox's Odoo-like server in its container, a real PostgreSQL.

mod common;

use common::{free_port, sandbox_bin};
use vigia_core::ports::runtime::Service;
use vigia_core::{ConfigSource, ErrorKind, Outcome as _};
use vigia_deploy::DeployJob;
use vigia_sandbox::engine::{Engine, Project, image_id, odoo_service};
use vigia_sandbox::odoo::create_odoo_database;
use vigia_sandbox::postgres::PgCluster;

struct ComposeSite {
    project: Project,
    cluster: PgCluster,
    dir: tempfile::TempDir,
    port: u16,
    images: Vec<String>,
}

impl ComposeSite {
    fn config(&self) -> vigia_core::Config {
        self.config_with("")
    }

    /// The config with more `[deploy]` keys.
    fn config_with(&self, extra: &str) -> vigia_core::Config {
        let root = self.dir.path().join("srv");
        std::fs::create_dir_all(&root).unwrap();
        let text = format!(
            "state-dir = \"{state}\"\n[odoo]\ndatabase = \"odoo\"\n\
             internal-url = \"http://127.0.0.1:{port}\"\ndata-dir = \"{data}\"\n\
             upgrade-command = \"/release/upgrade {{database}}\"\n\
             [postgres]\nhost = \"{host}\"\nport = {pgport}\nuser = \"{user}\"\nbin-dir = \"{bin}\"\n\
             {runtime}[deploy]\nroot = \"{root}\"\ngate = [\"odoo.internal\", \"postgres\"]\n\
             gate-timeout = \"8s\"\nobserve = \"0s\"\nkeep-releases = 2\n{extra}",
            state = self.dir.path().join("state").display(),
            port = self.port,
            data = self.dir.path().join("data").display(),
            host = self.cluster.socket_dir().display(),
            pgport = self.cluster.port(),
            user = self.cluster.user(),
            bin = self.cluster.bin_dir().display(),
            runtime = self.project.runtime_section(),
            root = root.display(),
        );
        ConfigSource::from_text(text, Some(self.dir.path()))
            .unwrap()
            .load(None)
            .unwrap()
    }

    fn psql(&self, sql: &str) -> String {
        self.cluster.psql("odoo", sql).unwrap().trim().to_owned()
    }

    fn tables(&self) -> String {
        self.psql(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE \
             tablename LIKE 'l10n_cr_v%'",
        )
    }
}

/// v1 running; v2 (upgrade makes l10n_cr_v2) and v3 (health fails) built.
async fn compose_site() -> ComposeSite {
    let engine = Engine::get().unwrap_or_else(|e| panic!("{e}"));
    let cluster = PgCluster::start().unwrap();
    create_odoo_database(&cluster, "odoo").unwrap();
    let images = engine
        .stack_images(&sandbox_bin(), cluster.bin_dir(), "pass")
        .unwrap();
    let port = free_port();
    let compose = format!(
        "services:\n{}",
        odoo_service(port, cluster.socket_dir(), cluster.port(), cluster.user())
    );
    let project = Project::new(&compose, &format!("ODOO_IMAGE={}\n", images[0])).unwrap();
    let site = ComposeSite {
        project,
        cluster,
        dir: tempfile::tempdir().unwrap(),
        port,
        images,
    };
    let runtime = vigia_runtime::from_config(&site.config()).unwrap();
    runtime.start(Service::Odoo).await.unwrap();
    site
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_deployed_with_an_upgrade_and_rolled_back_to_the_pinned_image() {
    let site = compose_site().await;
    let job = DeployJob::from_config(&site.config()).unwrap();
    let (v2, v3) = (&site.images[1], &site.images[2]);

    // v1 -> v2: the module's hash differs inside the image, so the database is copied and
    // upgraded by a one-off of v2 before .env names it.
    let report = job.run(v2).await.unwrap();
    assert!(report.failure().is_none(), "{report:?}");
    let first_pin = report.from.clone();
    assert_eq!(report.upgraded, ["l10n_cr_einvoice"]);
    assert!(
        report.from.starts_with(&format!(
            "localhost/vigia-rollback/{}/odoo:",
            site.project.name
        )),
        "{}",
        report.from
    );
    assert_eq!(site.tables(), "l10n_cr_v2");
    assert_eq!(site.project.env(), format!("ODOO_IMAGE={v2}\n"));
    assert_eq!(site.project.running_image("odoo").unwrap(), image_id(v2));
    let hashes =
        site.psql("SELECT value FROM ir_config_parameter WHERE key = 'vigia.addon_hashes'");
    assert!(hashes.contains("l10n_cr_einvoice"), "{hashes}");

    // v3 upgrades, but its Odoo fails its health: rolled back to v2's image (by its pinned
    // tag, not by v2's name) and to the database before v3's upgrade.
    let report = job.run(v3).await.unwrap();
    let err = report.failure().expect("v3's gate fails");
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{err}");
    assert_eq!(report.outcome, "rolled_back", "{report:?}");
    assert!(report.rollback.as_ref().unwrap().swapped_back);
    assert_eq!(
        site.tables(),
        "l10n_cr_v2",
        "the database is the one before v3"
    );
    let env = site.project.env();
    let pinned = env.trim().strip_prefix("ODOO_IMAGE=").unwrap();
    assert_eq!(pinned, report.from, ".env names the release that runs");
    assert_eq!(image_id(pinned), image_id(v2));
    assert_eq!(site.project.running_image("odoo").unwrap(), image_id(v2));
    let kept = std::fs::read_to_string(site.project.dir.join(format!(".env.vigia-{}", report.id)));
    assert_eq!(
        kept.unwrap(),
        format!("ODOO_IMAGE={v2}\n"),
        "the .env before v3"
    );

    // A release that is neither on the engine nor pullable is refused before anything stops.
    let before = site.project.env();
    let err = job.run("localhost/vigia-none:1").await.unwrap_err();
    assert!(err.message().contains("vigia-none"), "{err}");
    assert_eq!(site.project.env(), before);
    assert_eq!(site.project.running_image("odoo").unwrap(), image_id(v2));

    // v2 by its own name again (no upgrade: same code): deployed, and the rollback tags of
    // all but the last two deploys (keep-releases = 2) removed, so the engine can prune them.
    let report = job.run(v2).await.unwrap();
    assert_eq!(report.outcome, "deployed", "{report:?}");
    assert!(report.upgraded.is_empty(), "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let tags = vigia_sandbox::engine::run(std::process::Command::new("docker").args([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &format!("localhost/vigia-rollback/{}/odoo", site.project.name),
    ]))
    .unwrap();
    let mut ours: Vec<&str> = tags
        .lines()
        .filter(|t| [report.from.as_str(), pinned, first_pin.as_str()].contains(t))
        .collect();
    ours.sort_unstable();
    assert_eq!(ours, [pinned, report.from.as_str()], "{tags}");

    // A release not on the engine is made by fetch-command ({ref}: the image to make), before
    // anything stops; a fetch that fails refuses the deploy and leaves .env as it was.
    let made = format!("localhost/vigia-fetched:{}", site.port);
    let fetching = format!("fetch-command = \"docker tag {v2} {{ref}}\"\n");
    let report = DeployJob::from_config(&site.config_with(&fetching))
        .unwrap()
        .run(&made)
        .await
        .unwrap();
    assert_eq!(report.outcome, "deployed", "{report:?}");
    assert_eq!(site.project.env(), format!("ODOO_IMAGE={made}\n"));
    let before = site.project.env();
    let failing =
        DeployJob::from_config(&site.config_with("fetch-command = \"false {ref}\"\n")).unwrap();
    let missing = format!("localhost/vigia-unfetched:{}", site.port);
    let err = failing.run(&missing).await.unwrap_err();
    assert!(err.message().contains("fetch-command"), "{err}");
    assert_eq!(site.project.env(), before);
    assert_eq!(site.project.running_image("odoo").unwrap(), image_id(v2));
}
