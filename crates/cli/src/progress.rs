//! Progress for people, on stderr (stdout is kept for results and the `--json` envelope): a
//! bar with the phase, bytes and rate on a terminal; otherwise one log line per phase and a
//! line every few seconds while bytes flow, so a cron log shows a backup is alive.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vigia_core::ports::progress::{Progress, ProgressEvent};

use crate::args::Cli;
use crate::output::bytes;

/// How often a log line reports bytes when there is no bar.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The progress a command run with `cli`'s flags should show.
pub fn for_cli(cli: &Cli) -> Arc<dyn Progress> {
    if !cli.no_progress && !cli.quiet && !cli.json && std::io::stderr().is_terminal() {
        Arc::new(BarProgress::default())
    } else {
        Arc::new(LogProgress::default())
    }
}

/// Log lines: each phase, then bytes and rate every `LOG_EVERY`.
#[derive(Debug, Default)]
pub struct LogProgress {
    state: Mutex<PhaseBytes>,
}

#[derive(Debug)]
struct PhaseBytes {
    started: Instant,
    last_line: Instant,
    bytes: u64,
}

impl Default for PhaseBytes {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_line: Instant::now(),
            bytes: 0,
        }
    }
}

impl PhaseBytes {
    fn rate(&self) -> String {
        let millis = self.started.elapsed().as_millis().max(1);
        let per_second = u128::from(self.bytes) * 1000 / millis;
        format!("{}/s", bytes(u64::try_from(per_second).unwrap_or(u64::MAX)))
    }
}

impl Progress for LogProgress {
    fn report(&self, event: &ProgressEvent) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::PhaseStarted { phase, .. } => {
                *state = PhaseBytes::default();
                tracing::info!("{phase}...");
            }
            ProgressEvent::Advanced { phase, bytes: n } => {
                state.bytes += n;
                if state.last_line.elapsed() >= LOG_EVERY {
                    state.last_line = Instant::now();
                    tracing::info!("{phase}: {} ({})", bytes(state.bytes), state.rate());
                }
            }
            ProgressEvent::PhaseFinished { phase } => {
                if state.bytes > 0 {
                    tracing::info!("{phase}: {} ({})", bytes(state.bytes), state.rate());
                }
            }
            ProgressEvent::Message { text } => tracing::info!("{text}"),
        }
    }
}

/// An indicatif bar per phase: the phase, bytes done (of the total when known) and the rate.
#[derive(Debug, Default)]
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for BarProgress {
    fn report(&self, event: &ProgressEvent) {
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::PhaseStarted { phase, total_bytes } => {
                if let Some(done) = bar.take() {
                    done.finish();
                }
                let new = match total_bytes {
                    Some(total) => ProgressBar::new(*total).with_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg:28} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    ),
                    None => ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg:28} {bytes} {binary_bytes_per_sec} {elapsed}",
                        )
                        .expect("a valid template"),
                    ),
                };
                new.set_message(phase.clone());
                new.enable_steady_tick(Duration::from_millis(120));
                *bar = Some(new);
            }
            ProgressEvent::Advanced { bytes: n, .. } => {
                if let Some(bar) = bar.as_ref() {
                    bar.inc(*n);
                }
            }
            ProgressEvent::PhaseFinished { .. } => {
                if let Some(done) = bar.take() {
                    done.finish();
                }
            }
            ProgressEvent::Message { text } => {
                if let Some(bar) = bar.as_ref() {
                    bar.println(text);
                } else {
                    tracing::info!("{text}");
                }
            }
        }
    }
}

impl Drop for BarProgress {
    fn drop(&mut self) {
        if let Some(bar) = self
            .bar
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
    }
}
