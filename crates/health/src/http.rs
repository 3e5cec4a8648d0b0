//! What the HTTP clients of the checks and the webhook share.

use std::path::Path;

use vigia_core::{Error, Result};

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
