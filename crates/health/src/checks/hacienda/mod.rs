//! `hacienda:<company id>`: can each company still talk to Hacienda's API, with the
//! credentials Odoo uses (`hacienda:config` with `[hacienda] username` and `password`)?
//! Before any request: the company's Hacienda environment and its username's `@stag.` /
//! `@prod.` against the environment this stack must use (a staging copy pointed at
//! production is critical). Then a probe that submits nothing (DOMAIN.md 4): a token, the
//! status of the newest submitted clave (else a well-formed unknown one: a clean 4xx
//! passes), logout. A refused login stops all logins for `backoff` (Hacienda locks accounts
//! that keep failing); a pass is reused for `cache-for`; both are kept in
//! `state-dir/hacienda.json`. The password and the tokens appear nowhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};
use vigia_core::config::{DEFAULT_IDP_URL, HaciendaConfig, HaciendaEnvironment, Secret};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};
use vigia_odoo::company_keys::company_keys;
use vigia_odoo::einvoice::newest_submitted_clave;

use self::api::Probe;
use self::state::{State, lock};
use super::{Pg, not_found, result, skipped, unknown, wanted, worst};
use crate::http::extra_roots;

mod api;
mod state;

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
}
