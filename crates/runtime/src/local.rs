//! `[runtime] kind = "local"`: Odoo as a process vigia starts and stops itself. Its pid is
//! kept in `<state-dir>/run/odoo.pid` and its output appended to `<state-dir>/run/odoo.log`;
//! it runs in its own process group (a Ctrl-C at vigia's terminal does not reach it) and
//! outlives vigia. With `[deploy]`, `{release}` in the command is the current release's
//! folder (where it runs), releases are switched here, and one-off commands (the upgrade)
//! run in a release and die with vigia. Other services are managed elsewhere.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::{
    OneOff, OneOffExit, Runtime, RuntimeAction, Service, ServiceState,
};
use vigia_core::process::{is_running, signal_group};

use crate::releases::{ReleaseRef, Releases};
use crate::shell::run_shell;
use vigia_core::process::shell_quote;
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
    /// `[deploy]`'s releases, when set.
    pub releases: Option<Releases>,
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
            releases: Releases::from_config(config),
        })
    }

    fn releases(&self) -> Result<&Releases> {
        self.releases.as_ref().ok_or_else(|| {
            Error::config("releases need [deploy] root (where releases/<ref>/ and current are)")
                .with_key("deploy.root")
        })
    }

    /// The current release's folder, when the command names `{release}`.
    fn release_dir(&self) -> Result<Option<PathBuf>> {
        if !self.odoo_command.contains("{release}") {
            return Ok(None);
        }
        let releases = self.releases()?;
        let current = releases.current()?.ok_or_else(|| {
            Error::config(format!(
                "[runtime] odoo-command names {{release}} but no release is current: {}",
                releases.link_hint("<ref>")
            ))
            .with_key("deploy.root")
        })?;
        Ok(Some(releases.dir(&current)))
    }

    /// `command` run once in `release` under `limits`: its own process group, killed whole
    /// at the time limit, and dead with vigia's thread that waits for it.
    fn run_once(&self, command: &str, release: &str, limits: &OneOff) -> Result<OneOffExit> {
        let releases = self.releases()?;
        let release = ReleaseRef::parse(release)?;
        if !releases.exists(&release) {
            return Err(Error::invalid_input(format!(
                "release {release} is not there: {}",
                releases.dir(&release).display()
            )));
        }
        let dir = releases.dir(&release);
        let filled = command.replace("{release}", &shell_quote(&dir.to_string_lossy()));
        run_shell(&filled, &dir, &[], limits)
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
        let (command, dir) = match self.release_dir()? {
            Some(dir) => (
                self.odoo_command
                    .replace("{release}", &shell_quote(&dir.to_string_lossy())),
                Some(dir),
            ),
            None => (self.odoo_command.clone(), None),
        };
        let mut child = Command::new("sh");
        if let Some(dir) = &dir {
            child.current_dir(dir);
        }
        let mut child = child
            .arg("-c")
            .arg(format!("exec {command}"))
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

    async fn manages(&self, service: Service) -> Result<bool> {
        Ok(service == Service::Odoo)
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

    async fn current_release(&self) -> Result<Option<String>> {
        let releases = self.releases()?.clone();
        blocking("runtime", move || releases.current())
            .await
            .map(|r| r.map(|r| r.as_str().to_owned()))
    }

    async fn switch(&self, release: &str, _id: &str) -> Result<()> {
        let releases = self.releases()?.clone();
        let release = ReleaseRef::parse(release)?;
        blocking("runtime", move || releases.switch(&release)).await
    }

    async fn run(&self, command: &str, release: &str, limits: &OneOff) -> Result<OneOffExit> {
        let (this, command, release, limits) = (
            self.clone(),
            command.to_owned(),
            release.to_owned(),
            limits.clone(),
        );
        blocking("runtime", move || {
            this.run_once(&command, &release, &limits)
        })
        .await
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
            releases: None,
        }
    }

    /// A runtime with releases v1 and v2 under `dir/srv`, v1 current.
    fn with_releases(dir: &std::path::Path, command: &str) -> LocalRuntime {
        let root = dir.join("srv");
        for r in ["v1", "v2"] {
            std::fs::create_dir_all(root.join("releases").join(r)).unwrap();
            std::fs::write(root.join("releases").join(r).join("VERSION"), r).unwrap();
        }
        let releases = Releases::new(root, vec![PathBuf::from("addons")]);
        releases.switch(&ReleaseRef::parse("v1").unwrap()).unwrap();
        LocalRuntime {
            releases: Some(releases),
            ..runtime(dir, command)
        }
    }

    #[tokio::test]
    async fn odoo_starts_in_the_current_release_and_switches_take_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let rt = with_releases(
            dir.path(),
            "sh -c 'cat {release}/VERSION; echo; pwd; exec sleep 600'",
        );
        assert_eq!(rt.current_release().await.unwrap().as_deref(), Some("v1"));
        rt.start(Service::Odoo).await.unwrap();
        rt.stop(Service::Odoo).await.unwrap();
        rt.switch("v2", "d1").await.unwrap();
        rt.start(Service::Odoo).await.unwrap();
        rt.stop(Service::Odoo).await.unwrap();
        let log = std::fs::read_to_string(rt.log_file()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[0], "v1", "{log}");
        assert!(lines[1].ends_with("srv/releases/v1"), "{log}");
        assert_eq!(lines[2], "v2", "{log}");
        assert!(lines[3].ends_with("srv/releases/v2"), "{log}");
        assert!(rt.switch("../v1", "d1").await.is_err());
    }

    #[tokio::test]
    async fn a_one_off_runs_in_its_release_and_is_killed_whole_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let rt = with_releases(dir.path(), "sleep 600");
        let limits = |secs| OneOff {
            timeout: Duration::from_secs(secs),
            output: dir.path().join("deploys/x/upgrade.log"),
            cancel: vigia_core::CancelToken::new(),
            hide: Vec::new(),
        };
        let done = rt
            .run("cat VERSION; exit 3", "v2", &limits(10))
            .await
            .unwrap();
        assert_eq!((done.code, done.timed_out), (Some(3), false));
        assert!(!done.success());
        assert_eq!(std::fs::read_to_string(&limits(0).output).unwrap(), "v2");
        // A child of the command is killed with it.
        let marker = dir.path().join("grandchild.pid");
        let command = format!("sh -c 'echo $$ > {}; sleep 600'; true", marker.display());
        let started = Instant::now();
        let cut = rt.run(&command, "v1", &limits(1)).await.unwrap();
        assert!(cut.timed_out && !cut.success());
        assert!(started.elapsed() < Duration::from_secs(5));
        let grandchild: u32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!is_running(grandchild), "no process of the command is left");
        assert!(rt.run("true", "v3", &limits(1)).await.is_err());
        let cancelled = limits(60);
        cancelled.cancel.cancel();
        let stopped = rt.run("sleep 600", "v1", &cancelled).await.unwrap();
        assert!(stopped.cancelled && !stopped.timed_out && !stopped.success());
    }

    #[tokio::test]
    async fn without_releases_the_runtime_says_what_to_set() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path(), "{release}/odoo-bin");
        let err = rt.current_release().await.unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("deploy.root"));
        assert!(rt.start(Service::Odoo).await.is_err());
        let err = crate::NoRuntime.switch("v1", "d1").await.unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("runtime.kind"));
        assert!(err.message().contains("\"none\""), "{err}");
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
