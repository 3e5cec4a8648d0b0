//! Phase timings for `vigia restore --json`, each phase announced to the progress port.

use std::time::Instant;

use serde::Serialize;
use vigia_core::ports::progress::{Progress, ProgressEvent};

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub duration_ms: u64,
}

pub(super) struct Phases<'p> {
    progress: &'p dyn Progress,
    done: Vec<Phase>,
    current: Option<(String, Instant)>,
}

impl<'p> Phases<'p> {
    pub(super) fn new(progress: &'p dyn Progress) -> Self {
        Self {
            progress,
            done: Vec::new(),
            current: None,
        }
    }

    pub(super) fn start(&mut self, name: &str) {
        self.close();
        self.progress.report(&ProgressEvent::PhaseStarted {
            phase: name.to_owned(),
            total_bytes: None,
        });
        self.current = Some((name.to_owned(), Instant::now()));
    }

    fn close(&mut self) {
        if let Some((name, started)) = self.current.take() {
            self.done.push(Phase {
                name,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
    }

    pub(super) fn finish(mut self) -> Vec<Phase> {
        self.close();
        self.done
    }
}
