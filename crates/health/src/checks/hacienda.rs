//! `hacienda:<company id>`: can each company still talk to Hacienda's API, with the
//! credentials Odoo uses (`hacienda:config` with `[hacienda] username` and `password`)?
//! Before any request: the company's Hacienda environment and its username's `@stag.` /
//! `@prod.` against the environment this stack must use (a staging copy pointed at
//! production is critical). Then a probe that submits nothing (DOMAIN.md 4): a token, the
//! status of the newest submitted clave (else a well-formed unknown one: a clean 4xx
//! passes), logout. A refused login stops all logins for `backoff` (Hacienda locks accounts
//! that keep failing); a pass is reused for `cache-for`; both are kept in
//! `state-dir/hacienda.json`. The password and the tokens appear nowhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vigia_core::config::{DEFAULT_IDP_URL, HaciendaConfig, HaciendaEnvironment, Secret};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};
use vigia_odoo::company_keys::company_keys;
use vigia_odoo::einvoice::newest_submitted_clave;

use super::{Pg, result, skipped, unknown};
use crate::http::extra_roots;

pub(crate) const NAME: &str = "hacienda";
const NOT_INSTALLED: &str = "l10n_cr_einvoice not installed";
/// The check's own budget; each request gets most of it, so that a slow API is a warning
/// from the check, not the runner's critical timeout.
const BUDGET: Duration = Duration::from_secs(20);
const REQUEST: Duration = Duration::from_secs(15);
pub(crate) const STATE_FILE: &str = "hacienda.json";

pub(super) fn check(config: &Config, pg: &Arc<Pg>) -> Result<Arc<dyn Check>> {
    let hacienda = config.hacienda.clone();
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(file) = &config.health.ca_file {
        builder = builder.tls_certs_merge(extra_roots(file, "health.ca-file")?);
    }
    let client = builder
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
    Ok(Arc::new(Hacienda {
        pg: Arc::clone(pg),
        expected: expected(config),
        settings: hacienda,
        client,
        state_file: config.state_dir.join(STATE_FILE),
    }))
}

/// The environment this stack must use: `[hacienda] environment`, else production where
/// `production = true`, else sandbox in a named environment; the base alone: not judged.
fn expected(config: &Config) -> Option<HaciendaEnvironment> {
    if let Some(env) = config.hacienda.as_ref().and_then(|h| h.environment) {
        return Some(env);
    }
    if config.production {
        return Some(HaciendaEnvironment::Production);
    }
    config
        .environment
        .as_ref()
        .map(|_| HaciendaEnvironment::Sandbox)
}

struct Hacienda {
    pg: Arc<Pg>,
    expected: Option<HaciendaEnvironment>,
    settings: Option<HaciendaConfig>,
    client: reqwest::Client,
    state_file: PathBuf,
}

/// One set of credentials to probe.
struct Account {
    name: String,
    /// The company, for messages.
    who: String,
    /// The environment its settings say (the company's field, or the config's).
    env: Option<HaciendaEnvironment>,
    username: Option<String>,
    password: Option<Secret>,
    /// For the status query.
    company: Option<i32>,
}

#[async_trait]
impl Check for Hacienda {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let all = self.run_all().await;
        all.iter()
            .max_by_key(|r| r.status)
            .cloned()
            .unwrap_or_else(|| skipped(NAME, "no account"))
    }

    fn budget(&self) -> Option<Duration> {
        Some(BUDGET)
    }

    async fn run_all(&self) -> Vec<CheckResult> {
        let accounts = match self.accounts().await {
            Ok(accounts) => accounts,
            Err(done) => return vec![done],
        };
        let mut results = Vec::new();
        for account in accounts {
            results.push(self.probe(&account).await);
        }
        results
    }
}

impl Hacienda {
    /// `[hacienda] username` and `password`, else every company's own.
    async fn accounts(&self) -> std::result::Result<Vec<Account>, CheckResult> {
        if let Some(h) = self.settings.as_ref().filter(|h| h.username.is_some()) {
            let username = match h.username.clone().map(|u| {
                vigia_core::task::blocking("hacienda", move || u.resolve("hacienda.username"))
            }) {
                Some(u) => Some(
                    u.await
                        .map_err(|e| unknown(&format!("{NAME}:config"), &e))?,
                ),
                None => None,
            };
            let password = match h.password.clone() {
                Some(p) => Some(
                    vigia_core::task::blocking("hacienda", move || p.resolve("hacienda.password"))
                        .await
                        .map_err(|e| unknown(&format!("{NAME}:config"), &e))?,
                ),
                None => None,
            };
            return Ok(vec![Account {
                name: format!("{NAME}:config"),
                who: "[hacienda]".into(),
                env: h.environment.or(self.expected),
                username: username.map(|u| u.expose().to_owned()),
                password,
                company: None,
            }]);
        }
        let (_slot, client) = self.pg.session(NAME, CheckStatus::Unknown).await?;
        let companies = match company_keys(&client).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(skipped(NAME, NOT_INSTALLED)),
            Err(e) => return Err(unknown(NAME, &e)),
        };
        let accounts: Vec<Account> = companies
            .into_iter()
            .filter(|c| c.username.as_deref().is_some_and(|u| !u.is_empty()))
            .map(|c| Account {
                name: format!("{NAME}:{}", c.id),
                who: c.name,
                env: match c.hacienda_env.as_deref() {
                    Some("production") => Some(HaciendaEnvironment::Production),
                    Some("sandbox") => Some(HaciendaEnvironment::Sandbox),
                    _ => None,
                },
                username: c.username,
                password: c.password,
                company: Some(c.id),
            })
            .collect();
        if accounts.is_empty() {
            return Err(skipped(NAME, "no company has a Hacienda username"));
        }
        Ok(accounts)
    }

    /// What is wrong before a request is made: the environment, the username's kind, a
    /// missing password.
    fn before_any_request<'a>(
        &self,
        a: &'a Account,
    ) -> std::result::Result<(HaciendaEnvironment, &'a str, &'a Secret), String> {
        let Some(env) = a.env.or(self.expected) else {
            return Err("its Hacienda environment is neither sandbox nor production".into());
        };
        if let Some(expected) = self.expected.filter(|e| *e != env) {
            return Err(format!(
                "set to Hacienda's {} but this stack must use {} (a copy pointed at the wrong \
                 Hacienda?)",
                env.as_str(),
                expected.as_str()
            ));
        }
        let Some(username) = a.username.as_deref() else {
            return Err("no Hacienda username".into());
        };
        let other = match env {
            HaciendaEnvironment::Sandbox => HaciendaEnvironment::Production,
            HaciendaEnvironment::Production => HaciendaEnvironment::Sandbox,
        };
        if username.contains(other.user_marker()) {
            return Err(format!(
                "the username is a {} user ({}) but the environment is {}",
                other.as_str(),
                other.user_marker(),
                env.as_str()
            ));
        }
        let Some(password) = &a.password else {
            return Err("no Hacienda password".into());
        };
        Ok((env, username, password))
    }

    async fn probe(&self, a: &Account) -> CheckResult {
        let (env, username, password) = match self.before_any_request(a) {
            Ok(ready) => ready,
            Err(why) => {
                return result(
                    &a.name,
                    CheckStatus::Critical,
                    format!("{}: {why}", a.who),
                    json!({}),
                );
            }
        };
        let user_id = hex::encode(Sha256::digest(username.as_bytes()));
        let now = jiff::Timestamp::now();
        let backoff = self
            .settings
            .as_ref()
            .map_or(Duration::from_hours(1), |h| h.backoff.0);
        let cache_for = self
            .settings
            .as_ref()
            .map_or(Duration::from_mins(15), |h| h.cache_for.0);
        let mut state = State::load(&self.state_file);
        let remembered = state
            .accounts
            .get(&a.name)
            .filter(|s| s.user == user_id)
            .cloned();
        if let Some(refused) = remembered.as_ref().and_then(|s| s.refused_at) {
            let until = after(refused, backoff);
            if until > now {
                return result(
                    &a.name,
                    CheckStatus::Critical,
                    format!(
                        "{}: Hacienda refused the login at {}; no login until {} (backoff), or \
                         until the username changes",
                        a.who,
                        minute(refused),
                        minute(until)
                    ),
                    json!({ "refused_at": refused, "retry_after": until }),
                );
            }
        }
        if let Some(passed) = remembered.as_ref().and_then(|s| s.passed_at)
            && after(passed, cache_for) > now
        {
            return result(
                &a.name,
                CheckStatus::Ok,
                format!(
                    "{}: passed at {} (reused for {})",
                    a.who,
                    minute(passed),
                    human(cache_for)
                ),
                json!({ "passed_at": passed, "cached": true }),
            );
        }
        let clave = match a.company {
            Some(id) => self.newest_clave(id).await,
            None => None,
        };
        let outcome = self.talk(env, username, password, clave, now).await;
        let entry = state.accounts.entry(a.name.clone()).or_default();
        entry.user = user_id;
        match outcome.status {
            CheckStatus::Ok => {
                entry.passed_at = Some(now);
                entry.refused_at = None;
            }
            _ if outcome.refused => entry.refused_at = Some(now),
            _ => {}
        }
        state.save(&self.state_file);
        result(
            &a.name,
            outcome.status,
            format!("{}: {}", a.who, outcome.summary),
            outcome.evidence,
        )
    }

    async fn newest_clave(&self, company: i32) -> Option<String> {
        let (_slot, client) = self.pg.session(NAME, CheckStatus::Unknown).await.ok()?;
        newest_submitted_clave(&client, company)
            .await
            .ok()
            .flatten()
    }

    /// Token, status query, logout.
    async fn talk(
        &self,
        env: HaciendaEnvironment,
        username: &str,
        password: &Secret,
        clave: Option<String>,
        now: jiff::Timestamp,
    ) -> Outcome {
        let h = self.settings.as_ref();
        let idp = h
            .and_then(|h| h.idp_url.clone())
            .unwrap_or_else(|| DEFAULT_IDP_URL.into());
        let api = h
            .and_then(|h| h.api_url.clone())
            .unwrap_or_else(|| env.default_api_url().into());
        let (realm, client_id) = env.realm();
        let base = format!(
            "{}/realms/{realm}/protocol/openid-connect",
            idp.trim_end_matches('/')
        );
        let tokens = match self.token(&base, client_id, username, password).await {
            Ok(tokens) => tokens,
            Err(outcome) => return outcome,
        };
        let clave = clave.unwrap_or_else(|| unknown_clave(now));
        let query = self
            .client
            .get(format!("{}/{clave}", api.trim_end_matches('/')))
            .bearer_auth(&tokens.access_token)
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
        base: &str,
        client_id: &str,
        username: &str,
        password: &Secret,
    ) -> std::result::Result<Tokens, Outcome> {
        let form = [
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", username),
            ("password", password.expose()),
        ];
        let answer = self
            .client
            .post(format!("{base}/token"))
            .form(&form)
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
        serde_json::from_str::<Tokens>(&body)
            .ok()
            .filter(|_| status.is_success())
            .ok_or_else(|| Outcome::strange("the token request", status.as_u16(), &body))
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
    } else if code.is_client_error() && !refused {
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

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

struct Outcome {
    status: CheckStatus,
    /// The login was refused: the backoff starts.
    refused: bool,
    summary: String,
    evidence: Value,
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
    let date = now.strftime("%d%m%y");
    format!(
        "506{date}{:012}{:020}1{:08}",
        0, 100_001_010_000_000_001u64, 0
    )
}

/// `state-dir/hacienda.json`: per account, the username's hash (a new username clears
/// both), the last refused login and the last pass.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    accounts: BTreeMap<String, Remembered>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Remembered {
    user: String,
    refused_at: Option<jiff::Timestamp>,
    passed_at: Option<jiff::Timestamp>,
}

impl State {
    fn load(path: &std::path::Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &std::path::Path) {
        let written = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                vigia_core::disk::write_durably(path, &bytes)
            });
        if let Err(e) = written {
            tracing::warn!(
                "cannot write {}: {e}; the backoff is not remembered",
                path.display()
            );
        }
    }
}

/// `t + d`, saturating.
fn after(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

fn minute(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn human(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
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
