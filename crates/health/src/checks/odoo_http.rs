//! `odoo.internal` (`[odoo] internal-url`) and `odoo.public` (`[odoo] url`, when different):
//! `GET /web/health?db_server_status=1`, judged by vigia-odoo's one verdict. Redirects are not
//! followed: nginx's 301 to HTTPS is not Odoo saying pass.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Result};
use vigia_odoo::health::{Answer, judge};

use super::{result, skipped};
use crate::http::{clip, shown, site_client};
use vigia_core::error_chain;

pub(super) fn checks(config: &Config) -> Result<Vec<Arc<dyn Check>>> {
    let client = site_client(config)?;
    let internal = config.odoo.internal_url().map(str::to_owned);
    let public = config
        .odoo
        .url
        .clone()
        .filter(|url| Some(url.as_str()) != internal.as_deref());
    let public_reason = if config.odoo.url.is_some() {
        "the same as odoo.internal ([odoo] url = internal-url)"
    } else {
        "[odoo] url is not set"
    };
    Ok(vec![
        Arc::new(OdooHealth {
            name: "odoo.internal",
            url: internal.ok_or("[odoo] internal-url and url are not set"),
            client: client.clone(),
        }),
        Arc::new(OdooHealth {
            name: "odoo.public",
            url: public.ok_or(public_reason),
            client,
        }),
    ])
}

/// `GET <url>/web/health?db_server_status=1` as `name` (`smoke.health` asks it of the url
/// through nginx).
pub(super) struct OdooHealth {
    pub name: &'static str,
    /// The base URL, or why the check does not apply.
    pub url: std::result::Result<String, &'static str>,
    pub client: reqwest::Client,
}

#[async_trait]
impl Check for OdooHealth {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self) -> CheckResult {
        let base = match &self.url {
            Ok(url) => url,
            Err(why) => return skipped(self.name, *why),
        };
        let target = format!(
            "{}/web/health?db_server_status=1",
            base.trim_end_matches('/')
        );
        // What the report shows: never a user or password the URL may hold.
        let url = shown(&target);
        let response = match self.client.get(&target).send().await {
            Ok(response) => response,
            Err(e) => {
                return result(
                    self.name,
                    CheckStatus::Critical,
                    format!("no answer from {url}: {}", error_chain(&e.without_url())),
                    json!({ "url": url }),
                );
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(String::new, shown);
            return result(
                self.name,
                CheckStatus::Critical,
                format!("{url} answered {status} to {location}, not Odoo's health"),
                json!({ "url": url, "status": status.as_u16(), "location": location }),
            );
        }
        let body = response.text().await.unwrap_or_default();
        let evidence = json!({ "url": url, "status": status.as_u16(), "body": clip(&body) });
        match judge(status.as_u16(), &body) {
            Answer::Pass => result(self.name, CheckStatus::Ok, "pass", evidence),
            Answer::NotUp => result(
                self.name,
                CheckStatus::Critical,
                format!("{url} answered {status} from the proxy: Odoo is not up"),
                evidence,
            ),
            Answer::Fail => result(
                self.name,
                CheckStatus::Critical,
                format!("{url} answered {status} {}", clip(&body)),
                evidence,
            ),
        }
    }
}
