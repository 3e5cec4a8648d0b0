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

use serde::{Deserialize, Serialize};
use vigia_core::config::HumanDuration;
use vigia_core::ports::check::CheckResult;
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
}

/// The channels and the policy of `[alerting]`, for one environment.
pub struct Alerting {
    silence: SilenceFile,
    policy: Policy,
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
            policy: Policy::from_config(a),
            channels,
            dir: silence::alerts_dir(config),
            env: silence::env_label(config)?.to_owned(),
        })
    }

    /// Counts this run's results into the incidents and sends what changed, unless silenced.
    pub async fn notify(
        &self,
        results: Vec<CheckResult>,
    ) -> Result<(Vec<AlertSent>, Option<Silence>)> {
        let (silence, dir, env, policy) = (
            self.silence.clone(),
            self.dir.clone(),
            self.env.clone(),
            self.policy,
        );
        let (mut locked, events, silenced) = vigia_core::task::blocking("alert state", move || {
            let silenced = silence.current()?;
            let mut locked = state_file::Locked::open(&dir, &env)?;
            let events = locked
                .state
                .observe(&results, &policy, jiff::Timestamp::now());
            Ok((locked, events, silenced))
        })
        .await?;
        if silenced.is_some() {
            let sent = events
                .iter()
                .map(|e| AlertSent {
                    check: e.check.clone(),
                    event: e.kind,
                    channels: Vec::new(),
                })
                .collect();
            save(locked).await?;
            return Ok((sent, silenced));
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
            let channel = Arc::clone(channel);
            async move {
                let result = if batch.is_empty() {
                    Ok(())
                } else {
                    channel.send(&alert).await
                };
                (channel.channel().to_owned(), batch, result)
            }
        });
        let results = futures::future::join_all(sends).await;
        let mut sent: Vec<(Event, Vec<ChannelResult>)> = Vec::new();
        for (channel, batch, result) in results {
            if let Err(e) = &result {
                tracing::warn!("alert channel {channel}: {e}; retried on the next run");
            }
            for event in &batch {
                let outcome = ChannelResult {
                    channel: channel.clone(),
                    ok: result.is_ok(),
                    error: result.as_ref().err().map(ToString::to_string),
                };
                match sent.iter_mut().find(|(e, _)| e == event) {
                    Some((_, channels)) => channels.push(outcome),
                    None => sent.push((event.clone(), vec![outcome])),
                }
            }
            let undelivered = if result.is_ok() { Vec::new() } else { batch };
            locked.state.keep_undelivered(&channel, undelivered);
        }
        save(locked).await?;
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
        let sends = self.channels.iter().map(|c| {
            let alert = alert.clone();
            async move {
                let result = c.send(&alert).await;
                ChannelResult {
                    channel: c.channel().to_owned(),
                    ok: result.is_ok(),
                    error: result.err().map(|e| e.to_string()),
                }
            }
        });
        let channels = futures::future::join_all(sends).await;
        Ok(AlertTest { channels })
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

/// A refused send fails the command (network), with every channel's answer kept.
impl vigia_core::Outcome for AlertTest {
    fn failure(&self) -> Option<Error> {
        let failed: Vec<String> = self
            .channels
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.channel)))
            .collect();
        (!failed.is_empty()).then(|| Error::new(ErrorKind::Network, failed.join("; ")))
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
    if request.length.0.is_zero() {
        return Err(Error::invalid_input("a silence must last more than 0 s"));
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
    let in_force = file.current()?.is_some();
    file.clear()?;
    Ok(Unsilenced { ended: in_force })
}
