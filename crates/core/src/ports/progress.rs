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

/// A reader that reports the bytes read through it as `Advanced` events for `phase`, in steps
/// of at least 1 MiB (and the rest at the end), so that progress costs nothing per read.
pub struct ProgressReader<R> {
    inner: R,
    progress: std::sync::Arc<dyn Progress>,
    phase: String,
    pending: u64,
}

const REPORT_STEP: u64 = 1024 * 1024;

impl<R> std::fmt::Debug for ProgressReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<R> ProgressReader<R> {
    pub fn new(inner: R, progress: std::sync::Arc<dyn Progress>, phase: &str) -> Self {
        Self {
            inner,
            progress,
            phase: phase.to_owned(),
            pending: 0,
        }
    }

    fn flush(&mut self) {
        if self.pending > 0 {
            self.progress.report(&ProgressEvent::Advanced {
                phase: self.phase.clone(),
                bytes: self.pending,
            });
            self.pending = 0;
        }
    }
}

impl<R: std::io::Read> std::io::Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= REPORT_STEP || (n == 0 && !buf.is_empty()) {
            self.flush();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<ProgressEvent>>);

    impl Progress for Recorded {
        fn report(&self, event: &ProgressEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn reports_in_steps_and_the_rest_at_the_end() {
        let recorded = Arc::new(Recorded::default());
        let data = vec![7u8; 2 * 1024 * 1024 + 10];
        let mut reader = ProgressReader::new(data.as_slice(), recorded.clone(), "dump");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        let events = recorded.0.lock().unwrap();
        let total: u64 = events
            .iter()
            .map(|e| match e {
                ProgressEvent::Advanced { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum();
        assert_eq!(total, data.len() as u64);
        assert!(events.len() <= 4, "{} events", events.len());
    }
}
