//! Cancellation of a running call from another thread (Ctrl-C, `vigia_ctx_cancel`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears a cancellation once the call it was meant for has ended.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// Resolves once cancelled (the token is set from another thread or a signal, so it is
    /// polled): race long work against it.
    pub async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `Err(cancelled)` once cancelled: long work calls this between steps.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(ErrorKind::Cancelled, "cancelled"))
        } else {
            Ok(())
        }
    }
}
