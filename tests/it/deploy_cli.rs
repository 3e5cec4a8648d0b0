//! `vigia deploy`, `vigia rollback` and `vigia deploy history|lock|unlock` as an operator
//! runs them: the plan, a deploy with an upgrade (after a backup, since the config has
//! [backup]), a rollback, the history, the exit codes of a refusal and a failed gate, and a
//! freeze.

use crate::common::releases::Releases;
use crate::common::stack;

#[test]
fn plan_deploy_rollback_and_history_from_the_command_line() {
    let s = stack(0);
    let r = Releases::new(&s);
    let before = r.fingerprint();
    r.release("v2", "2.2.0", "CREATE TABLE l10n_cr_v2 (id int);");

    let (code, plan) = s.json(&["deploy", "--release", "v2", "--dry-run"]);
    assert_eq!(code, Some(0), "{plan}");
    assert_eq!(plan["data"]["changes"]["upgrade"][0], "l10n_cr_einvoice");
    assert!(
        plan["data"]["steps"][1]
            .as_str()
            .unwrap()
            .starts_with("backup")
    );
    assert_eq!(r.fingerprint(), before, "a plan touches nothing");

    let (code, out) = s.json(&["deploy", "--release", "v2"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["outcome"], "deployed");
    let steps: Vec<&str> = out["data"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "backup",
            "stop",
            "copy",
            "upgrade",
            "hashes",
            "switch",
            "start",
            "gate",
            "public_gate"
        ]
    );
    assert_eq!(r.serving(), "v2");

    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["rollback"]["swapped_back"], true);
    assert_eq!(r.fingerprint(), before);
    assert_eq!(r.serving(), "v1");

    let text = s.run(&["deploy", "history"], &[]);
    let history = String::from_utf8_lossy(&text.stdout);
    assert!(history.contains("v1 -> v2  deployed"), "{history}");
    assert!(history.contains("v1 -> v2  rolled_back"), "{history}");

    // A migration that fails: rolled back (18), the database as it was.
    r.release(
        "v3",
        "2.3.0",
        "CREATE TABLE l10n_cr_v3 (id int); SELECT 1/0;",
    );
    let (code, out) = s.json(&["deploy", "--release", "v3"]);
    assert_eq!(code, Some(18), "{out}");
    assert_eq!(out["data"]["outcome"], "rolled_back");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rolled back: the pre-deploy database swapped back in"),
        "{out}"
    );
    assert_eq!(r.fingerprint(), before);

    let (code, out) = s.json(&["deploy", "--release", "no/such"]);
    assert_eq!(code, Some(11), "{out}");

    // Another change to the stack under way: 19 at once, naming it.
    let held = vigia_runtime::stack_lock::StackLock::acquire(
        &s.dir.path().join("state"),
        "vigia restore (swap into odoo)",
    )
    .unwrap();
    let (code, out) = s.json(&["deploy", "--release", "v2"]);
    assert_eq!(code, Some(19), "{out}");
    let (code, _) = s.json(&["rollback"]);
    assert_eq!(code, Some(19));
    drop(held);

    // Frozen on purpose: 19 with the reason, until unlocked.
    let (code, out) = s.json(&["deploy", "lock", "-m", "cierre de mes"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["message"], "cierre de mes");
    let (code, out) = s.json(&["deploy", "--release", "v2"]);
    assert_eq!(code, Some(19), "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cierre de mes"),
        "{out}"
    );
    let (code, out) = s.json(&["deploy", "unlock"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["ended"]["message"], "cierre de mes");
    let (code, out) = s.json(&["deploy", "unlock"]);
    assert_eq!(
        (code, &out["data"]["ended"]),
        (Some(0), &serde_json::Value::Null)
    );
}
