//! Alerts (`vigia health --alert`, `vigia alert test|silence|unsilence`): per-check incidents
//! over separate runs, one message per channel per run, retried on the next run when a send
//! fails, and nothing sent while a silence is in force.

mod email;
mod incidents;
mod message;
mod state_file;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigia_core::config::HumanDuration;
use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::ports::notifier::{Alert, Notifier};
use vigia_core::{Config, Error, ErrorKind, Result};
pub use vigia_runtime::silence::Silence;
use vigia_runtime::silence::{self, SilenceFile};

use self::incidents::{Event, EventKind, Policy};

/// One event of a run and what each channel did with it (`alerts` in the health JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSent {
    pub check: String,
    pub event: EventKind,
    pub channels: Vec<ChannelResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelResult {
    pub channel: String,
    pub ok: bool,
    pub error: Option<String>,
    /// What kind of failure: a config problem (a secret that cannot be resolved) is not a
    /// refused send.
    #[serde(skip)]
    pub kind: Option<ErrorKind>,
}

impl ChannelResult {
    fn sent(channel: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            ok: true,
            error: None,
            kind: None,
        }
    }
}

/// The channels and the policy of `[alerting]`, for one environment.
pub struct Alerting {
    silence: SilenceFile,
    policy: Policy,
    /// Each send's budget (`[health] timeout`).
    timeout: Duration,
    channels: Vec<Arc<dyn Notifier>>,
    dir: PathBuf,
    env: String,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channels: Vec<&str> = self.channels.iter().map(|c| c.channel()).collect();
        f.debug_struct("Alerting")
            .field("channels", &channels)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl Alerting {
    /// `[alerting]` with at least one channel, else a config error.
    pub fn from_config(config: &Config) -> Result<Self> {
        let a = config.alerting.as_ref().ok_or_else(|| {
            Error::config(
                "alerts need an [alerting] section with email-to (and email-from, smtp-url) or \
                 webhook-url",
            )
            .with_key("alerting")
        })?;
        let timeout = config.health.timeout.0;
        let mut channels: Vec<Arc<dyn Notifier>> = Vec::new();
        if let Some(email) = email::Email::from_config(a, timeout)? {
            channels.push(Arc::new(email));
        }
        if let Some(webhook) = webhook::Webhook::from_config(a, timeout)? {
            channels.push(Arc::new(webhook));
        }
        Self::new(config, channels)
    }

    /// With these channels (the tests' recording notifier) and `[alerting]`'s policy.
    pub fn new(config: &Config, channels: Vec<Arc<dyn Notifier>>) -> Result<Self> {
        let a = config.alerting.as_ref().ok_or_else(|| {
            Error::config("alerts need an [alerting] section").with_key("alerting")
        })?;
        if channels.is_empty() {
            return Err(Error::config(
                "[alerting] names no channel: set email-to (with email-from and smtp-url) or \
                 webhook-url",
            )
            .with_key("alerting"));
        }
        Ok(Self {
            silence: SilenceFile::from_config(config)?,
            timeout: config.health.timeout.0,
            policy: Policy::from_config(a),
            channels,
            dir: silence::alerts_dir(config),
            env: silence::env_label(config)?.to_owned(),
        })
    }

    /// Counts this run's results into the incidents and sends what changed, unless silenced.
    /// `partial` (`--only`): checks this run did not include are kept as they are; a full
    /// run forgets checks that no longer exist.
    pub async fn notify(
        &self,
        results: Vec<CheckResult>,
        partial: bool,
    ) -> Result<(Vec<AlertSent>, Option<Silence>)> {
        let (silence, dir, env, policy) = (
            self.silence.clone(),
            self.dir.clone(),
            self.env.clone(),
            self.policy,
        );
        let channels: Vec<String> = self
            .channels
            .iter()
            .map(|c| c.channel().to_owned())
            .collect();
        let (mut locked, events, silenced) = vigia_core::task::blocking("alert state", move || {
            let silenced = silence.current();
            let mut locked = state_file::Locked::open(&dir, &env)?;
            let state = &mut locked.state;
            let events = state.observe(
                &results,
                &policy,
                jiff::Timestamp::now(),
                silenced.is_some(),
            );
            if !partial {
                state.forget_except(&results, &channels);
            }
            Ok((locked, events, silenced))
        })
        .await?;
        if silenced.is_some() {
            save(locked).await?;
            return Ok((Vec::new(), silenced));
        }
        let host = vigia_core::process::hostname();
        let sends = self.channels.iter().map(|channel| {
            let mut batch = locked
                .state
                .outbox
                .get(channel.channel())
                .cloned()
                .unwrap_or_default();
            batch.extend(events.iter().cloned());
            let alert = message::compose(&self.env, &host, &batch);
            async move {
                let result = if batch.is_empty() {
                    ChannelResult::sent(channel.channel())
                } else {
                    self.send(channel.as_ref(), &alert).await
                };
                (batch, result)
            }
        });
        let results = futures::future::join_all(sends).await;
        let mut sent: Vec<(Event, Vec<ChannelResult>)> = Vec::new();
        for (batch, result) in results {
            if let Some(e) = &result.error {
                tracing::warn!(
                    "alert channel {}: {e}; retried on the next run",
                    result.channel
                );
            }
            for event in &batch {
                match sent.iter_mut().find(|(e, _)| e == event) {
                    Some((_, channels)) => channels.push(result.clone()),
                    None => sent.push((event.clone(), vec![result.clone()])),
                }
            }
            let undelivered = if result.ok { Vec::new() } else { batch };
            locked.state.keep_undelivered(&result.channel, undelivered);
        }
        if let Err(e) = save(locked).await {
            tracing::warn!("the alerts were sent, but the next run sends them again: {e}");
            return Err(e);
        }
        let sent = sent
            .into_iter()
            .map(|(e, channels)| AlertSent {
                check: e.check,
                event: e.kind,
                channels,
            })
            .collect();
        Ok((sent, None))
    }

    /// Sends a test message on every channel (`vigia alert test`).
    pub async fn test(&self) -> Result<AlertTest> {
        let alert: Alert = message::test_message(&self.env, &vigia_core::process::hostname());
        let sends = self.channels.iter().map(|c| self.send(c.as_ref(), &alert));
        let channels = futures::future::join_all(sends).await;
        Ok(AlertTest { channels })
    }

    /// Sends one message now on every channel (a deploy's outcome): not an incident of a
    /// check, so no silence holds it back (the one a deploy sets is for the checks it takes
    /// down) and a failed send is not retried. The subject is prefixed with the environment.
    pub async fn announce(
        &self,
        status: CheckStatus,
        subject: &str,
        body: &str,
    ) -> Vec<ChannelResult> {
        let alert = Alert {
            status,
            subject: format!("[vigia {}] {subject}", self.env),
            body: body.to_owned(),
        };
        let sends = self.channels.iter().map(|c| self.send(c.as_ref(), &alert));
        futures::future::join_all(sends).await
    }

    /// One send, within the budget: a server that accepts and never answers is a failed
    /// send, not a run that hangs holding the alert state.
    async fn send(&self, channel: &dyn Notifier, alert: &Alert) -> ChannelResult {
        let result = match tokio::time::timeout(self.timeout, channel.send(alert)).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Network,
                format!("no answer within {} s", self.timeout.as_secs_f64()),
            )),
        };
        match result {
            Ok(()) => ChannelResult::sent(channel.channel()),
            Err(e) => ChannelResult {
                channel: channel.channel().to_owned(),
                ok: false,
                error: Some(e.to_string()),
                kind: Some(e.kind()),
            },
        }
    }
}

async fn save(locked: state_file::Locked) -> Result<()> {
    vigia_core::task::blocking("alert state", move || locked.save()).await
}

/// What `vigia alert test` answers.
#[derive(Debug, Clone, Serialize)]
pub struct AlertTest {
    pub channels: Vec<ChannelResult>,
}

/// A refused send fails the command (network), a channel that cannot be set up (a secret
/// that cannot be resolved) is a config error; every channel's answer is kept.
impl vigia_core::Outcome for AlertTest {
    fn failure(&self) -> Option<Error> {
        let failed: Vec<String> = self
            .channels
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.channel)))
            .collect();
        let config = self
            .channels
            .iter()
            .any(|c| c.kind == Some(ErrorKind::Config));
        let kind = if config {
            ErrorKind::Config
        } else {
            ErrorKind::Network
        };
        (!failed.is_empty()).then(|| Error::new(kind, failed.join("; ")))
    }
}

/// `vigia alert silence --for DUR --reason TEXT`; the C ABI's `{"for": "2h", "reason": ..}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    #[serde(rename = "for")]
    pub length: HumanDuration,
    pub reason: String,
}

/// Silences this environment's alerts; `by` is the user and host that asked.
pub fn silence(config: &Config, request: &SilenceRequest) -> Result<Silence> {
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid_input(
            "a silence needs a reason (--reason TEXT): the next person on call reads it",
        ));
    }
    if request.length.0.is_zero() || request.length.0 > silence::LONGEST {
        return Err(Error::invalid_input(format!(
            "a silence lasts more than 0 s and at most {} days",
            silence::LONGEST.as_secs() / 86_400
        )));
    }
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let by = format!("{user}@{}", vigia_core::process::hostname());
    SilenceFile::from_config(config)?.set(request.length.0, reason, &by)
}

/// What `vigia alert unsilence` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Unsilenced {
    /// False when no silence was in force.
    pub ended: bool,
}

impl vigia_core::Outcome for Unsilenced {}

pub fn unsilence(config: &Config) -> Result<Unsilenced> {
    let file = SilenceFile::from_config(config)?;
    let in_force = file.current().is_some();
    file.clear()?;
    Ok(Unsilenced { ended: in_force })
}
