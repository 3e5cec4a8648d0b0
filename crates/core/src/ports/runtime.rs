//! `Runtime`: the stack's services (start, stop, status, logs); implementations in vigia-runtime.

use async_trait::async_trait;
use serde::Serialize;

use crate::config::RuntimeKind;
use crate::error::Result;

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
    async fn status(&self, service: Service) -> Result<ServiceState>;
    async fn start(&self, service: Service) -> Result<RuntimeAction>;
    async fn stop(&self, service: Service) -> Result<RuntimeAction>;
    /// The last `lines` lines of the service's log.
    async fn logs(&self, service: Service, lines: usize) -> Result<Vec<String>>;
    /// The pid of the service's main process, which leads its process group (Odoo's workers
    /// included), when this runtime knows it.
    async fn main_pid(&self, _service: Service) -> Option<u32> {
        None
    }
}
