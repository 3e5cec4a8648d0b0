//! `Runtime`: the stack's services (start, stop, status, logs); implementations in vigia-runtime.

use async_trait::async_trait;
use serde::Serialize;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::RuntimeKind;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Odoo,
    Postgres,
    Nginx,
    Redis,
}

impl Service {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Odoo => "odoo",
            Self::Postgres => "postgres",
            Self::Nginx => "nginx",
            Self::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServiceState {
    Running,
    Stopped,
    /// The runtime cannot tell (e.g. services managed elsewhere).
    Unknown {
        reason: String,
    },
}

/// What a start or stop did, so callers can say it ("Odoo was not stopped: ...").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RuntimeAction {
    Done,
    Skipped { reason: String },
}

#[async_trait]
pub trait Runtime: Send + Sync {
    fn kind(&self) -> RuntimeKind;
    /// Whether this runtime runs `service` (a check of one it does not is skipped).
    async fn manages(&self, _service: Service) -> Result<bool> {
        Ok(true)
    }
    async fn status(&self, service: Service) -> Result<ServiceState>;
    async fn start(&self, service: Service) -> Result<RuntimeAction>;
    async fn stop(&self, service: Service) -> Result<RuntimeAction>;
    /// Stops and starts `service` (a deploy's switch without an upgrade).
    async fn restart(&self, service: Service) -> Result<RuntimeAction> {
        self.stop(service).await?;
        self.start(service).await
    }
    /// The last `lines` lines of the service's log.
    async fn logs(&self, service: Service, lines: usize) -> Result<Vec<String>>;
    /// The pid of the service's main process, which leads its process group (Odoo's workers
    /// included), when this runtime knows it.
    async fn main_pid(&self, _service: Service) -> Option<u32> {
        None
    }
    /// The release that runs (local: the one `[deploy] root/current` links to); None when
    /// none is marked yet. A runtime without releases refuses, naming `runtime.kind`.
    async fn current_release(&self) -> Result<Option<String>> {
        Err(no_releases(self.kind()))
    }
    /// Makes `release` the one that runs from the next start; `id` names the deploy (what
    /// the runtime keeps of the state before, it keeps under it).
    async fn switch(&self, _release: &str, _id: &str) -> Result<()> {
        Err(no_releases(self.kind()))
    }
    /// Ends what one-offs a killed vigia left running (a container outlives its client);
    /// a runtime whose one-offs die with vigia has nothing to do.
    async fn end_one_offs(&self) -> Result<()> {
        Ok(())
    }
    /// Runs `command` once in `release` (`{release}` filled in), as the upgrade is run.
    async fn run(&self, _command: &str, _release: &str, _limits: &OneOff) -> Result<OneOffExit> {
        Err(no_releases(self.kind()))
    }
}

/// How a one-off command runs: its time limit, the file its output goes to, the token that
/// stops it early (Ctrl-C, `vigia_ctx_cancel`), and what of vigia's environment it must not
/// see.
#[derive(Debug, Clone)]
pub struct OneOff {
    pub timeout: Duration,
    pub output: PathBuf,
    pub cancel: crate::CancelToken,
    /// Environment variables not passed on (those the config's secrets come from).
    pub hide: Vec<String>,
}

/// How a one-off command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OneOffExit {
    /// Its exit code; None when a signal ended it.
    pub code: Option<i32>,
    /// It ran past its time limit and was killed (with everything it started).
    pub timed_out: bool,
    /// It was cancelled and killed (with everything it started).
    pub cancelled: bool,
}

impl OneOffExit {
    pub const fn success(&self) -> bool {
        matches!(self.code, Some(0)) && !self.timed_out && !self.cancelled
    }
}

fn no_releases(kind: RuntimeKind) -> Error {
    Error::config(format!(
        "runtime kind \"{}\" has no releases to deploy: set [runtime] kind = \"local\" and \
         [deploy] root",
        kind.as_str()
    ))
    .with_key("runtime.kind")
}
