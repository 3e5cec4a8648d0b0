//! `services.<odoo|postgres|nginx|redis>`: each service's state, where the runtime manages
//! it. A service the runtime does not manage is skipped, never unknown.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::Config;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::ports::runtime::{Runtime, Service, ServiceState};

use super::{result, skipped, unknown};

const SERVICES: [Service; 4] = [
    Service::Odoo,
    Service::Postgres,
    Service::Nginx,
    Service::Redis,
];

pub(super) fn checks(
    config: &Config,
    runtime: &Result<Arc<dyn Runtime>, String>,
) -> Vec<Arc<dyn Check>> {
    SERVICES
        .into_iter()
        .map(|service| {
            Arc::new(ServiceCheck {
                name: format!("services.{}", service.as_str()),
                service,
                runtime: runtime.clone(),
                kind: config.runtime.kind,
            }) as Arc<dyn Check>
        })
        .collect()
}

fn not_managed(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::None => "runtime none: the service is managed outside vigia",
        RuntimeKind::Local => "the local runtime manages Odoo only",
        RuntimeKind::Compose => "not a service of the compose stack ([runtime.services])",
    }
}

struct ServiceCheck {
    name: String,
    service: Service,
    /// The runtime, or why it cannot be built.
    runtime: Result<Arc<dyn Runtime>, String>,
    kind: RuntimeKind,
}

#[async_trait]
impl Check for ServiceCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self) -> CheckResult {
        let name = &self.name;
        let runtime = match &self.runtime {
            Err(why) => return skipped(name, why.clone()),
            Ok(runtime) => runtime,
        };
        match runtime.manages(self.service).await {
            Ok(true) => {}
            Ok(false) => return skipped(name, not_managed(self.kind)),
            Err(e) => return unknown(name, &e),
        }
        match runtime.status(self.service).await {
            Ok(ServiceState::Running) => result(name, CheckStatus::Ok, "running", json!({})),
            Ok(ServiceState::Stopped) => {
                let status = if self.service == Service::Redis {
                    CheckStatus::Warning
                } else {
                    CheckStatus::Critical
                };
                result(name, status, "not running", json!({}))
            }
            Ok(ServiceState::Unknown { reason }) => {
                result(name, CheckStatus::Unknown, reason, json!({}))
            }
            Err(e) => unknown(name, &e),
        }
    }
}
