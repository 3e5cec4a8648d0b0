//! Alerts to a Slack-compatible webhook: POST `{"text": ...}`. The URL is a secret (it holds
//! the token), so no error names it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::config::{AlertingConfig, SecretRef};
use vigia_core::ports::notifier::{Alert, Notifier};
use vigia_core::{Error, ErrorKind, Result};

use crate::http::{extra_roots, is_loopback};

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
        // Off the async threads: a `cmd:` secret runs a process.
        let secret = self.url.clone();
        let url =
            vigia_core::task::blocking("webhook", move || secret.resolve("alerting.webhook-url"))
                .await?;
        check_url(url.expose())?;
        let failed = |why: String| {
            Error::new(
                ErrorKind::Network,
                format!("the webhook (alerting.webhook-url) did not take the alert: {why}"),
            )
        };
        let text = format!("*{}*\n{}", escape(&alert.subject), escape(&alert.body));
        let answer = self
            .client
            .post(url.expose())
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(|e| failed(vigia_core::error_chain(&e.without_url())))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("it answered HTTP {status}")))
        }
    }
}

/// https, or plain http only to loopback: the URL's token must not cross a network in clear.
/// The message never repeats the URL.
fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::config(format!("alerting.webhook-url {why}")).with_key("alerting.webhook-url")
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("is not a URL"))?;
    let host = parsed.host_str().ok_or_else(|| bad("names no host"))?;
    let loopback = is_loopback(host);
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(bad(
            "is plain http to another machine: its token would cross the network in clear; \
             use https",
        )),
        _ => Err(bad("is not an http(s) URL")),
    }
}

/// Slack's three control characters, so that a check's summary cannot mention
/// `<!channel>` or make a link.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_crosses_the_network_only_over_https() {
        assert!(check_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://[::1]/hook").is_ok());
        let e = check_url("http://hooks.example.cr/T0K3N").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("T0K3N"), "{e}");
        assert!(check_url("ftp://127.0.0.1/x").is_err());
        assert_eq!(
            escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
    }
}
