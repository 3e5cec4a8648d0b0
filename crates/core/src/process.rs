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

/// Whether process `pid` runs on this machine (a zombie, dead but not yet reaped, does not).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Sends `signal` to the process group led by `pid`.
#[allow(unsafe_code)]
pub fn signal_group(pid: u32, signal: i32) -> std::io::Result<()> {
    let group = i32::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) with plain integers; it touches no memory of ours.
    if unsafe { libc::kill(-group, signal) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// This process's effective user id (who owns what it creates, whose files it trusts).
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, always succeeds and touches no memory of ours.
    unsafe { libc::geteuid() }
}
