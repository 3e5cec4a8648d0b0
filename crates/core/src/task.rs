//! The async runtime and blocking work: one way for every crate and face.

use crate::error::{Error, Result};

/// A multi-threaded runtime with I/O and timers; `workers` None takes one per core.
pub fn async_runtime(thread_name: &str, workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name(thread_name);
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// Runs blocking `work` (hashing, a client program, a zip) off the async threads; `what`
/// names it if the task itself fails (a panic).
pub async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("the {what} task failed: {e}")))?
}
