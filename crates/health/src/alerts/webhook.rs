//! Alerts to a Slack-compatible webhook: POST `{"text": ...}`. The URL is a secret (it holds
//! the token), so no error names it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::config::{AlertingConfig, SecretRef};
use vigia_core::ports::notifier::{Alert, Notifier};
use vigia_core::{Error, ErrorKind, Result};

use crate::http::{error_chain, extra_roots};

#[derive(Debug)]
pub struct Webhook {
    url: SecretRef,
    client: reqwest::Client,
}

impl Webhook {
    pub fn from_config(a: &AlertingConfig, timeout: Duration) -> Result<Option<Self>> {
        let Some(url) = &a.webhook_url else {
            return Ok(None);
        };
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(file) = &a.ca_file {
            builder = builder.tls_certs_merge(extra_roots(file, "alerting.ca-file")?);
        }
        let client = builder
            .build()
            .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
        Ok(Some(Self {
            url: url.clone(),
            client,
        }))
    }
}

#[async_trait]
impl Notifier for Webhook {
    fn channel(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, alert: &Alert) -> Result<()> {
        let url = self.url.resolve("alerting.webhook-url")?;
        let failed = |why: String| {
            Error::new(
                ErrorKind::Network,
                format!("the webhook (alerting.webhook-url) did not take the alert: {why}"),
            )
        };
        let text = format!("*{}*\n{}", alert.subject, alert.body);
        let answer = self
            .client
            .post(url.expose())
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(|e| failed(error_chain(&e.without_url())))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("it answered HTTP {status}")))
        }
    }
}
