//! `smoke.login`: `/web/login` answers HTML, every bundle it links (`/web/assets/...`)
//! answers 200 as CSS or JavaScript (a bundle left unbuilt by an upgrade is a blank page),
//! and the session cookie is `Secure` and `HttpOnly`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::Site;
use super::page::Page;
use crate::checks::result;

const NAME: &str = "smoke.login";
/// Bundles asked at most: a login page links three.
const MAX_ASSETS: usize = 20;

pub(super) struct Login(pub Arc<Site>);

#[async_trait]
impl Check for Login {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let site = &self.0;
        let page = match site.login().await {
            Ok(page) => page,
            Err(e) => return result(NAME, CheckStatus::Critical, e.clone(), json!({})),
        };
        if page.status != 200 || !page.is_html() {
            return result(
                NAME,
                CheckStatus::Critical,
                format!(
                    "{} answered {} {}, not the login page",
                    page.url,
                    page.status,
                    page.media_type()
                ),
                json!({ "url": page.url, "status": page.status }),
            );
        }
        let links = asset_links(&page.body);
        let answers = futures::future::join_all(links.iter().map(|path| site.get(path))).await;
        let mut problems = Vec::new();
        let mut assets = Vec::new();
        for (path, answer) in links.iter().zip(answers) {
            match answer {
                Ok(a) => {
                    let kind = a.media_type();
                    assets.push(json!({ "path": path, "status": a.status, "type": kind }));
                    if a.status != 200 {
                        problems.push(format!("{path} answered {}", a.status));
                    } else if !(kind.contains("css") || kind.contains("javascript")) {
                        problems.push(format!("{path} is {kind}, not CSS or JavaScript"));
                    }
                }
                Err(e) => problems.push(e.message().to_owned()),
            }
        }
        let cookie = session_cookie(page);
        let evidence = json!({ "url": page.url, "assets": assets, "session_cookie": cookie });
        if !problems.is_empty() {
            return result(
                NAME,
                CheckStatus::Critical,
                format!(
                    "the login page's bundles do not load (were they rebuilt after the upgrade?): {}",
                    problems.join("; ")
                ),
                evidence,
            );
        }
        let mut warnings = Vec::new();
        if links.is_empty() {
            warnings.push("the login page links no /web/assets/ bundle".to_owned());
        }
        match &cookie {
            None => warnings.push("no session_id cookie on the login page".to_owned()),
            Some(c) => {
                for (flag, set) in [("Secure", c.secure), ("HttpOnly", c.http_only)] {
                    if !set {
                        warnings.push(format!("the session_id cookie is not {flag}"));
                    }
                }
            }
        }
        if warnings.is_empty() {
            return result(
                NAME,
                CheckStatus::Ok,
                format!("login page and {} bundles load", links.len()),
                evidence,
            );
        }
        let hint = if cookie.is_some_and(|c| !c.secure) {
            " (behind TLS, Odoo marks it Secure when nginx sends X-Forwarded-Proto and proxy_mode is on)"
        } else {
            ""
        };
        result(
            NAME,
            CheckStatus::Warning,
            format!("{}{hint}", warnings.join("; ")),
            evidence,
        )
    }
}

/// The flags of the `session_id` cookie a page sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(super) struct SessionCookie {
    pub secure: bool,
    pub http_only: bool,
}

pub(super) fn session_cookie(page: &Page) -> Option<SessionCookie> {
    let cookie = page
        .all("set-cookie")
        .find(|c| c.trim_start().starts_with("session_id="))?;
    let flags: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    Some(SessionCookie {
        secure: flags.iter().any(|f| f == "secure"),
        http_only: flags.iter().any(|f| f == "httponly"),
    })
}

/// The distinct `/web/assets/` paths a page links by `href` or `src` (attribute names in any
/// case, spaces around `=`; on this site only: a link to another host is not followed).
pub(super) fn asset_links(html: &str) -> Vec<String> {
    // ASCII lower-casing keeps every byte where it was, so positions carry over.
    let lower = html.to_ascii_lowercase();
    let mut links: Vec<String> = Vec::new();
    for attribute in ["href", "src"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(attribute) {
            from += at + attribute.len();
            let rest = html[from..].trim_start();
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            let rest = rest.trim_start();
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let Some(end) = rest[1..].find(quote) else {
                break;
            };
            let value = &rest[1..=end];
            let safe = value.starts_with("/web/assets/")
                && !value.contains("..")
                && value.bytes().all(|b| b.is_ascii_graphic());
            if safe && !links.iter().any(|l| l == value) && links.len() < MAX_ASSETS {
                links.push(value.to_owned());
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_the_sites_own_asset_links() {
        let html = r#"<link rel="stylesheet" href="/web/assets/1/a.min.css"/>
            <script src='/web/assets/1/b.min.js'></script><a href="/web/login">x</a>
            <script src="https://cdn.example.com/web/assets/x.js"></script>
            <script src="/web/assets/1/a.min.css"></script><img src=/web/assets/noquote.png>
            <LINK HREF = "/web/assets/1/d.css"/><img data-src="/web/assets/1/e.png">
            <link href="/web/assets/../../etc/passwd"/><link href="/web/assets/1/c.css"#;
        assert_eq!(
            asset_links(html),
            [
                "/web/assets/1/a.min.css",
                "/web/assets/1/d.css",
                "/web/assets/1/b.min.js",
                "/web/assets/1/e.png"
            ]
        );
    }

    #[test]
    fn the_session_cookies_flags_are_read_whatever_their_case() {
        let page = |cookies: &[&str]| Page {
            url: String::new(),
            status: 200,
            headers: cookies
                .iter()
                .map(|c| ("set-cookie".to_owned(), (*c).to_owned()))
                .collect(),
            body: String::new(),
        };
        assert_eq!(
            session_cookie(&page(&[
                "frontend_lang=en",
                "session_id=x; path=/; httponly; SECURE"
            ])),
            Some(SessionCookie {
                secure: true,
                http_only: true
            })
        );
        assert_eq!(
            session_cookie(&page(&[
                "session_id=x; Path=/; HttpOnly; SameSite=Secure-ish"
            ])),
            Some(SessionCookie {
                secure: false,
                http_only: true
            })
        );
        assert_eq!(session_cookie(&page(&["other=1; Secure"])), None);
    }
}
