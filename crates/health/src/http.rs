//! What the HTTP clients of the checks and the webhook share.

use std::net::SocketAddr;
use std::path::Path;

use reqwest::redirect::Policy;
use vigia_core::{Config, Error, Result};

/// The client of the checks that ask the site: no redirects (nginx's 301 to HTTPS is not
/// Odoo's answer), `[health] resolve` pins, `[health] ca-file` roots, and HTTP/1.1 (a
/// websocket upgrade is an HTTP/1.1 request).
pub(crate) fn site_client(config: &Config) -> Result<reqwest::Client> {
    let health = &config.health;
    let mut builder = reqwest::Client::builder()
        .redirect(Policy::none())
        .http1_only()
        // A filtered port must not eat a check's whole budget before it can say so.
        .connect_timeout(std::time::Duration::from_secs(3));
    for (host, address) in &health.resolve {
        // The port comes from the URL; reqwest ignores this one.
        builder = builder.resolve(host, SocketAddr::new(*address, 0));
    }
    if let Some(file) = &health.ca_file {
        builder = builder.tls_certs_merge(extra_roots(file, "health.ca-file")?);
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))
}

/// The PEM roots in `file` (`key` names the setting), trusted besides the system's.
pub(crate) fn extra_roots(file: &Path, key: &str) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::config(format!("{}: not PEM certificates: {e}", file.display())).with_key(key)
    })
}

/// `localhost` or a loopback address (IPv6 with or without its brackets).
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` without its user and password (an unparsable URL is shown as `<url>`).
pub(crate) fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<url>".to_owned(),
    }
}

/// At most 200 characters of what a server sent, on one line, with no control character
/// (an escape sequence in a body must not reach an operator's terminal).
pub(crate) fn clip(text: &str) -> String {
    text.trim()
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
