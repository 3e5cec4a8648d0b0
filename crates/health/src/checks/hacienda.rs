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

use super::{Pg, not_found, result, skipped, unknown, wanted, worst};
use crate::http::extra_roots;

pub(crate) const NAME: &str = "hacienda";
const NOT_INSTALLED: &str = "l10n_cr_einvoice not installed";
/// The check's own budget; each request gets most of it, so that a slow API is a warning
/// from the check, not the runner's critical timeout.
const BUDGET: Duration = Duration::from_secs(20);
const REQUEST: Duration = Duration::from_secs(15);
/// How long a run waits for an overlapping one's probe.
const LOCK_WAIT: Duration = Duration::from_secs(15);
pub(crate) const STATE_FILE: &str = "hacienda.json";

pub(super) fn check(config: &Config, pg: &Arc<Pg>) -> Result<Arc<dyn Check>> {
    let hacienda = config.hacienda.clone();
    // https only: the password and the tokens never cross a network in clear.
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST)
        .https_only(true)
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
    /// The environment its settings say (the company's field, or the config's), or the
    /// value that is neither.
    env: std::result::Result<HaciendaEnvironment, String>,
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
        worst(NAME, self.run_all(&[]).await)
    }

    /// A little more than the probes' own deadline, so that they end first.
    fn budget(&self) -> Option<Duration> {
        Some(BUDGET + Duration::from_secs(3))
    }

    async fn run_all(&self, items: &[String]) -> Vec<CheckResult> {
        let deadline = tokio::time::Instant::now() + BUDGET;
        let accounts = match self.accounts().await {
            Ok(accounts) => accounts,
            Err(done) => return vec![done],
        };
        // One run at a time talks to Hacienda: an overlapping run waits and then finds the
        // pass (or the refusal) this one recorded, instead of logging in again.
        let lock_path = self.state_file.with_extension("lock");
        let wait = LOCK_WAIT;
        let lock = vigia_core::task::blocking("hacienda", move || lock(&lock_path, wait)).await;
        let _lock = match lock {
            Ok(lock) => lock,
            Err(e) => return vec![result(NAME, CheckStatus::Warning, e.message(), json!({}))],
        };
        let mut results = Vec::new();
        for account in accounts {
            let item = account
                .name
                .trim_start_matches(NAME)
                .trim_start_matches(':');
            if !wanted(items, item) {
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left < Duration::from_secs(1) {
                results.push(result(
                    &account.name,
                    CheckStatus::Warning,
                    format!(
                        "{}: not probed within the {} s budget",
                        account.who,
                        BUDGET.as_secs()
                    ),
                    json!({}),
                ));
                continue;
            }
            results.push(self.probe(&account, left.min(REQUEST)).await);
        }
        results.extend(not_found(NAME, items, &results));
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
                env: Ok(h
                    .environment
                    .or(self.expected)
                    .unwrap_or(HaciendaEnvironment::Sandbox)),
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
            .map(|c| Account {
                name: format!("{NAME}:{}", c.id),
                who: c.name,
                // Unset is the module's default, sandbox.
                env: match c.hacienda_env.as_deref() {
                    None | Some("sandbox") => Ok(HaciendaEnvironment::Sandbox),
                    Some("production") => Ok(HaciendaEnvironment::Production),
                    Some(other) => Err(other.to_owned()),
                },
                username: c.username,
                password: c.password,
                company: Some(c.id),
            })
            .collect();
        if accounts.is_empty() {
            return Err(skipped(
                NAME,
                "no company has the e-invoicing module configured",
            ));
        }
        Ok(accounts)
    }

    /// What is wrong before a request is made: the environment, the username's kind, a
    /// missing password.
    fn before_any_request<'a>(
        &self,
        a: &'a Account,
    ) -> std::result::Result<(HaciendaEnvironment, &'a str, &'a Secret), String> {
        let env = match &a.env {
            Ok(env) => *env,
            Err(other) => {
                return Err(format!(
                    "its Hacienda environment is `{other}`, neither sandbox nor production"
                ));
            }
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
        if username.to_ascii_lowercase().contains(other.user_marker()) {
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

    async fn probe(&self, a: &Account, timeout: Duration) -> CheckResult {
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
        // The backoff and the cache belong to these credentials at this Hacienda, whichever
        // result shows them: a new username (or URL, or environment) starts afresh.
        let (idp, api) = self.urls(env);
        let key = hex::encode(Sha256::digest(
            format!("{username}\n{}\n{idp}\n{api}", env.as_str()).as_bytes(),
        ));
        let now = jiff::Timestamp::now();
        let (backoff, cache_for) = self
            .settings
            .as_ref()
            .map_or((Duration::from_hours(1), Duration::from_mins(15)), |h| {
                (h.backoff.0, h.cache_for.0)
            });
        let mut state = match State::load(&self.state_file) {
            Ok(state) => state,
            Err(why) => {
                return result(
                    &a.name,
                    CheckStatus::Warning,
                    format!(
                        "{}: not probed: {why}; remove the file to probe again (a refused login \
                         it held would then be retried)",
                        a.who
                    ),
                    json!({}),
                );
            }
        };
        let remembered = state.accounts.get(&key).cloned().unwrap_or_default();
        if let Some(known) = remembered.verdict(a, now, backoff, cache_for) {
            return known;
        }
        let clave = match a.company {
            Some(id) => self.newest_clave(id).await,
            None => None,
        };
        let probe = Probe {
            env,
            idp: &idp,
            api: &api,
            username,
            password,
            clave,
            timeout,
        };
        let outcome = self.talk(&probe, now).await;
        let entry = state.accounts.entry(key).or_default();
        match outcome.status {
            CheckStatus::Ok => {
                entry.passed_at = Some(now);
                entry.refused_at = None;
            }
            _ if outcome.refused => entry.refused_at = Some(now),
            _ => {}
        }
        let mut summary = format!("{}: {}", a.who, outcome.summary);
        if let Err(e) = state.save(&self.state_file) {
            summary = format!(
                "{summary} (and {} could not be written: {e}, so the next run may log in again)",
                self.state_file.display()
            );
        }
        result(&a.name, outcome.status, summary, outcome.evidence)
    }

    /// The IdP's base and the reception API for `env`.
    fn urls(&self, env: HaciendaEnvironment) -> (String, String) {
        let h = self.settings.as_ref();
        let idp = h
            .and_then(|h| h.idp_url.clone())
            .unwrap_or_else(|| DEFAULT_IDP_URL.into());
        let api = h
            .and_then(|h| h.api_url.clone())
            .unwrap_or_else(|| env.default_api_url().into());
        (idp, api)
    }

    async fn newest_clave(&self, company: i32) -> Option<String> {
        let (_slot, client) = self.pg.session(NAME, CheckStatus::Unknown).await.ok()?;
        newest_submitted_clave(&client, company)
            .await
            .ok()
            .flatten()
    }

    /// Token, status query, logout.
    async fn talk(&self, p: &Probe<'_>, now: jiff::Timestamp) -> Outcome {
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
struct Probe<'a> {
    env: HaciendaEnvironment,
    idp: &'a str,
    api: &'a str,
    username: &'a str,
    password: &'a Secret,
    clave: Option<String>,
    /// Each request's limit: what is left of the budget, at most 15 s.
    timeout: Duration,
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
    let date = now.in_tz("America/Costa_Rica").map_or_else(
        |_| now.strftime("%d%m%y").to_string(),
        |z| z.strftime("%d%m%y").to_string(),
    );
    format!(
        "506{date}{:012}{:020}1{:08}",
        0, 100_001_010_000_000_001u64, 0
    )
}

/// `state-dir/hacienda.json`: per set of credentials (a hash of the username, environment
/// and URLs), the last refused login and the last pass.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    accounts: BTreeMap<String, Remembered>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Remembered {
    refused_at: Option<jiff::Timestamp>,
    passed_at: Option<jiff::Timestamp>,
}

impl State {
    /// An absent file is an empty state; one that cannot be read is an error, never an
    /// empty state (that would forget a refused login).
    fn load(path: &std::path::Path) -> std::result::Result<Self, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not vigia's ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        vigia_core::disk::write_durably(path, &bytes)
    }
}

impl Remembered {
    /// A refused login still in its backoff, or a pass still fresh: the answer without a
    /// request.
    fn verdict(
        &self,
        a: &Account,
        now: jiff::Timestamp,
        backoff: Duration,
        cache_for: Duration,
    ) -> Option<CheckResult> {
        // A time later than now was not written by a run of this machine: ignored.
        let seen =
            |t: Option<jiff::Timestamp>| t.filter(|t| *t <= after(now, Duration::from_mins(1)));
        if let Some(refused) = seen(self.refused_at) {
            let until = after(refused, backoff);
            if until > now {
                return Some(result(
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
                ));
            }
        }
        if let Some(passed) = seen(self.passed_at)
            && after(passed, cache_for) > now
        {
            return Some(result(
                &a.name,
                CheckStatus::Ok,
                format!(
                    "{}: passed at {} (reused for {})",
                    a.who,
                    minute(passed),
                    human(cache_for)
                ),
                json!({ "passed_at": passed, "cached": true }),
            ));
        }
        None
    }
}

/// An exclusive lock on `path` (never a followed link), waited for up to `wait`.
fn lock(path: &std::path::Path, wait: Duration) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::new(
                    vigia_core::ErrorKind::Locked,
                    "not probed: another health run has been probing Hacienda for too long",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
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
