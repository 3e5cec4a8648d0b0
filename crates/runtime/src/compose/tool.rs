//! Running Compose and the Docker CLI: never through a shell, with a time limit, the config's
//! secret variables removed from their environment, and their failures sorted as operators
//! act on them: no binary (config, naming the package), no engine (network, with the tool's
//! words), any other non-zero exit (io, with the last lines it wrote).

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vigia_core::{Error, ErrorKind, Result};

/// The most a call may print on stdout (a listing of every addon file is a few MiB).
pub const MAX_OUTPUT: u64 = 64 << 20;

/// A command line (program and its first words) and what every call of it shares.
#[derive(Debug)]
pub struct Tool {
    /// Program, then words before the subcommand (`docker compose -f FILE`).
    pub argv: Vec<String>,
    /// What to install when the program is missing.
    pub package_hint: &'static str,
    /// The config key that names the program.
    pub key: &'static str,
    /// Environment variables not passed on.
    pub hide: Vec<String>,
    /// Calls made (the deploy benchmark reports them).
    pub calls: AtomicUsize,
}

/// What a call printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Tool {
    pub fn name(&self) -> String {
        self.argv
            .iter()
            .take_while(|w| !w.starts_with('-'))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `args` after the tool's words, `env` added; its output once it exits 0. It runs
    /// in a process group of its own, killed whole at `limit` (the Compose plugin is a child
    /// of `docker`); what it prints beyond [`MAX_OUTPUT`] fails the call (a one-off prints
    /// what an image makes it print).
    pub async fn call(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Result<Output> {
        use tokio::io::AsyncReadExt;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in &self.hide {
            command.env_remove(name);
        }
        let words = format!("{} {}", self.name(), args.first().copied().unwrap_or(""));
        let mut child = command.spawn().map_err(|e| self.spawn_error(e))?;
        let pid = child.id();
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let kill = move || {
            if let Some(pid) = pid {
                let _ = vigia_core::process::signal_group(pid, libc::SIGKILL);
            }
        };
        let run = async {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            // A stream past its cap is not read further: the group is killed at once, or
            // its writer would block on the full pipe until the time limit.
            let read_out = async {
                let read = match out.as_mut() {
                    Some(o) => o.take(MAX_OUTPUT + 1).read_to_end(&mut stdout).await,
                    None => Ok(0),
                };
                if stdout.len() as u64 > MAX_OUTPUT {
                    kill();
                }
                read
            };
            let read_err = async {
                let read = match err.as_mut() {
                    Some(e) => e.take(MAX_OUTPUT).read_to_end(&mut stderr).await,
                    None => Ok(0),
                };
                if stderr.len() as u64 >= MAX_OUTPUT {
                    kill();
                }
                read
            };
            let (o, e) = tokio::join!(read_out, read_err);
            o.and(e)?;
            let status = child.wait().await?;
            if stdout.len() as u64 > MAX_OUTPUT {
                return Ok(None);
            }
            Ok::<_, std::io::Error>(Some((status, stdout, stderr)))
        };
        let finished = tokio::time::timeout(limit, run).await;
        let (status, stdout, stderr) = match finished {
            Err(_) => {
                kill();
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("`{words}` did not answer within {}s", limit.as_secs()),
                ));
            }
            Ok(Err(e)) => {
                kill();
                return Err(Error::io("read the output of", Path::new(&self.argv[0]), e));
            }
            Ok(Ok(None)) => {
                kill();
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("`{words}` printed more than {} MiB", MAX_OUTPUT >> 20),
                ));
            }
            Ok(Ok(Some(done))) => done,
        };
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        if status.success() {
            return Ok(Output { stdout, stderr });
        }
        Err(failure(&words, status, &stderr))
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::config(format!(
                "`{}` is not installed (or not on PATH): install {}",
                self.argv[0], self.package_hint
            ))
            .with_key(self.key)
        } else {
            Error::io("run", Path::new(&self.argv[0]), e)
        }
    }
}

/// A non-zero exit: the engine out of reach (network) or anything else (io), with the last
/// lines the tool wrote.
pub fn failure(words: &str, status: std::process::ExitStatus, stderr: &str) -> Error {
    let tail = last_lines(stderr, 5);
    let unreachable = [
        "Cannot connect to the Docker daemon",
        "Is the docker daemon running",
        "connection refused",
        "dial unix",
        "no such host",
        "error during connect",
    ];
    let lowered = stderr.to_lowercase();
    if unreachable
        .iter()
        .any(|w| lowered.contains(&w.to_lowercase()))
    {
        return Error::new(
            ErrorKind::Network,
            format!(
                "`{words}` cannot reach the container engine (check DOCKER_HOST and that the \
                 engine runs): {tail}"
            ),
        );
    }
    Error::new(
        ErrorKind::Io,
        format!("`{words}` failed ({status}): {tail}"),
    )
}

/// The last `n` non-empty lines of `text`, joined with " | ", control characters dropped.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    let clean: String = tail.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() {
        "(it wrote nothing)".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(program: &str) -> Tool {
        Tool {
            argv: vec![program.to_owned()],
            package_hint: "the docker-compose package",
            key: "runtime.compose-command",
            hide: vec!["HOME".into()],
            calls: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn a_missing_program_names_the_package_and_the_key() {
        let err = tool("/nonexistent/docker-compose")
            .call(&["ps"], &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.context().key.as_deref(),
            Some("runtime.compose-command")
        );
        assert!(err.message().contains("docker-compose package"), "{err}");
    }

    #[tokio::test]
    async fn a_time_limit_kills_the_whole_group_and_output_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let err = tool("sh")
            .call(&["-c", &script], &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.message().contains("did not answer within 1s"), "{err}");
        let child: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !vigia_core::process::is_running(child),
            "the child died with it"
        );

        // A writer that never stops: the call fails at the cap, not at its time limit.
        let flood = "cat /dev/zero";
        let err = tool("sh")
            .call(&["-c", flood], &[], Duration::from_mins(1))
            .await
            .unwrap_err();
        assert!(err.message().contains("printed more than 64 MiB"), "{err}");
    }

    #[tokio::test]
    async fn failures_are_sorted_and_secrets_are_not_passed_on() {
        let sh = tool("sh");
        let err = sh
            .call(
                &[
                    "-c",
                    "echo 'Cannot connect to the Docker daemon at unix:///x' >&2; exit 1",
                ],
                &[],
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        let err = sh
            .call(
                &[
                    "-c",
                    "echo one >&2; echo 'no such service: odoo' >&2; exit 3",
                ],
                &[],
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.message().ends_with("one | no such service: odoo"),
            "{err}"
        );

        // HOME stands for a secret's variable: set in every test run, and hidden.
        let out = sh
            .call(
                &["-c", "echo \"[${HOME:-}]$X\""],
                &[("X", "y")],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[]y\n");
        assert_eq!(sh.calls.load(Ordering::Relaxed), 3);
    }
}
