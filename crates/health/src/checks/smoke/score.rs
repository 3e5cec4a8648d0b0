//! `smoke.score`: an HTTP Observatory-style score of the login page's headers (DOMAIN.md 5):
//! from 100, no CSP -25, a CSP that lets inline scripts run -20 (`unsafe-eval` alone -10:
//! Odoo's web client compiles templates with `new Function`, odoo/odoo#22404), no HSTS -20
//! (under six months -10), no framing protection -20, no nosniff -5, a session cookie
//! without `Secure` -40 (-10 with HSTS). Below `[smoke] min-score` is a warning.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};

use super::Site;
use super::login::session_cookie;
use super::page::Page;
use crate::checks::result;

const NAME: &str = "smoke.score";
const SIX_MONTHS: u64 = 15_552_000;

pub(super) struct Score {
    pub site: Arc<Site>,
    pub min: u8,
}

#[async_trait]
impl Check for Score {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let page = match self.site.login_page(NAME).await {
            Ok(page) => page,
            Err(unknown) => return unknown,
        };
        let (score, modifiers) = score(page, self.site.https());
        let lost: Vec<String> = modifiers
            .iter()
            .map(|(why, points)| format!("{why} {points}"))
            .collect();
        let evidence = json!({ "score": score, "min_score": self.min, "url": page.url,
            "modifiers": modifiers.iter().map(|(why, points)| json!({"reason": why, "points": points})).collect::<Vec<_>>() });
        let summary = if lost.is_empty() {
            format!("{score}/100")
        } else {
            format!("{score}/100: {}", lost.join(", "))
        };
        let status = if score < self.min {
            CheckStatus::Warning
        } else {
            CheckStatus::Ok
        };
        result(NAME, status, summary, evidence)
    }
}

/// The page's score and what lowered it.
pub(super) fn score(page: &Page, https: bool) -> (u8, Vec<(&'static str, i32)>) {
    let mut modifiers = Vec::new();
    let csp = csp(page);
    match &csp {
        None => modifiers.push(("no Content-Security-Policy", -25)),
        Some(policy) => {
            let scripts =
                directive(policy, "script-src").or_else(|| directive(policy, "default-src"));
            // A nonce, a hash or 'strict-dynamic' makes browsers ignore 'unsafe-inline'.
            let pinned = |s: &str| {
                [
                    "'nonce-",
                    "'sha256-",
                    "'sha384-",
                    "'sha512-",
                    "'strict-dynamic'",
                ]
                .iter()
                .any(|p| s.contains(p))
            };
            match scripts {
                None => modifiers.push((
                    "CSP does not restrict scripts (no script-src or default-src)",
                    -20,
                )),
                Some(s) if s.contains("'unsafe-inline'") && !pinned(&s) => {
                    modifiers.push(("CSP allows 'unsafe-inline'", -20));
                }
                Some(s) if s.contains("'unsafe-eval'") => {
                    modifiers.push(("CSP allows 'unsafe-eval'", -10));
                }
                Some(_) => {}
            }
        }
    }
    // max-age=0 tells the browser to forget HSTS.
    let hsts = if https {
        hsts_max_age(page).filter(|age| *age > 0)
    } else {
        None
    };
    match hsts {
        None => modifiers.push(("no valid HSTS", -20)),
        Some(age) if age < SIX_MONTHS => modifiers.push(("HSTS under six months", -10)),
        Some(_) => {}
    }
    if !framed(page) {
        modifiers.push(("no X-Frame-Options or CSP frame-ancestors", -20));
    }
    if !nosniff(page) {
        modifiers.push(("no X-Content-Type-Options: nosniff", -5));
    }
    if session_cookie(page).is_some_and(|c| !c.secure) {
        if hsts.is_some() {
            modifiers.push(("session cookie without Secure (HSTS in force)", -10));
        } else {
            modifiers.push(("session cookie without Secure", -40));
        }
    }
    let total: i32 = 100 + modifiers.iter().map(|(_, p)| p).sum::<i32>();
    (u8::try_from(total.clamp(0, 100)).unwrap_or(0), modifiers)
}

/// X-Frame-Options `DENY` or `SAMEORIGIN`, or a CSP `frame-ancestors` that names who may
/// frame the page (not `*`, not a whole scheme): another site cannot frame it.
pub(super) fn framed(page: &Page) -> bool {
    let xfo = page.header("x-frame-options").is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("deny") || v.eq_ignore_ascii_case("sameorigin")
    });
    let ancestors = csp(page)
        .and_then(|p| directive(&p, "frame-ancestors"))
        .is_some_and(|sources| {
            let sources: Vec<&str> = sources.split_whitespace().collect();
            !sources.is_empty()
                && !sources
                    .iter()
                    .any(|s| matches!(*s, "*" | "https:" | "http:"))
        });
    xfo || ancestors
}

/// Every CSP header, joined (browsers enforce them all).
pub(super) fn csp(page: &Page) -> Option<String> {
    let all: Vec<&str> = page.all("content-security-policy").collect();
    (!all.is_empty()).then(|| all.join("; "))
}

/// The sources of `name` in `policy`, lower case; None when the directive is absent.
pub(super) fn directive(policy: &str, name: &str) -> Option<String> {
    policy.split([';', ',']).find_map(|d| {
        let d = d.trim().to_ascii_lowercase();
        let (key, rest) = d
            .split_once(char::is_whitespace)
            .unwrap_or((d.as_str(), ""));
        (key == name).then(|| rest.trim().to_owned())
    })
}

/// `Strict-Transport-Security`'s `max-age`, when the header is there and valid.
pub(super) fn hsts_max_age(page: &Page) -> Option<u64> {
    page.header("strict-transport-security")?
        .split(';')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| v.trim().trim_matches('"').parse().ok())?
        })
}

pub(super) fn nosniff(page: &Page) -> bool {
    page.header("x-content-type-options")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("nosniff"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(headers: &[(&str, &str)]) -> Page {
        Page {
            url: String::new(),
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: String::new(),
        }
    }

    #[test]
    fn odoo_behind_a_good_nginx_scores_80_for_its_frame_only_csp() {
        let good = page(&[
            ("x-frame-options", "SAMEORIGIN"),
            ("content-security-policy", "frame-ancestors 'self'"),
            ("set-cookie", "session_id=x; HttpOnly; Path=/; Secure"),
            ("strict-transport-security", "max-age=63072000"),
            ("x-content-type-options", "nosniff"),
        ]);
        let (points, modifiers) = score(&good, true);
        assert_eq!(points, 80, "{modifiers:?}");
        let (points, _) = score(&good, false);
        assert_eq!(points, 60, "no HSTS without TLS");
    }

    #[test]
    fn every_modifier_of_domain_5() {
        let bare = page(&[("set-cookie", "session_id=x; HttpOnly")]);
        let (points, modifiers) = score(&bare, true);
        // -25 CSP, -20 HSTS, -20 framing, -5 nosniff, -40 cookie.
        assert_eq!(points, 0, "{modifiers:?}");
        let hsts_short = page(&[
            (
                "strict-transport-security",
                "max-age=86400; includeSubDomains",
            ),
            ("set-cookie", "session_id=x; HttpOnly"),
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-eval'",
            ),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
        ]);
        let (points, modifiers) = score(&hsts_short, true);
        // -10 short HSTS, -10 unsafe-eval, -10 cookie with HSTS.
        assert_eq!(points, 70, "{modifiers:?}");
        let inline = page(&[(
            "content-security-policy",
            "default-src 'self' 'unsafe-inline'",
        )]);
        assert!(
            score(&inline, true)
                .1
                .contains(&("CSP allows 'unsafe-inline'", -20))
        );
        let nonce = page(&[(
            "content-security-policy",
            "script-src 'self' 'unsafe-inline' 'nonce-abc'",
        )]);
        let lost = score(&nonce, true).1;
        assert!(
            !lost.iter().any(|(why, _)| why.starts_with("CSP")),
            "{lost:?}"
        );
        let off = page(&[
            ("strict-transport-security", "max-age=0"),
            ("set-cookie", "session_id=x; HttpOnly"),
        ]);
        let lost = score(&off, true).1;
        assert!(lost.contains(&("no valid HSTS", -20)), "{lost:?}");
        assert!(
            lost.contains(&("session cookie without Secure", -40)),
            "{lost:?}"
        );
    }

    #[test]
    fn only_framing_protection_that_protects_counts() {
        let framing = |k: &str, v: &str| framed(&page(&[(k, v)]));
        assert!(framing("x-frame-options", " sameorigin"));
        assert!(framing("x-frame-options", "DENY"));
        assert!(!framing("x-frame-options", "ALLOWALL"));
        assert!(framing("content-security-policy", "frame-ancestors 'none'"));
        assert!(framing(
            "content-security-policy",
            "frame-ancestors 'self' https://erp.example.cr"
        ));
        assert!(!framing("content-security-policy", "frame-ancestors *"));
        assert!(!framing(
            "content-security-policy",
            "frame-ancestors https:"
        ));
        assert!(!framing("content-security-policy", "frame-ancestors"));
    }

    #[test]
    fn directives_and_max_age_are_parsed_loosely_as_browsers_do() {
        assert_eq!(
            directive(
                "Default-Src 'self'; FRAME-ANCESTORS 'none'",
                "frame-ancestors"
            )
            .as_deref(),
            Some("'none'")
        );
        assert_eq!(directive("script-src 'self'", "frame-ancestors"), None);
        let p = page(&[(
            "strict-transport-security",
            "includeSubDomains; max-age=\"31536000\"",
        )]);
        assert_eq!(hsts_max_age(&p), Some(31_536_000));
        assert_eq!(
            hsts_max_age(&page(&[("strict-transport-security", "max-age=x")])),
            None
        );
    }
}
