//! `[runtime] kind = "local"`: Odoo as a process vigia starts and stops itself. Its pid is
//! kept in `<state-dir>/run/odoo.pid` and its output appended to `<state-dir>/run/odoo.log`;
//! it runs in its own process group (a Ctrl-C at vigia's terminal does not reach it) and
//! outlives vigia. Other services are managed elsewhere.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::{Runtime, RuntimeAction, Service, ServiceState};
use vigia_core::process::{is_running, signal_group};
use vigia_core::task::blocking;
use vigia_core::{Config, Error, ErrorKind, Result};

/// How long Odoo gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// A command that exits within this long after starting failed to start.
const START_SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct LocalRuntime {
    /// Run with `sh -c`.
    pub odoo_command: String,
    /// Holds `odoo.pid` and `odoo.log`.
    pub run_dir: PathBuf,
}

impl LocalRuntime {
    pub fn from_config(config: &Config) -> Result<Self> {
        let odoo_command = config
            .runtime
            .odoo_command
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::config("kind = \"local\" needs [runtime] odoo-command")
                    .with_key("runtime.odoo-command")
            })?;
        Ok(Self {
            odoo_command,
            run_dir: config.state_dir.join("run"),
        })
    }

    fn pid_file(&self) -> PathBuf {
        self.run_dir.join("odoo.pid")
    }

    fn log_file(&self) -> PathBuf {
        self.run_dir.join("odoo.log")
    }

    /// The pid in the pid file, if that process still runs.
    fn running(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        text.trim().parse().ok().filter(|pid| is_running(*pid))
    }

    fn start_odoo(&self) -> Result<()> {
        if self.running().is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.run_dir)
            .map_err(|e| Error::io("create", &self.run_dir, e))?;
        let log_path = self.log_file();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io("open", &log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("open", &log_path, e))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {}", self.odoo_command))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("start Odoo with", std::path::Path::new("sh"), e))?;
        let pid = child.id();
        let pid_file = self.pid_file();
        vigia_core::disk::write_durably(&pid_file, format!("{pid}\n").as_bytes())
            .map_err(|e| Error::io("write", &pid_file, e))?;
        std::thread::sleep(START_SETTLE);
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&pid_file);
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "Odoo exited right after starting ({status}); see {}: {}",
                    log_path.display(),
                    log_tail(&log_path, 3)
                ),
            ));
        }
        Ok(())
    }

    fn stop_odoo(&self) -> Result<()> {
        let Some(pid) = self.running() else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(());
        };
        let signal = |sig| {
            signal_group(pid, sig).or_else(|e| {
                // Gone between the check and the signal: stopped all the same.
                if e.raw_os_error() == Some(libc::ESRCH) {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::Io,
                        format!("cannot signal Odoo (pid {pid}): {e}"),
                    ))
                }
            })
        };
        signal(libc::SIGTERM)?;
        let deadline = Instant::now() + STOP_GRACE;
        while is_running(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_running(pid) {
            signal(libc::SIGKILL)?;
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(())
    }
}

/// Other services than Odoo are not this runtime's.
fn managed_elsewhere(service: Service) -> String {
    format!(
        "the local runtime runs only Odoo; {} is managed outside vigia",
        service.as_str()
    )
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Local
    }

    async fn main_pid(&self, service: Service) -> Option<u32> {
        (service == Service::Odoo).then(|| self.running()).flatten()
    }

    async fn status(&self, service: Service) -> Result<ServiceState> {
        if service != Service::Odoo {
            return Ok(ServiceState::Unknown {
                reason: managed_elsewhere(service),
            });
        }
        Ok(if self.running().is_some() {
            ServiceState::Running
        } else {
            ServiceState::Stopped
        })
    }

    async fn start(&self, service: Service) -> Result<RuntimeAction> {
        if service != Service::Odoo {
            return Ok(RuntimeAction::Skipped {
                reason: managed_elsewhere(service),
            });
        }
        let this = self.clone();
        blocking("runtime", move || this.start_odoo()).await?;
        Ok(RuntimeAction::Done)
    }

    async fn stop(&self, service: Service) -> Result<RuntimeAction> {
        if service != Service::Odoo {
            return Ok(RuntimeAction::Skipped {
                reason: managed_elsewhere(service),
            });
        }
        let this = self.clone();
        blocking("runtime", move || this.stop_odoo()).await?;
        Ok(RuntimeAction::Done)
    }

    async fn logs(&self, service: Service, lines: usize) -> Result<Vec<String>> {
        if service != Service::Odoo {
            return Err(Error::config(managed_elsewhere(service)).with_key("runtime.kind"));
        }
        let path = self.log_file();
        // Read from the end, whatever the file's size.
        vigia_core::disk::tail_lines(&path, LOG_WINDOW_BYTES, lines)
            .map_err(|e| Error::io("read", &path, e))
    }
}

/// The most of a log `logs` reads.
const LOG_WINDOW_BYTES: u64 = 1 << 20;

fn log_tail(path: &std::path::Path, lines: usize) -> String {
    vigia_core::disk::tail_lines(path, LOG_WINDOW_BYTES, lines)
        .unwrap_or_default()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(dir: &std::path::Path, command: &str) -> LocalRuntime {
        LocalRuntime {
            odoo_command: command.into(),
            run_dir: dir.join("run"),
        }
    }

    #[tokio::test]
    async fn starts_stops_and_reports_odoo() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path(), "sleep 600");
        assert_eq!(
            rt.status(Service::Odoo).await.unwrap(),
            ServiceState::Stopped
        );
        assert_eq!(rt.start(Service::Odoo).await.unwrap(), RuntimeAction::Done);
        let pid = rt.running().expect("running after start");
        assert_eq!(
            rt.status(Service::Odoo).await.unwrap(),
            ServiceState::Running
        );
        rt.start(Service::Odoo).await.unwrap();
        assert_eq!(
            rt.running(),
            Some(pid),
            "a second start keeps the one running"
        );
        rt.stop(Service::Odoo).await.unwrap();
        assert!(!is_running(pid));
        assert_eq!(
            rt.status(Service::Odoo).await.unwrap(),
            ServiceState::Stopped
        );
        assert!(matches!(
            rt.stop(Service::Nginx).await.unwrap(),
            RuntimeAction::Skipped { .. }
        ));
    }

    #[tokio::test]
    async fn a_command_that_exits_at_once_fails_to_start_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path(), "echo 'odoo.conf: no such file' >&2; exit 3");
        let err = rt.start(Service::Odoo).await.unwrap_err();
        assert!(err.message().contains("no such file"), "{}", err.message());
        assert_eq!(
            rt.status(Service::Odoo).await.unwrap(),
            ServiceState::Stopped
        );
    }
}
