//! `[runtime] kind = "none"`: the stack's services are managed elsewhere.

use async_trait::async_trait;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::{Runtime, RuntimeAction, Service, ServiceState};
use vigia_core::{Error, Result};

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

    async fn manages(&self, _: Service) -> Result<bool> {
        Ok(false)
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
