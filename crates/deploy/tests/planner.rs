//! The planner against real parts: releases on disk, the local runtime's current link, and
//! a real PostgreSQL holding the sandbox's Odoo-shaped database. A plan touches nothing.

use std::path::Path;

use vigia_core::{Config, ConfigSource, ErrorKind};
use vigia_deploy::planner::Planner;
use vigia_sandbox::odoo::create_odoo_database;
use vigia_sandbox::postgres::PgCluster;

/// A release `name` whose addons hold l10n_cr_einvoice at `version` with `code`.
fn release(root: &Path, name: &str, version: &str, code: &str) {
    let module = root
        .join("releases")
        .join(name)
        .join("addons/l10n_cr_einvoice");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("__manifest__.py"),
        format!("{{'name': 'E-invoicing CR', 'version': '{version}'}}"),
    )
    .unwrap();
    std::fs::write(module.join("models.py"), code).unwrap();
}

fn config(dir: &Path, cluster: &PgCluster) -> Config {
    let text = format!(
        "state-dir = \"{state}\"\n[odoo]\ndatabase = \"odoo\"\n\
         upgrade-command = \"{{release}}/odoo-bin -d {{database}} -u {{modules}} --stop-after-init\"\n\
         [postgres]\nhost = \"{host}\"\nport = {port}\nuser = \"{user}\"\nbin-dir = \"{bin}\"\n\
         [runtime]\nkind = \"local\"\nodoo-command = \"sleep 600\"\n[deploy]\nroot = \"{root}\"\n",
        state = dir.join("state").display(),
        host = cluster.socket_dir().display(),
        port = cluster.port(),
        user = cluster.user(),
        bin = cluster.bin_dir().display(),
        root = dir.join("srv").display(),
    );
    ConfigSource::from_text(text, Some(dir))
        .unwrap()
        .load(None)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_reads_the_releases_and_the_database_and_touches_nothing() {
    let cluster = PgCluster::start().unwrap();
    create_odoo_database(&cluster, "odoo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    // The database has 19.0.2.1.0.
    release(&root, "v1", "2.1.0", "x = 1");
    release(&root, "v2", "2.1.1", "x = 2");
    release(&root, "v3", "2.1.1", "x = 2");
    release(&root, "old", "2.0.9", "x = 0");
    let planner = Planner::from_config(&config(dir.path(), &cluster)).unwrap();

    let err = planner.plan("20261129T120000Z", "v2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "no current yet: {err}");
    assert!(err.message().contains("ln -sfn releases/<ref>"), "{err}");
    std::os::unix::fs::symlink("releases/v1", root.join("current")).unwrap();

    let plan = planner.plan("20261129T120000Z", "v2").await.unwrap();
    assert_eq!((plan.from.as_str(), plan.to.as_str()), ("v1", "v2"));
    assert_eq!(plan.changes.upgrade, ["l10n_cr_einvoice"]);
    assert!(plan.changes.assumed_applied);
    let command = plan.upgrade_command.unwrap();
    assert!(
        command.ends_with("srv/releases/v2/odoo-bin -d odoo -u l10n_cr_einvoice --stop-after-init"),
        "{command}"
    );

    // Hashes recorded as v3's (the same code as v2): nothing to upgrade.
    let v3 = vigia_odoo::addons::addon_hashes(&[root.join("releases/v3/addons")]).0;
    cluster
        .psql(
            "odoo",
            &format!(
                "INSERT INTO ir_config_parameter (key, value) VALUES ('vigia.addon_hashes', '{}')",
                serde_json::to_string(&v3).unwrap()
            ),
        )
        .unwrap();
    let plan = planner.plan("20261129T120001Z", "v2").await.unwrap();
    assert!(!plan.changes.upgrades(), "{:?}", plan.changes);

    let err = planner.plan("20261129T120002Z", "old").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("19.0.2.1.0 -> 19.0.2.0.9"), "{err}");
    for bad in ["../v1", "v9"] {
        let err = planner.plan("20261129T120003Z", bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    let plan = planner.plan("20261129T120004Z", "v1").await.unwrap();
    assert!(plan.nothing_to_do);
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new("releases/v1"),
        "planning touched nothing"
    );
}

#[test]
fn a_runtime_without_releases_is_refused_naming_runtime_kind() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[odoo]\ndatabase = \"odoo\"\n[deploy]\nroot = \"{}\"\n",
        dir.path().display()
    );
    let config = ConfigSource::from_text(text, Some(dir.path()))
        .unwrap()
        .load(None)
        .unwrap();
    let planner = Planner::from_config(&config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(planner.plan("x", "v1")).unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("runtime.kind"), "{err}");
}
