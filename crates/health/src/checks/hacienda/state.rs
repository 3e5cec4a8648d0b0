//! `state-dir/hacienda.json` and its lock: a refused login is not retried within the
//! backoff, a pass is reused for a while, and one run at a time talks to Hacienda.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Error, Result};

use super::Account;
use crate::checks::result;

/// `state-dir/hacienda.json`: per set of credentials (a hash of the username, environment
/// and URLs), the last refused login and the last pass.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) accounts: BTreeMap<String, Remembered>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Remembered {
    pub(super) refused_at: Option<jiff::Timestamp>,
    pub(super) passed_at: Option<jiff::Timestamp>,
}

impl State {
    /// An absent file is an empty state; one that cannot be read is an error, never an
    /// empty state (that would forget a refused login).
    pub(super) fn load(path: &std::path::Path) -> std::result::Result<Self, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not vigia's ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub(super) fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
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
    pub(super) fn verdict(
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

/// One run at a time talks to Hacienda (the lock beside the state file).
pub(super) fn lock(path: &std::path::Path, wait: Duration) -> Result<std::fs::File> {
    vigia_core::disk::lock_exclusive(path, wait)?.ok_or_else(|| {
        Error::new(
            vigia_core::ErrorKind::Locked,
            "not probed: another health run has been probing Hacienda for too long",
        )
    })
}

/// `t + d`, saturating.
pub(super) fn after(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

pub(super) fn minute(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

pub(super) fn human(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}
