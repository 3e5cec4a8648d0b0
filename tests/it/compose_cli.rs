//! `vigia` on a stack run by docker compose on a real engine: a restore in place stops,
//! swaps and starts Odoo's container and checks its health (a failing one swaps back);
//! `health` reports the services from the engine; `deploy` and `rollback` move `.env`.

use crate::common::compose::{Compose, image_id};
use crate::common::stack;

fn check<'a>(out: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    out["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn a_restore_in_place_restarts_odoos_container_and_checks_it() {
    let s = stack(0);
    let c = Compose::new(&s, "pass");
    c.start_odoo();
    let id = s.backup_then_change();
    let before = c.running().expect("Odoo's container runs");
    let started = c.started_at();
    let (code, out) = s.json(&["restore", &id]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["swapped"], true);
    assert_eq!(s.partners("odoo"), "50");
    assert_eq!(c.running(), Some(before), "started again, same image");
    assert_ne!(
        c.started_at(),
        started,
        "stopped for the swap, then started"
    );
}

#[test]
fn a_restore_whose_odoo_fails_its_health_swaps_back() {
    let s = stack(0);
    let c = Compose::new(&s, "fail");
    c.start_odoo();
    let id = s.backup_then_change();
    let (code, out) = s.json(&["restore", &id]);
    assert_eq!(code, Some(18), "{out}");
    let message = out["error"]["message"].as_str().unwrap();
    assert!(message.contains("swapped back"), "{message}");
    assert_eq!(
        s.partners("odoo"),
        "40",
        "the live database is the one it was"
    );
    assert!(
        c.running().is_some(),
        "Odoo runs again on the live database"
    );
}

#[test]
fn health_reads_the_services_from_the_engine() {
    let s = stack(0);
    let c = Compose::new(&s, "pass");
    let only = [
        "health",
        "--only",
        "services.odoo,services.nginx,services.redis",
    ];
    let (code, out) = s.json(&only);
    assert_eq!(code, Some(2), "not running: critical: {out}");
    assert_eq!(check(&out, "services.odoo")["status"], "critical");
    c.start_odoo();
    let (code, out) = s.json(&only);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(check(&out, "services.odoo")["status"], "ok");
    // Neither is a service of this compose file: skipped, not unknown.
    assert_eq!(check(&out, "services.nginx")["status"], "skipped", "{out}");
    assert_eq!(check(&out, "services.redis")["status"], "skipped");
}

#[test]
fn deploy_and_rollback_move_the_env_line_and_the_running_image() {
    let s = stack(0);
    let c = Compose::new(&s, "pass");
    c.start_odoo();
    let (v1, v2) = (c.images[0].clone(), c.images[1].clone());
    let (code, out) = s.json(&["deploy", "--release", &v2]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["outcome"], "deployed");
    assert_eq!(c.named(), v2);
    assert_eq!(c.running(), Some(image_id(&v2)));
    assert_eq!(c.tables(), "l10n_cr_v2");
    let pinned = out["data"]["from"].as_str().unwrap().to_owned();

    // state-dir is not trusted: a journal that returns to another image is refused.
    let deploys = s.dir.path().join("state/deploys");
    let last = std::fs::read_to_string(deploys.join("last")).unwrap();
    let journal = deploys.join(last.trim()).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let forged = text.replacen(&pinned, &c.images[2], 1);
    assert_ne!(forged, text);
    std::fs::write(&journal, forged).unwrap();
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(17), "{out}");
    assert_eq!(c.named(), v2, "nothing touched");
    assert_eq!(c.running(), Some(image_id(&v2)));
    std::fs::write(&journal, text).unwrap();

    // The pinned image pruned: refused before anything stops (never pulled from a registry).
    let id_before = image_id(&pinned);
    vigia_sandbox::engine::run(std::process::Command::new("docker").args(["rmi", &pinned]))
        .unwrap();
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(11), "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer"),
        "{out}"
    );
    assert_eq!(c.running(), Some(image_id(&v2)), "nothing stopped");
    vigia_sandbox::engine::run(
        std::process::Command::new("docker").args(["tag", &id_before, &pinned]),
    )
    .unwrap();

    // A one-off a killed vigia left (an upgrade still writing): removed by the rollback.
    c.project
        .compose(&[
            "run",
            "-d",
            "--no-deps",
            "--name",
            "vigia-oneoff-left",
            "odoo",
            "sleep",
            "600",
        ])
        .unwrap();
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    let left = c.project.compose(&["ps", "--all", "-q"]).unwrap();
    assert_eq!(left.lines().count(), 1, "only Odoo's own container: {left}");
    assert!(
        c.named().starts_with(&format!(
            "localhost/vigia-rollback/{}/odoo:",
            c.project.name
        )),
        "{}",
        c.named()
    );
    assert_eq!(c.running(), Some(image_id(&v1)), "v1's image runs again");
    assert_eq!(c.tables(), "", "the database before the upgrade");
}
