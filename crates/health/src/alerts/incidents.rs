//! Incidents per check, over separate runs: one opens after `failure-threshold` bad runs in a
//! row and resolves after `success-threshold` good ones; while open it escalates when it gets
//! worse and is announced again every `reminder`. Pure: the caller loads and saves the state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigia_core::config::{AlertOn, AlertingConfig};
use vigia_core::ports::check::{CheckResult, CheckStatus};

/// When a run counts as bad, and how incidents open, close and remind.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub alert_on: AlertOn,
    pub reminder: Duration,
}

impl Policy {
    pub fn from_config(a: &AlertingConfig) -> Self {
        Self {
            failure_threshold: a.failure_threshold,
            success_threshold: a.success_threshold,
            alert_on: a.alert_on,
            reminder: a.reminder.0,
        }
    }

    /// Unknown is always bad: a check that cannot tell is not a healthy one.
    fn is_bad(&self, status: CheckStatus) -> bool {
        match status {
            CheckStatus::Skipped | CheckStatus::Ok => false,
            CheckStatus::Warning => self.alert_on == AlertOn::Warning,
            CheckStatus::Unknown | CheckStatus::Critical => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Escalated,
    Reminded,
    Resolved,
}

impl EventKind {
    /// The name the JSON shows.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Reminded => "reminded",
            Self::Resolved => "resolved",
        }
    }
}

/// Something a run announces about one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub check: String,
    #[serde(rename = "event")]
    pub kind: EventKind,
    pub status: CheckStatus,
    pub summary: String,
    pub at: jiff::Timestamp,
}

/// `state-dir/alerts/<env>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertState {
    pub checks: BTreeMap<String, Track>,
    /// Per channel, events a failed send left to retry on the next run.
    pub outbox: BTreeMap<String, Vec<Event>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    pub bad_runs: u32,
    pub good_runs: u32,
    pub incident: Option<Incident>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The worst status seen since it opened.
    pub status: CheckStatus,
    pub opened: jiff::Timestamp,
    /// When it was last announced; None while it opened under a silence and has not been.
    pub announced: Option<jiff::Timestamp>,
}

/// At most this many undelivered events are kept per channel (the newest).
const OUTBOX_LIMIT: usize = 200;

impl AlertState {
    /// Counts this run's results and returns what to announce. Skipped checks, and checks
    /// this run did not include, keep their counts. `silenced`: the run announces nothing,
    /// so an incident it opens is announced by the first run after the silence that still
    /// finds it bad (and resolves without a word if it never was announced).
    pub fn observe(
        &mut self,
        results: &[CheckResult],
        policy: &Policy,
        now: jiff::Timestamp,
        silenced: bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for r in results.iter().filter(|r| r.status != CheckStatus::Skipped) {
            let track = self.checks.entry(r.name.clone()).or_default();
            let bad = policy.is_bad(r.status);
            if bad {
                track.bad_runs = track.bad_runs.saturating_add(1);
                track.good_runs = 0;
            } else {
                track.good_runs = track.good_runs.saturating_add(1);
                track.bad_runs = 0;
            }
            let announce = (!silenced).then_some(now);
            let mut event = |kind| {
                if !silenced {
                    events.push(Event {
                        check: r.name.clone(),
                        kind,
                        status: r.status,
                        summary: r.summary.clone(),
                        at: now,
                    });
                }
            };
            match &mut track.incident {
                None if bad && track.bad_runs >= policy.failure_threshold => {
                    track.incident = Some(Incident {
                        status: r.status,
                        opened: now,
                        announced: announce,
                    });
                    event(EventKind::Opened);
                }
                Some(incident) if bad && incident.announced.is_none() => {
                    incident.status = incident.status.max(r.status);
                    incident.announced = announce;
                    event(EventKind::Opened);
                }
                Some(incident) if bad && r.status > incident.status => {
                    incident.status = r.status;
                    incident.announced = announce.or(incident.announced);
                    event(EventKind::Escalated);
                }
                Some(incident)
                    if bad
                        && incident
                            .announced
                            .is_some_and(|at| elapsed(at, now) >= policy.reminder) =>
                {
                    incident.announced = announce.or(incident.announced);
                    event(EventKind::Reminded);
                }
                Some(incident) if !bad && track.good_runs >= policy.success_threshold => {
                    let announced = incident.announced.is_some();
                    track.incident = None;
                    if announced {
                        event(EventKind::Resolved);
                    }
                }
                _ => {}
            }
        }
        events
    }

    /// After a run of every check: forgets checks that no longer exist (renamed, or a
    /// filesystem no longer measured) and the outboxes of channels no longer configured.
    pub fn forget_except(&mut self, results: &[CheckResult], channels: &[String]) {
        self.checks
            .retain(|name, _| results.iter().any(|r| &r.name == name));
        self.outbox.retain(|channel, _| channels.contains(channel));
    }

    /// Queues events a channel failed to deliver, for the next run.
    pub fn keep_undelivered(&mut self, channel: &str, mut events: Vec<Event>) {
        if events.len() > OUTBOX_LIMIT {
            events.drain(..events.len() - OUTBOX_LIMIT);
        }
        if events.is_empty() {
            self.outbox.remove(channel);
        } else {
            self.outbox.insert(channel.to_owned(), events);
        }
    }
}

fn elapsed(since: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        failure_threshold: 3,
        success_threshold: 2,
        alert_on: AlertOn::Critical,
        reminder: Duration::from_hours(6),
    };

    fn run(state: &mut AlertState, status: CheckStatus, minutes: i64) -> Vec<(String, EventKind)> {
        let result = CheckResult {
            name: "odoo.public".into(),
            status,
            summary: "s".into(),
            evidence: serde_json::Value::Null,
            duration_ms: 1,
        };
        let now = jiff::Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap();
        state
            .observe(&[result], &POLICY, now, false)
            .into_iter()
            .map(|e| (e.check, e.kind))
            .collect()
    }

    fn kinds(events: &[(String, EventKind)]) -> Vec<EventKind> {
        events.iter().map(|e| e.1).collect()
    }

    #[test]
    fn an_incident_opens_after_three_bad_runs_and_resolves_after_two_good_ones() {
        use CheckStatus::{Critical, Ok, Skipped, Unknown};
        let mut s = AlertState::default();
        assert!(run(&mut s, Critical, 0).is_empty());
        assert!(run(&mut s, Unknown, 5).is_empty(), "unknown counts as bad");
        assert!(
            run(&mut s, Skipped, 7).is_empty(),
            "skipped counts as nothing"
        );
        assert_eq!(kinds(&run(&mut s, Critical, 10)), [EventKind::Opened]);
        assert!(run(&mut s, Critical, 15).is_empty(), "no mail on every run");
        assert!(run(&mut s, Ok, 20).is_empty());
        assert!(
            run(&mut s, Critical, 25).is_empty(),
            "a good run between resets"
        );
        assert!(run(&mut s, Ok, 30).is_empty());
        assert_eq!(kinds(&run(&mut s, Ok, 35)), [EventKind::Resolved]);
        assert!(run(&mut s, Ok, 40).is_empty());
        assert!(s.checks["odoo.public"].incident.is_none());
    }

    #[test]
    fn an_open_incident_escalates_and_reminds() {
        use CheckStatus::{Critical, Unknown, Warning};
        let policy = Policy {
            alert_on: AlertOn::Warning,
            ..POLICY
        };
        let mut s = AlertState::default();
        let at = |s: &mut AlertState, status, minutes: i64| {
            let result = CheckResult {
                name: "disk:/srv".into(),
                status,
                summary: String::new(),
                evidence: serde_json::Value::Null,
                duration_ms: 1,
            };
            let now = jiff::Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap();
            s.observe(&[result], &policy, now, false)
                .into_iter()
                .map(|e| e.kind)
                .collect::<Vec<_>>()
        };
        at(&mut s, Warning, 0);
        at(&mut s, Warning, 5);
        assert_eq!(at(&mut s, Warning, 10), [EventKind::Opened]);
        assert_eq!(at(&mut s, Unknown, 15), [EventKind::Escalated]);
        assert_eq!(at(&mut s, Critical, 20), [EventKind::Escalated]);
        assert!(
            at(&mut s, Warning, 25).is_empty(),
            "better, still bad: quiet"
        );
        assert!(at(&mut s, Critical, 6 * 60 + 19).is_empty());
        assert_eq!(at(&mut s, Critical, 6 * 60 + 20), [EventKind::Reminded]);
    }

    #[test]
    fn an_incident_opened_under_a_silence_is_announced_after_it() {
        let mut s = AlertState::default();
        let silent = |s: &mut AlertState, status, minutes: i64| {
            let result = CheckResult {
                name: "odoo.public".into(),
                status,
                summary: String::new(),
                evidence: serde_json::Value::Null,
                duration_ms: 1,
            };
            let now = jiff::Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap();
            s.observe(&[result], &POLICY, now, true)
        };
        for m in 0..4 {
            assert!(silent(&mut s, CheckStatus::Critical, m).is_empty());
        }
        assert_eq!(
            kinds(&run(&mut s, CheckStatus::Critical, 5)),
            [EventKind::Opened],
            "the first run after the silence"
        );
        assert!(run(&mut s, CheckStatus::Critical, 6).is_empty());
        // Opened and healed under a silence: nobody was told, so no resolution either.
        let mut s = AlertState::default();
        for m in 0..3 {
            silent(&mut s, CheckStatus::Critical, m);
        }
        silent(&mut s, CheckStatus::Ok, 3);
        assert!(run(&mut s, CheckStatus::Ok, 4).is_empty());
        assert!(s.checks["odoo.public"].incident.is_none());
    }

    #[test]
    fn checks_that_are_gone_and_channels_removed_are_forgotten() {
        let mut s = AlertState::default();
        run(&mut s, CheckStatus::Critical, 0);
        s.keep_undelivered("email", vec![]);
        s.outbox.insert("pager".into(), Vec::new());
        s.forget_except(&[], &["email".to_owned()]);
        assert!(s.checks.is_empty() && s.outbox.is_empty());
    }

    #[test]
    fn warnings_are_good_runs_when_alerting_on_critical() {
        let mut s = AlertState::default();
        for m in 0..5 {
            assert!(run(&mut s, CheckStatus::Warning, m).is_empty());
        }
    }

    #[test]
    fn the_outbox_keeps_the_newest_events() {
        let mut s = AlertState::default();
        let event = |i: i64| Event {
            check: format!("c{i}"),
            kind: EventKind::Opened,
            status: CheckStatus::Critical,
            summary: String::new(),
            at: jiff::Timestamp::from_second(i).unwrap(),
        };
        s.keep_undelivered("email", (0..250).map(event).collect());
        assert_eq!(s.outbox["email"].len(), OUTBOX_LIMIT);
        assert_eq!(s.outbox["email"][0].check, "c50");
        s.keep_undelivered("email", Vec::new());
        assert!(s.outbox.is_empty());
    }
}
