//! Hacienda's API as the probe uses it: a token, a status query, logout; and what each
//! answer means.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use vigia_core::config::{HaciendaEnvironment, Secret};
use vigia_core::ports::check::CheckStatus;

use super::{Hacienda, REQUEST};

impl Hacienda {
    /// Token, status query, logout.
    pub(super) async fn talk(&self, p: &Probe<'_>, now: jiff::Timestamp) -> Outcome {
        let (realm, client_id) = p.env.realm();
        let base = format!(
            "{}/realms/{realm}/protocol/openid-connect",
            p.idp.trim_end_matches('/')
        );
        let tokens = match self.token(p, &base, client_id).await {
            Ok(tokens) => tokens,
            Err(outcome) => return outcome,
        };
        // A clave from the database goes into the URL only if it is one.
        let clave = p
            .clave
            .clone()
            .filter(|c| c.len() == 50 && c.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| unknown_clave(now));
        let query = self
            .client
            .get(format!("{}/{clave}", p.api.trim_end_matches('/')))
            .bearer_auth(&tokens.access_token)
            .timeout(p.timeout)
            .send()
            .await;
        let logout = [
            ("client_id", client_id),
            ("refresh_token", tokens.refresh_token.as_str()),
        ];
        let logged_out = self
            .client
            .post(format!("{base}/logout"))
            .form(&logout)
            .timeout(p.timeout)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        match query {
            Ok(answer) => judge_status_query(answer, logged_out).await,
            Err(e) => Outcome::unreachable("the status query", e),
        }
    }

    async fn token(
        &self,
        p: &Probe<'_>,
        base: &str,
        client_id: &str,
    ) -> std::result::Result<Tokens, Outcome> {
        let form = [
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", p.username),
            ("password", p.password.expose()),
        ];
        let answer = self
            .client
            .post(format!("{base}/token"))
            .form(&form)
            .timeout(p.timeout)
            .send()
            .await
            .map_err(|e| Outcome::unreachable("the token request", e))?;
        let status = answer.status();
        if matches!(status.as_u16(), 400 | 401) {
            return Err(Outcome {
                status: CheckStatus::Critical,
                refused: true,
                summary: format!(
                    "Hacienda refused the login (HTTP {}): check the username and password; no \
                     login for the backoff",
                    status.as_u16()
                ),
                evidence: json!({ "token_status": status.as_u16() }),
            });
        }
        let body = answer.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Outcome::strange(
                "the token request",
                status.as_u16(),
                &body,
            ));
        }
        // A 2xx body may hold a token: never shown.
        serde_json::from_str::<Tokens>(&body).map_err(|_| Outcome {
            status: CheckStatus::Warning,
            refused: false,
            summary: format!(
                "the token request answered HTTP {} without the expected tokens",
                status.as_u16()
            ),
            evidence: json!({ "token_status": status.as_u16() }),
        })
    }
}

/// A status, or a clean 4xx for a clave it never got, passes; the clock is compared with
/// the answer's Date.
async fn judge_status_query(answer: reqwest::Response, logged_out: bool) -> Outcome {
    let code = answer.status();
    let skew = answer
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|d| jiff::Timestamp::try_from(d).ok())
        .map(|d| (d.as_second() - jiff::Timestamp::now().as_second()).abs());
    let html = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("html"));
    let cause = answer
        .headers()
        .get("x-error-cause")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = answer.text().await.unwrap_or_default();
    let estado = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
        v.get("ind-estado")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let evidence = json!({
        "status_code": code.as_u16(),
        "ind_estado": estado,
        "error_cause": cause,
        "clock_skew_s": skew,
        "logged_out": logged_out,
    });
    let refused = matches!(code.as_u16(), 401 | 403);
    let (mut status, mut summary) = if code.is_success() && estado.is_some() {
        (
            CheckStatus::Ok,
            format!(
                "token, status query ({}) and logout",
                estado.as_deref().unwrap_or("")
            ),
        )
    } else if code.is_client_error() && !refused && !html {
        (
            CheckStatus::Ok,
            format!(
                "token, a clean {} to the status query, logout",
                code.as_u16()
            ),
        )
    } else if refused {
        (
            CheckStatus::Critical,
            format!("the API refused the token (HTTP {})", code.as_u16()),
        )
    } else {
        let strange = Outcome::strange("the status query", code.as_u16(), &body);
        (strange.status, strange.summary)
    };
    if let Some(skew) = skew.filter(|s| *s > 60) {
        let level = if skew > 300 {
            CheckStatus::Critical
        } else {
            CheckStatus::Warning
        };
        status = status.max(level);
        summary = format!(
            "{summary}; this machine's clock is {skew} s off Hacienda's (signatures carry the time)"
        );
    }
    Outcome {
        status,
        refused: false,
        summary,
        evidence,
    }
}

/// What one probe needs.
pub(super) struct Probe<'a> {
    pub(super) env: HaciendaEnvironment,
    pub(super) idp: &'a str,
    pub(super) api: &'a str,
    pub(super) username: &'a str,
    pub(super) password: &'a Secret,
    pub(super) clave: Option<String>,
    /// Each request's limit: what is left of the budget, at most 15 s.
    pub(super) timeout: Duration,
}

#[derive(Deserialize)]
pub(super) struct Tokens {
    pub(super) access_token: String,
    pub(super) refresh_token: String,
}

pub(super) struct Outcome {
    pub(super) status: CheckStatus,
    /// The login was refused: the backoff starts.
    pub(super) refused: bool,
    pub(super) summary: String,
    pub(super) evidence: Value,
}

impl Outcome {
    /// No answer in time, or none at all: Hacienda's side, a warning.
    fn unreachable(what: &str, e: reqwest::Error) -> Self {
        let why = if e.is_timeout() {
            format!("no answer within {} s", REQUEST.as_secs())
        } else {
            vigia_core::error_chain(&e.without_url())
        };
        Self {
            status: CheckStatus::Warning,
            refused: false,
            summary: format!("{what} got no answer: {why}"),
            evidence: json!({}),
        }
    }

    /// A 5xx, HTML where JSON was due: a warning with the status and the first 200 bytes.
    fn strange(what: &str, status: u16, body: &str) -> Self {
        let start: String = body.chars().take(200).collect();
        Self {
            status: CheckStatus::Warning,
            refused: false,
            summary: format!(
                "{what} answered HTTP {status}: {}",
                start.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            evidence: json!({ "status_code": status }),
        }
    }
}

/// A well-formed clave no one issued: 506, today, issuer 0, consecutive 1, normal situation,
/// security code 0 (50 digits).
fn unknown_clave(now: jiff::Timestamp) -> String {
    let date = now.in_tz("America/Costa_Rica").map_or_else(
        |_| now.strftime("%d%m%y").to_string(),
        |z| z.strftime("%d%m%y").to_string(),
    );
    format!(
        "506{date}{:012}{:020}1{:08}",
        0, 100_001_010_000_000_001u64, 0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_clave_is_well_formed() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let clave = unknown_clave(now);
        assert_eq!(clave.len(), 50, "{clave}");
        assert!(clave.bytes().all(|b| b.is_ascii_digit()));
        assert!(clave.starts_with("506150127"), "{clave}");
    }
}
