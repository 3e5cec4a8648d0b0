//! `Runtime`: the stack's services (start, stop, status, logs), and the `none` runtime.

use async_trait::async_trait;
use serde::Serialize;

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
    async fn status(&self, service: Service) -> Result<ServiceState>;
    async fn start(&self, service: Service) -> Result<RuntimeAction>;
    async fn stop(&self, service: Service) -> Result<RuntimeAction>;
    /// The last `lines` lines of the service's log.
    async fn logs(&self, service: Service, lines: usize) -> Result<Vec<String>>;
}

/// `[runtime] kind = "none"`: services are managed elsewhere. Vigia never starts or stops
/// them, and says so instead of pretending.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRuntime;

const MANAGED_ELSEWHERE: &str = "runtime kind is \"none\": services are managed outside vigia";

#[async_trait]
impl Runtime for NoRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::None
    }

    async fn status(&self, _: Service) -> Result<ServiceState> {
        Ok(ServiceState::Unknown {
            reason: MANAGED_ELSEWHERE.into(),
        })
    }

    async fn start(&self, _: Service) -> Result<RuntimeAction> {
        Ok(RuntimeAction::Skipped {
            reason: MANAGED_ELSEWHERE.into(),
        })
    }

    async fn stop(&self, _: Service) -> Result<RuntimeAction> {
        Ok(RuntimeAction::Skipped {
            reason: MANAGED_ELSEWHERE.into(),
        })
    }

    async fn logs(&self, service: Service, _: usize) -> Result<Vec<String>> {
        Err(Error::config(format!(
            "cannot read {}'s log: {MANAGED_ELSEWHERE}; set [runtime] kind to \"compose\" or \"local\"",
            service.as_str()
        ))
        .with_key("runtime.kind"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn none_runtime_skips_and_says_why() {
        let action = NoRuntime.stop(Service::Odoo).await.unwrap();
        assert!(matches!(action, RuntimeAction::Skipped { reason } if reason.contains("none")));
        let err = NoRuntime.logs(Service::Odoo, 100).await.unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("runtime.kind"));
    }
}
