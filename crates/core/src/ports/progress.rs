//! `Progress`: how long work reports what it is doing. The CLI draws bars (or logs lines when
//! not on a terminal); the FFI forwards events as JSON to a callback.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A phase begins; `total_bytes` when its size is known.
    PhaseStarted {
        phase: String,
        total_bytes: Option<u64>,
    },
    /// `bytes` more done in the current phase.
    Advanced {
        phase: String,
        bytes: u64,
    },
    PhaseFinished {
        phase: String,
    },
    /// A line for the operator.
    Message {
        text: String,
    },
}

pub trait Progress: Send + Sync {
    fn report(&self, event: &ProgressEvent);
}

/// Reports nothing (tests, `--no-progress` with `--quiet`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _: &ProgressEvent) {}
}
