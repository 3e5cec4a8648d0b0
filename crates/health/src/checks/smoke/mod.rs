//! `vigia smoke`: the site as a browser meets it, through nginx at `[odoo] url` (or
//! `--url`): Odoo's health, the login page and its bundles, the websocket route, the
//! version, the database manager, latency, the TLS protocols and suites, the security
//! headers and their score. Every check reads the same login page, fetched once: the
//! stack's nginx limits `/web/login` to 5 requests a minute.

mod endpoints;
mod headers;
mod login;
mod page;
mod protocols;
mod score;
mod websocket;

use std::sync::Arc;

use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};

use super::odoo_http::OdooHealth;
use super::result;
use crate::http::{shown, site_client};
use page::Page;

/// What the smoke checks share: the site's base URL, the client, the login page.
pub(crate) struct Site {
    /// `https://host[:port]`, no trailing slash.
    base: String,
    /// The url's host (what the plain-HTTP redirect must name).
    host: String,
    client: reqwest::Client,
    /// `/web/login`, fetched by the first check that needs it, or why it could not be.
    login: tokio::sync::OnceCell<std::result::Result<Page, String>>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn https(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// The login page when it is one (200 HTML): headers of an error page, a 429 from the
    /// login limit or a 502, say nothing of the site's.
    async fn login_page(&self, name: &str) -> std::result::Result<&Page, CheckResult> {
        match self.login().await {
            Ok(page) if page.is_page() => Ok(page),
            Ok(page) => Err(result(
                name,
                CheckStatus::Unknown,
                format!(
                    "{} answered {} {}, not the login page: nothing to judge",
                    page.url,
                    page.status,
                    page.media_type()
                ),
                serde_json::json!({ "url": page.url, "status": page.status }),
            )),
            Err(e) => Err(result(
                name,
                CheckStatus::Unknown,
                format!("no login page to read: {e}"),
                serde_json::json!({}),
            )),
        }
    }

    /// `GET path` on the site.
    async fn get(&self, path: &str) -> Result<Page> {
        Page::get(&self.client, &self.url(path)).await
    }

    /// The login page, asked once per run.
    async fn login(&self) -> &std::result::Result<Page, String> {
        self.login
            .get_or_init(|| async {
                self.get("/web/login")
                    .await
                    .map_err(|e| e.message().to_owned())
            })
            .await
    }
}

/// Whether `url` is the site `[odoo] url` names (scheme, host and port): a smoke test of
/// another site must not replace this one's metrics.
pub(crate) fn is_configured_site(config: &Config, url: &str) -> bool {
    let origin = |u: &str| reqwest::Url::parse(u).ok().map(|p| p.origin());
    config
        .odoo
        .url
        .as_deref()
        .is_some_and(|own| origin(own).is_some() && origin(own) == origin(url))
}

/// The smoke checks for `url` (else `[odoo] url`), in report order (`names::SMOKE`).
pub(crate) fn all(config: &Config, url: Option<&str>) -> Result<Vec<Arc<dyn Check>>> {
    let url = url.or(config.odoo.url.as_deref()).ok_or_else(|| {
        Error::config("no site to smoke-test: set [odoo] url or pass --url").with_key("odoo.url")
    })?;
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::invalid_input(format!("`{}` is not a URL: {e}", shown(url))))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::invalid_input(format!(
            "`{}` is not an http:// or https:// URL with a host",
            shown(url)
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid_input(
            "the smoke test's URL must not hold a user or password",
        ));
    }
    let base = parsed.origin().ascii_serialization();
    let client = site_client(config)?;
    let site = Arc::new(Site {
        base: base.clone(),
        host: parsed.host_str().unwrap_or_default().to_owned(),
        client: client.clone(),
        login: tokio::sync::OnceCell::new(),
    });
    let http_url = match &config.smoke.http_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", parsed.host_str().unwrap_or_default()),
    };
    Ok(vec![
        super::tls::for_url(config, Some(base.clone())),
        Arc::new(OdooHealth {
            name: "smoke.health",
            url: Ok(base.clone()),
            client,
        }),
        Arc::new(login::Login(Arc::clone(&site))),
        Arc::new(websocket::Websocket(Arc::clone(&site))),
        Arc::new(endpoints::Version {
            site: Arc::clone(&site),
            expect: config.smoke.expect_series.clone(),
        }),
        Arc::new(endpoints::DbManager(Arc::clone(&site))),
        Arc::new(endpoints::Latency(Arc::clone(&site))),
        Arc::new(protocols::Protocols::new(&parsed, &config.health.resolve)),
        Arc::new(headers::Headers {
            site: Arc::clone(&site),
            http_url,
        }),
        Arc::new(score::Score {
            site,
            min: config.smoke.min_score,
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        let text = format!("[odoo]\ndatabase = \"odoo\"\nurl = \"{url}\"\n");
        vigia_core::ConfigSource::from_text(text, None)
            .unwrap()
            .load(None)
            .unwrap()
    }

    #[test]
    fn the_configured_site_is_known_however_it_is_spelled() {
        let config = config("https://erp.example.cr");
        for same in [
            "https://erp.example.cr",
            "HTTPS://ERP.example.cr:443/",
            "https://erp.example.cr/web/login",
        ] {
            assert!(is_configured_site(&config, same), "{same}");
        }
        for other in [
            "https://erp.example.cr:8443",
            "http://erp.example.cr",
            "https://staging.example.cr",
            "not a url",
        ] {
            assert!(!is_configured_site(&config, other), "{other}");
        }
    }
}
