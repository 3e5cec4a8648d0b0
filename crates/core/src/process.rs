//! Child processes that must not outlive vigia.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child get SIGKILL when the thread that spawns it exits, so a killed vigia
/// leaves no orphan pg_dump or server. Spawn from a thread that lives as long as the child
/// (not tokio's blocking pool, whose idle threads retire).
#[allow(unsafe_code)]
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
