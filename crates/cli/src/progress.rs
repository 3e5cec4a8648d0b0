//! Progress for people: one log line per phase on stderr (never on stdout, which `--json`
//! keeps for the envelope).

use vigia_core::ports::progress::{Progress, ProgressEvent};

#[derive(Debug, Clone, Copy, Default)]
pub struct LogProgress;

impl Progress for LogProgress {
    fn report(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::PhaseStarted { phase, .. } => tracing::info!("{phase}..."),
            ProgressEvent::Message { text } => tracing::info!("{text}"),
            ProgressEvent::Advanced { .. } | ProgressEvent::PhaseFinished { .. } => {}
        }
    }
}
