//! `RecordingRuntime`: a `Runtime` that remembers what it was asked, in order, and keeps each
//! service's state, so a unit test can check that a job stopped and started Odoo (and when).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::config::RuntimeKind;
use crate::error::{Error, Result};
use crate::ports::runtime::{Runtime, RuntimeAction, Service, ServiceState};

#[derive(Debug, Default)]
pub struct RecordingRuntime {
    calls: Mutex<Vec<String>>,
    stopped: Mutex<HashMap<Service, bool>>,
    /// `start` fails with this message when set (Odoo that does not come back).
    pub fail_start: Option<String>,
}

impl RecordingRuntime {
    /// The calls so far: `stop odoo`, `start odoo`, `status postgres`, `logs odoo`.
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(&self, verb: &str, service: Service) {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("{verb} {}", service.as_str()));
    }

    fn set_stopped(&self, service: Service, stopped: bool) {
        self.stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(service, stopped);
    }
}

#[async_trait]
impl Runtime for RecordingRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Local
    }

    async fn status(&self, service: Service) -> Result<ServiceState> {
        self.record("status", service);
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&service)
            .copied()
            .unwrap_or(false);
        Ok(if stopped {
            ServiceState::Stopped
        } else {
            ServiceState::Running
        })
    }

    async fn start(&self, service: Service) -> Result<RuntimeAction> {
        self.record("start", service);
        if let Some(message) = &self.fail_start {
            return Err(Error::internal(message.clone()));
        }
        self.set_stopped(service, false);
        Ok(RuntimeAction::Done)
    }

    async fn stop(&self, service: Service) -> Result<RuntimeAction> {
        self.record("stop", service);
        self.set_stopped(service, true);
        Ok(RuntimeAction::Done)
    }

    async fn logs(&self, service: Service, _: usize) -> Result<Vec<String>> {
        self.record("logs", service);
        Ok(Vec::new())
    }
}
