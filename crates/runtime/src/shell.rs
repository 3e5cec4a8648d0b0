//! One command from the config (an upgrade, a deploy hook, a fetch or build) run with `sh -c`
//! in a folder: its output to a file, its own process group killed whole at its time limit or
//! on cancel, and killed with vigia (it must not go on upgrading a database nobody watches).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::ports::runtime::{OneOff, OneOffExit};
use vigia_core::process::{die_with_parent, signal_group};
use vigia_core::{Error, Result};

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
    let output = std::fs::File::create(&limits.output)
        .map_err(|e| Error::io("create", &limits.output, e))?;
    let errors = output
        .try_clone()
        .map_err(|e| Error::io("open", &limits.output, e))?;
    let mut child = Command::new("sh");
    child
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0);
    die_with_parent(&mut child);
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
