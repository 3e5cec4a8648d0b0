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

/// Lowers the calling thread's CPU priority to nice 10, like the pg_dump it feeds: the
/// compression and encryption of a backup must not take CPU from the Odoo serving invoices.
/// (On Linux, nice is per thread.) Failure is harmless and ignored.
#[allow(unsafe_code)]
pub fn lower_thread_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0) with a plain integer; it touches
    // no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
