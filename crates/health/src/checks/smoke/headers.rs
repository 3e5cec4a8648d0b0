//! `smoke.headers`: the security headers on four kinds of answer, because nginx's
//! `add_header` in one location silently drops the server's (DOMAIN.md 5): the login page,
//! one of its bundles, a 404 and the plain-HTTP redirect. HSTS of a year or more on every
//! HTTPS answer; nosniff, Referrer-Policy and X-Frame-Options or CSP `frame-ancestors` on
//! HTML; no security header twice (nginx adding what Odoo already sets). Findings are
//! warnings: the site works, it is exposed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::Site;
use super::login::asset_links;
use super::page::Page;
use super::score::{framed, hsts_max_age, nosniff};
use crate::checks::result;
use crate::http::clip;

const NAME: &str = "smoke.headers";
const ONE_YEAR: u64 = 31_536_000;
/// The headers a proxy must not send twice (a browser takes the strictest or none).
const SINGLE: [&str; 5] = [
    "strict-transport-security",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "content-security-policy",
];
/// A path no Odoo serves.
const MISSING: &str = "/vigia-smoke-test-not-found";

pub(super) struct Headers {
    pub site: Arc<Site>,
    /// Where plain HTTP is answered (`[smoke] http-url`, else port 80 of the url's host).
    pub http_url: String,
}

#[async_trait]
impl Check for Headers {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let site = &self.site;
        let login = match site.login_page(NAME).await {
            Ok(page) => page,
            Err(unknown) => return unknown,
        };
        let asset = asset_links(&login.body).into_iter().next();
        let redirect_url = format!("{}/web/login", self.http_url);
        let (asset, missing, redirect) = futures::join!(
            async {
                match &asset {
                    Some(path) => Some(site.get(path).await),
                    None => None,
                }
            },
            site.get(MISSING),
            Page::get(&site.client, &redirect_url),
        );
        let mut findings = Vec::new();
        let mut answers = vec![("login page", login.clone())];
        for (what, answer) in [("bundle", asset), ("404", Some(missing))] {
            match answer {
                Some(Ok(page)) => answers.push((what, page)),
                Some(Err(e)) => findings.push(e.message().to_owned()),
                None => {}
            }
        }
        let mut seen = Vec::new();
        for (what, page) in &answers {
            seen.push(json!({ "url": page.url, "status": page.status }));
            findings.extend(
                answer_findings(page, site.https())
                    .into_iter()
                    .map(|f| format!("{what}: {f}")),
            );
        }
        match redirect {
            Ok(page) => {
                seen.push(json!({ "url": page.url, "status": page.status }));
                if let Some(f) = redirect_finding(&page, &site.host) {
                    findings.push(f);
                }
            }
            Err(e) => findings.push(format!("plain HTTP is not redirected: {}", e.message())),
        }
        let evidence = json!({ "answers": seen, "findings": findings });
        if findings.is_empty() {
            return result(
                NAME,
                CheckStatus::Ok,
                "HSTS, nosniff, Referrer-Policy and framing protection where due, none twice; \
                 plain HTTP redirected",
                evidence,
            );
        }
        result(NAME, CheckStatus::Warning, findings.join("; "), evidence)
    }
}

/// What one HTTPS (or, with `https` false, plain) answer lacks or repeats. nosniff is asked
/// of every answer, not only HTML: a bundle sniffed as another type is where it matters.
fn answer_findings(page: &Page, https: bool) -> Vec<String> {
    let mut out = Vec::new();
    match (https, hsts_max_age(page)) {
        (false, _) => out.push("HSTS missing (not https)".to_owned()),
        (true, None) => out.push("HSTS missing".to_owned()),
        (true, Some(age)) if age < ONE_YEAR => {
            out.push(format!("HSTS max-age={age}, under a year"));
        }
        (true, Some(_)) => {}
    }
    if !nosniff(page) {
        out.push("X-Content-Type-Options: nosniff missing".to_owned());
    }
    if page.is_html() {
        if page.header("referrer-policy").is_none() {
            out.push("Referrer-Policy missing".to_owned());
        }
        if !framed(page) {
            out.push("neither X-Frame-Options nor CSP frame-ancestors".to_owned());
        }
    }
    for name in SINGLE {
        let count = page.all(name).count();
        if count > 1 {
            out.push(format!("{name} sent {count} times"));
        }
    }
    out
}

/// A plain-HTTP answer that is not a permanent redirect to https on the site's `host`.
fn redirect_finding(page: &Page, host: &str) -> Option<String> {
    let location = page.header("location").unwrap_or_default();
    let target = reqwest::Url::parse(location).ok();
    let https_here = target
        .as_ref()
        .is_some_and(|t| t.scheme() == "https" && t.host_str() == Some(host));
    if matches!(page.status, 301 | 308) && https_here {
        return None;
    }
    Some(format!(
        "plain HTTP ({}) answered {}{}, not a 301 or 308 to https://{host}",
        page.url,
        page.status,
        if location.is_empty() {
            String::new()
        } else {
            format!(" to {}", clip(location))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(status: u16, headers: &[(&str, &str)]) -> Page {
        Page {
            url: "u".into(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: String::new(),
        }
    }

    #[test]
    fn html_needs_more_than_an_asset_and_nothing_may_come_twice() {
        let mut asset = page(
            200,
            &[
                ("content-type", "text/css"),
                ("strict-transport-security", "max-age=63072000"),
            ],
        );
        assert_eq!(
            answer_findings(&asset, true),
            ["X-Content-Type-Options: nosniff missing"]
        );
        asset
            .headers
            .push(("x-content-type-options".into(), "nosniff".into()));
        assert!(answer_findings(&asset, true).is_empty());
        let html = page(
            200,
            &[
                ("content-type", "text/html; charset=utf-8"),
                ("strict-transport-security", "max-age=600"),
                ("x-frame-options", "SAMEORIGIN"),
                ("x-frame-options", "SAMEORIGIN"),
            ],
        );
        let found = answer_findings(&html, true);
        assert_eq!(
            found,
            [
                "HSTS max-age=600, under a year",
                "X-Content-Type-Options: nosniff missing",
                "Referrer-Policy missing",
                "x-frame-options sent 2 times"
            ]
        );
    }

    #[test]
    fn only_a_permanent_redirect_to_https_will_do() {
        let found = |status, location: &str| {
            redirect_finding(&page(status, &[("location", location)]), "erp")
        };
        assert!(found(301, "https://erp/web/login").is_none());
        assert!(
            found(308, "HTTPS://ERP/").is_none(),
            "schemes and hosts have no case"
        );
        assert!(found(302, "https://erp/").is_some());
        assert!(found(301, "http://erp/").is_some());
        assert!(found(301, "https://elsewhere.example/").is_some());
        assert!(found(301, "/web/login").is_some());
        assert!(redirect_finding(&page(200, &[]), "erp").is_some());
    }
}
