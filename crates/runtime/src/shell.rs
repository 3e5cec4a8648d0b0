//! One command from the config (an upgrade, a deploy hook, a fetch or build) run with `sh -c`
//! in a folder: its output to a file, its own process group killed whole at its time limit, on
//! cancel, and when vigia dies (it must not go on upgrading a database nobody watches).

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::ports::runtime::{OneOff, OneOffExit};
use vigia_core::process::{signal_group, signal_on_parent_death};
use vigia_core::{Error, Result};

/// The shell the command runs under: told (SIGTERM) when vigia dies, it kills its whole
/// process group, so the command's own children die too (a signal on the parent's death
/// alone reaches only the first process: an upgrade script's Odoo would go on).
const GUARD: &str = r#"trap 'kill -KILL 0' TERM; sh -c "$1" & wait $!"#;

/// Runs `command` in `dir` with `env` added to vigia's environment; blocks until it ends.
pub fn run_shell(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    limits: &OneOff,
) -> Result<OneOffExit> {
    if let Some(parent) = limits.output.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    // Never through a link planted at the log's name (state-dir is not trusted).
    let output = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&limits.output)
        .map_err(|e| Error::io("create", &limits.output, e))?;
    let errors = output
        .try_clone()
        .map_err(|e| Error::io("open", &limits.output, e))?;
    let mut child = Command::new("sh");
    child
        .args(["-c", GUARD, "vigia-command", command])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0);
    for name in &limits.hide {
        child.env_remove(name);
    }
    signal_on_parent_death(&mut child, libc::SIGTERM);
    let mut child = child
        .spawn()
        .map_err(|e| Error::io("run a command with", Path::new("sh"), e))?;
    let pid = child.id();
    let deadline = Instant::now() + limits.timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("wait for", &limits.output, e))?
        {
            // What it left running in the background (a detached gc, a server) goes too: it
            // must not change the release or the database after the command was judged.
            let _ = signal_group(pid, libc::SIGKILL);
            return Ok(OneOffExit {
                code: status.code(),
                timed_out: false,
                cancelled: false,
            });
        }
        let (timed_out, cancelled) = (Instant::now() >= deadline, limits.cancel.is_cancelled());
        if timed_out || cancelled {
            let _ = signal_group(pid, libc::SIGKILL);
            let _ = child.wait();
            return Ok(OneOffExit {
                code: None,
                timed_out,
                cancelled,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `run_shell` off the async threads.
pub async fn run_shell_async(
    command: &str,
    dir: &Path,
    env: Vec<(String, String)>,
    limits: &OneOff,
) -> Result<OneOffExit> {
    let (command, dir, limits) = (command.to_owned(), dir.to_owned(), limits.clone());
    vigia_core::task::blocking("command", move || run_shell(&command, &dir, &env, &limits)).await
}
