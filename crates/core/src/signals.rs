//! SIGINT, SIGTERM and SIGHUP deferred during a critical section (a restore's swap: a signal
//! between two renames would leave the live database missing). Inside a section a signal only
//! cancels the section's token; the work ends with `cancelled` once it has reached a
//! consistent state. Outside every section a signal ends the process as it would with no
//! handler at all: once tokio has registered a handler it keeps it for the rest of the
//! process, so the listener puts the default action back and raises the signal again.
//!
//! Only the CLI defers signals (it calls `enable` once). A program that loads the C ABI owns
//! its signals (taking them over would change its Ctrl-C for good); there `defer` does
//! nothing, and the program cancels through `vigia_ctx_cancel`, which the critical sections
//! honour the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::signal::unix::{SignalKind, signal};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Set when this process's signals are vigia's to defer: tells the user a signal is deferred.
static NOTICE: OnceLock<fn(&str)> = OnceLock::new();
/// The sections open now, by id.
static SECTIONS: Mutex<Vec<(u64, CancelToken)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// The task that receives the signals, on the runtime of the first section.
static LISTENER: Mutex<Option<tokio::task::JoinHandle<()>>> = Mutex::new(None);

/// While alive, SIGINT, SIGTERM and SIGHUP cancel the token instead of ending the process.
#[derive(Debug)]
#[must_use = "signals are deferred only while the guard lives"]
pub struct DeferredSignals {
    /// None: signals are not vigia's in this process.
    id: Option<u64>,
}

/// Makes this process's SIGINT, SIGTERM and SIGHUP vigia's to defer: for a program that is
/// vigia (the CLI), not one that loads it. `notice` tells the user when a signal is deferred.
/// No handler is registered until the first section.
pub fn enable(notice: fn(&str)) {
    let _ = NOTICE.set(notice);
}

impl DeferredSignals {
    /// Defers the signals until the guard is dropped; a signal cancels `token`. Call it
    /// within a tokio runtime, before the first step that must not be interrupted. Does
    /// nothing unless `enable` was called.
    pub fn defer(token: &CancelToken) -> Result<Self> {
        if NOTICE.get().is_none() {
            return Ok(Self { id: None });
        }
        listen()?;
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        lock(&SECTIONS).push((id, token.clone()));
        Ok(Self { id: Some(id) })
    }
}

impl Drop for DeferredSignals {
    fn drop(&mut self) {
        if let Some(mine) = self.id {
            lock(&SECTIONS).retain(|(id, _)| *id != mine);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers the handlers (at once, so no signal is lost once `defer` returns) and starts
/// the listener, unless one runs.
fn listen() -> Result<()> {
    let mut listener = lock(&LISTENER);
    if listener.as_ref().is_some_and(|task| !task.is_finished()) {
        return Ok(());
    }
    let register = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::internal(format!("cannot handle signals: {e}")))
    };
    let mut interrupt = register(SignalKind::interrupt())?;
    let mut terminate = register(SignalKind::terminate())?;
    let mut hangup = register(SignalKind::hangup())?;
    *listener = Some(tokio::spawn(async move {
        loop {
            let signo = tokio::select! {
                _ = interrupt.recv() => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
                _ = hangup.recv() => libc::SIGHUP,
            };
            received(signo);
        }
    }));
    Ok(())
}

fn received(signo: i32) {
    let sections = lock(&SECTIONS);
    if sections.is_empty() {
        drop(sections);
        die_by(signo);
    }
    for (_, token) in sections.iter() {
        token.cancel();
    }
    if let Some(notice) = NOTICE.get() {
        notice(&format!(
            "signal {signo} received: vigia stops once the live database is consistent again \
             (the swap checked, or undone)"
        ));
    }
}

/// Ends the process by `signo`'s default action, as if no handler had been installed.
#[allow(unsafe_code, clippy::exit)]
fn die_by(signo: i32) -> ! {
    // SAFETY: signal(2) and raise(3) with plain integers; they touch no memory of ours.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        libc::raise(signo);
    }
    // Not reached: the default action of these signals ends the process.
    std::process::exit(128 + signo)
}
