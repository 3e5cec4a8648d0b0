//! A backup that said "done" survives a power loss: every folder a local store's put creates
//! is made durable in its parent, traced with strace on the real binary.

use std::process::Command;

use crate::common::stack;

/// Regression (issue 10 item 3): the local store fsynced the folder holding a new object, but
/// not the folders that gained a new subfolder (`backups/` for `backups/<id>/`, the store for
/// `backups/`), so a "successful" backup could vanish after a power loss.
#[test]
fn every_folder_a_backup_creates_is_fsynced_in_its_parent() {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "strace is missing: install the Debian package strace"
    );
    let s = stack(0);
    let trace = s.dir.path().join("fsync.trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_vigia"))
        .args(["--config", &s.config, "--json", "backup"])
        .env_remove("VIGIA_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(trace).unwrap();
    let store = s.dir.path().join("backups");
    for folder in [store.clone(), store.join("backups"), store.join("objects")] {
        // `fsync(3</x>) = 0`, or `fsync(3</x> <unfinished ...>` when threads interleave.
        let (done, interleaved) = (
            format!("<{}>)", folder.display()),
            format!("<{}> <unfinished", folder.display()),
        );
        assert!(
            trace
                .lines()
                .any(|l| l.contains("fsync(") && (l.contains(&done) || l.contains(&interleaved))),
            "{} was never fsynced:\n{trace}",
            folder.display()
        );
    }
}
