//! `Notifier`: where alerts go (e-mail, webhook).

use async_trait::async_trait;
use serde::Serialize;

use super::check::CheckStatus;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub status: CheckStatus,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel's name for reports: `email`, `webhook`.
    fn channel(&self) -> &str;
    async fn send(&self, alert: &Alert) -> Result<()>;
}
