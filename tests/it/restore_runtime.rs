//! A restore in place with `[runtime] kind = "local"`: vigia stops Odoo, swaps, starts Odoo
//! and checks its health (`/web/health?db_server_status=1`) over a real socket. Odoo is the
//! sandbox's Odoo-like server, run by the runtime as Odoo would be; a health check that
//! fails swaps back.

use std::path::{Path, PathBuf};

use crate::common::{Stack, stack};

/// The sandbox binary, built beside vigia.
fn sandbox_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_vigia")).with_file_name("vigia-sandbox");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-features`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Odoo run by the local runtime: the sandbox server answering `health`, probing the
/// cluster's socket.
fn local_runtime(s: &Stack, health: &str) {
    let port = free_port();
    let socket = s
        .cluster
        .as_ref()
        .unwrap()
        .socket_dir()
        .join(".s.PGSQL.5432");
    let command = format!(
        "{} serve odoo --port {port} --health {health} --db-socket {}",
        sandbox_bin().display(),
        socket.display()
    );
    s.edit_config(|t| {
        format!(
            "{}\n[runtime]\nkind = \"local\"\nodoo-command = \"{command}\"\n",
            t.replace(
                "[odoo]\n",
                &format!("[odoo]\ninternal-url = \"http://127.0.0.1:{port}\"\n"),
            )
        )
    });
}

/// Stops the Odoo the runtime left running, and returns whether there was one.
fn stop_odoo(s: &Stack) -> bool {
    let pid_file = s.dir.path().join("state/run/odoo.pid");
    let Ok(pid) = std::fs::read_to_string(pid_file) else {
        return false;
    };
    let pid: u32 = pid.trim().parse().unwrap();
    let running = vigia_core::process::is_running(pid);
    let _ = vigia_core::process::signal_group(pid, libc::SIGTERM);
    running
}

#[test]
fn the_runtime_starts_odoo_after_the_swap_and_its_health_is_checked() {
    let s = stack(0);
    local_runtime(&s, "pass");
    let id = s.backup_then_change();
    let (code, out) = s.json(&["restore", &id]);
    let started = stop_odoo(&s);
    assert_eq!(code, Some(0), "{out}");
    assert!(started, "the runtime started Odoo after the swap");
    assert_eq!(out["data"]["swapped"], true);
    assert_eq!(s.partners("odoo"), "50");
}

#[test]
fn a_failing_health_check_after_the_swap_swaps_back() {
    let s = stack(0);
    local_runtime(&s, "fail");
    let id = s.backup_then_change();
    let (code, out) = s.json(&["restore", &id]);
    stop_odoo(&s);
    assert_eq!(code, Some(18), "{out}");
    let message = out["error"]["message"].as_str().unwrap();
    assert!(message.contains("Odoo is not healthy"), "{message}");
    assert!(message.contains("swapped back"), "{message}");
    assert_eq!(
        s.partners("odoo"),
        "40",
        "the live database is the one it was"
    );
}

/// The stack lock: a restore that would swap the live database fails at once while a deploy
/// (here, this test) is changing the stack; one beside it goes ahead.
#[test]
fn a_swap_waits_for_no_one_while_the_stack_is_being_changed() {
    let s = stack(0);
    let id = s.backup_then_change();
    let state = s.dir.path().join("state");
    let held =
        vigia_runtime::stack_lock::StackLock::acquire(&state, "vigia deploy 20261129T120000Z")
            .unwrap();
    let started = std::time::Instant::now();
    let (code, out) = s.json(&["restore", &id]);
    assert_eq!(code, Some(19), "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "at once"
    );
    let message = out["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("vigia deploy 20261129T120000Z (pid "),
        "{message}"
    );
    assert_eq!(s.partners("odoo"), "40", "the live database is untouched");
    let (code, out) = s.json(&["restore", &id, "--target-db", "beside"]);
    assert_eq!(code, Some(0), "a restore beside the live one: {out}");
    drop(held);
    let (code, out) = s.json(&["restore", &id, "--confirm", "odoo"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s.partners("odoo"), "50");
}
