//! `[health] heartbeat-url`: a GET after every run, a dead man's switch for the monitor
//! itself (a service such as healthchecks.io raises the alarm when the GETs stop). The URL
//! holds a token, so no message names it.

use std::time::Duration;

use vigia_core::config::SecretRef;
use vigia_core::{Config, Error, ErrorKind, Result};

#[derive(Debug)]
pub struct Heartbeat {
    url: SecretRef,
    client: reqwest::Client,
}

impl Heartbeat {
    pub fn from_config(config: &Config) -> Result<Option<Self>> {
        let Some(url) = &config.health.heartbeat_url else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(config.health.timeout.0.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
        Ok(Some(Self {
            url: url.clone(),
            client,
        }))
    }

    pub async fn beat(&self) -> Result<()> {
        let failed = |why: String| {
            Error::new(
                ErrorKind::Network,
                format!("the heartbeat (health.heartbeat-url) was not delivered: {why}"),
            )
        };
        // Off the async threads: a `cmd:` secret runs a process.
        let secret = self.url.clone();
        let url =
            vigia_core::task::blocking("heartbeat", move || secret.resolve("health.heartbeat-url"))
                .await?;
        let answer = self
            .client
            .get(url.expose())
            .send()
            .await
            .map_err(|e| failed(vigia_core::error_chain(&e.without_url())))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(failed(format!("it answered HTTP {}", answer.status())))
        }
    }
}
