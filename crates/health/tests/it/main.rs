//! vigia-health's integration tests, one binary: every check passes and fails against real
//! servers (a throwaway PostgreSQL with the Odoo stack, the Odoo-like HTTP server in each of
//! its modes, this machine's filesystems and memory).

mod alerts;
mod database;
mod hacienda;
mod odoo_http;
mod odoo_log;
mod p12;
mod redis;
mod run;
mod smoke;
mod tls;

use std::path::Path;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Config, ConfigSource};
use vigia_health::{HealthReport, HealthRequest, HealthRun};
use vigia_sandbox::postgres::PgCluster;

/// A config pointing at `cluster` (or at nothing): `odoo` adds lines to `[odoo]`, `tables`
/// adds tables after it.
fn config(dir: &Path, cluster: Option<&PgCluster>, odoo: &str, tables: &str) -> Config {
    config_with(dir, cluster, odoo, "", tables)
}

/// [`config`] with `postgres` lines added to `[postgres]`; `odoo` may name the database.
fn config_with(
    dir: &Path,
    cluster: Option<&PgCluster>,
    odoo: &str,
    postgres: &str,
    tables: &str,
) -> Config {
    let postgres = cluster.map_or(String::new(), |c| {
        format!(
            "[postgres]\nhost = \"{}\"\nport = {}\nuser = \"{}\"\nbin-dir = \"{}\"\n{postgres}\n",
            c.socket_dir().display(),
            c.port(),
            c.user(),
            c.bin_dir().display()
        )
    });
    let database = if odoo.contains("database") {
        ""
    } else {
        "database = \"odoo\"\n"
    };
    let text = format!(
        "state-dir = \"{}\"\n[odoo]\n{database}{odoo}\n{postgres}{tables}\n",
        dir.join("state").display()
    );
    ConfigSource::from_text(text, Some(dir))
        .unwrap()
        .load(None)
        .unwrap()
}

/// [`config`] against `cluster`, loaded in the named environment `env` (not production).
fn config_env(dir: &Path, cluster: &PgCluster, env: &str) -> Config {
    let text = format!(
        "state-dir = \"{}\"\n[odoo]\ndatabase = \"odoo\"\n[postgres]\nhost = \"{}\"\nport = {}\n\
         user = \"{}\"\nbin-dir = \"{}\"\n[environments.{env}]\n",
        dir.join("state").display(),
        cluster.socket_dir().display(),
        cluster.port(),
        cluster.user(),
        cluster.bin_dir().display()
    );
    ConfigSource::from_text(text, Some(dir))
        .unwrap()
        .load(Some(env))
        .unwrap()
}

async fn run(config: &Config, only: &[&str]) -> HealthReport {
    let request = HealthRequest {
        only: only.iter().map(|s| (*s).to_owned()).collect(),
        alert: false,
    };
    HealthRun::from_config(config, &request)
        .unwrap()
        .run()
        .await
}

fn check<'a>(report: &'a HealthReport, name: &str) -> &'a CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

fn status(report: &HealthReport, name: &str) -> CheckStatus {
    check(report, name).status
}

/// `promtool check metrics` accepts the textfile.
fn promtool_accepts(file: &Path) {
    let checked = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output();
    let Ok(checked) = checked else {
        panic!("promtool is missing: install the Debian package prometheus");
    };
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
