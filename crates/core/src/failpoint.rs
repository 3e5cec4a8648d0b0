//! Fail points for crash tests (DESIGN.md "Tests"): with `VIGIA_FAILPOINT=backup.upload:kill`
//! the process SIGKILLs itself on reaching `backup.upload`, so "killed at step X" is exact,
//! not timed; `NAME:error` fails there instead; `NAME:signal` sends the process SIGINT there
//! and goes on (a Ctrl-C arriving at that moment). Several: `a:kill,b:error`. Honoured only
//! in builds with the `failpoints` feature; elsewhere `hit` does nothing.

use crate::error::Result;

/// Reached the point called `name`.
pub fn hit(name: &str) -> Result<()> {
    #[cfg(feature = "failpoints")]
    if let Ok(spec) = std::env::var("VIGIA_FAILPOINT") {
        for item in spec.split(',') {
            match item.split_once(':') {
                Some((point, "kill")) if point == name => kill_self(),
                Some((point, "signal")) if point == name => interrupt_self(),
                Some((point, "error")) if point == name => {
                    return Err(crate::error::Error::internal(format!(
                        "fail point {name} (VIGIA_FAILPOINT)"
                    )));
                }
                _ => {}
            }
        }
    }
    let _ = name;
    Ok(())
}

#[cfg(feature = "failpoints")]
#[allow(unsafe_code)]
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid with SIGKILL; it does not return.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}

#[cfg(feature = "failpoints")]
#[allow(unsafe_code)]
fn interrupt_self() {
    // SAFETY: kill(2) on our own pid with SIGINT, as a terminal's Ctrl-C would send it.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGINT);
    }
}
