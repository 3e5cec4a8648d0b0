//! `vigia_ctx`: a loaded config, a runtime for async work, a progress callback and a
//! cancellation flag. A ctx runs one call at a time.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use vigia_core::ports::progress::{Progress, ProgressEvent};
use vigia_core::{CancelToken, Config, ConfigSource, Error, ErrorKind, Result};

use crate::boundary::{guard, opt_str, req_str, set_last_error};

/// Called with one JSON progress event (`{"event": "phase_started", ...}`) and the userdata
/// given to `vigia_ctx_set_progress`. The string is valid only during the call. It may be
/// called from another thread than the one that made the ctx's call (the ctx's own worker
/// threads), and from several in turn: synchronize what it touches.
#[allow(non_camel_case_types)]
pub type vigia_progress_cb =
    Option<unsafe extern "C" fn(event_json: *const c_char, userdata: *mut c_void)>;

/// An opaque handle: create with `vigia_ctx_new`, free with `vigia_ctx_free`.
#[allow(non_camel_case_types)]
pub struct vigia_ctx {
    config: Config,
    runtime: tokio::runtime::Runtime,
    progress: Mutex<CallbackProgress>,
    cancel: CancelToken,
    busy: AtomicBool,
}

impl std::fmt::Debug for vigia_ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("vigia_ctx")
            .field("environment", &self.config.environment)
            .finish_non_exhaustive()
    }
}

/// Forwards progress events to the C callback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallbackProgress {
    callback: vigia_progress_cb,
    userdata: *mut c_void,
}

// SAFETY: the userdata pointer is the caller's; the ABI contract says the callback may be
// called from any of the ctx's threads, and the caller owns synchronization of it.
unsafe impl Send for CallbackProgress {}
// SAFETY: as above; the pointer is never dereferenced on the Rust side.
unsafe impl Sync for CallbackProgress {}

impl Progress for CallbackProgress {
    fn report(&self, event: &ProgressEvent) {
        let Some(callback) = self.callback else {
            return;
        };
        let Ok(json) = serde_json::to_string(event) else {
            return;
        };
        let Ok(json) = std::ffi::CString::new(json) else {
            return;
        };
        // SAFETY: the caller registered a function with this signature and its userdata.
        unsafe { callback(json.as_ptr(), self.userdata) };
    }
}

impl vigia_ctx {
    /// Runs one call on the ctx: refuses a second concurrent call, clears a stale cancellation,
    /// and gives the call the progress reporter and the cancellation token.
    pub(crate) fn run<T>(
        &self,
        call: impl FnOnce(&Self, CallbackProgress, &CancelToken) -> Result<T>,
    ) -> Result<T> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Locked,
                "this vigia_ctx is already running a call; use one ctx per thread",
            ));
        }
        // Free again when the call ends, even by a panic (caught at the boundary).
        let _busy = Busy(&self.busy);
        self.cancel.reset();
        let progress = *self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        call(self, progress, &self.cancel)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

/// Marks the ctx free when dropped.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn new_ctx(text: &str, env: Option<&str>, base_dir: Option<&str>) -> Result<vigia_ctx> {
    let config = ConfigSource::from_text(text, base_dir.map(std::path::Path::new))?.load(env)?;
    let runtime = vigia_core::task::async_runtime("vigia-ffi", Some(2))?;
    Ok(vigia_ctx {
        config,
        runtime,
        progress: Mutex::new(CallbackProgress {
            callback: None,
            userdata: std::ptr::null_mut(),
        }),
        cancel: CancelToken::new(),
        busy: AtomicBool::new(false),
    })
}

/// Loads a config (TOML text) for `env` (NULL: its `default-env`); relative paths are relative
/// to `base_dir` (NULL: the current directory). On success `*out` holds the new ctx and 0 is
/// returned; else the error code, with the message in `vigia_last_error()`.
///
/// # Safety
/// `config_toml` must be a valid NUL-terminated string, `env` and `base_dir` NULL or such
/// strings, `out` a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_ctx_new(
    config_toml: *const c_char,
    env: *const c_char,
    base_dir: *const c_char,
    out: *mut *mut vigia_ctx,
) -> u32 {
    let result = std::panic::catch_unwind(|| {
        // SAFETY: the caller passes NUL-terminated strings or NULL where allowed.
        let (text, env, base) = unsafe {
            (
                req_str(config_toml, "config_toml")?,
                opt_str(env, "env")?,
                opt_str(base_dir, "base_dir")?,
            )
        };
        if out.is_null() {
            return Err(Error::invalid_input("`out` must not be NULL"));
        }
        new_ctx(text, env, base)
    })
    .unwrap_or_else(|_| {
        Err(Error::internal(
            "vigia panicked while creating a ctx; please report this bug",
        ))
    });
    match result {
        Ok(ctx) => {
            set_last_error(None);
            // SAFETY: checked non-null above; the caller provides storage for one pointer.
            unsafe { *out = Box::into_raw(Box::new(ctx)) };
            0
        }
        Err(e) => {
            set_last_error(Some(e.message().to_owned()));
            u32::from(e.kind().code())
        }
    }
}

/// Frees a ctx. NULL is ignored. A call still running on it (on another thread) is
/// cancelled and waited for first.
///
/// # Safety
/// `ctx` must be NULL or a ctx from `vigia_ctx_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_ctx_free(ctx: *mut vigia_ctx) {
    // SAFETY: the caller passes a valid ctx (or NULL).
    let Some(running) = (unsafe { ctx.as_ref() }) else {
        return;
    };
    if running.busy.load(Ordering::SeqCst) {
        running.cancel.cancel();
        while running.busy.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // SAFETY: the caller passes a pointer from Box::into_raw in vigia_ctx_new, and no call
    // uses it any more.
    drop(unsafe { Box::from_raw(ctx) });
}

/// Sets (or with a NULL callback, clears) the progress callback for the ctx's next calls.
///
/// # Safety
/// `ctx` must be a valid ctx; `callback` must stay callable with `userdata` while calls run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_ctx_set_progress(
    ctx: *mut vigia_ctx,
    callback: vigia_progress_cb,
    userdata: *mut c_void,
) {
    // SAFETY: the caller passes a valid ctx (or NULL, ignored).
    if let Some(ctx) = unsafe { ctx.as_ref() } {
        *ctx.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            CallbackProgress { callback, userdata };
    }
}

/// Asks the ctx's running call to stop; it ends with status 20 (cancelled). Callable from any
/// thread; without a running call it does nothing.
///
/// # Safety
/// `ctx` must be a valid ctx (or NULL, ignored).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_ctx_cancel(ctx: *mut vigia_ctx) {
    // SAFETY: the caller passes a valid ctx (or NULL).
    if let Some(ctx) = unsafe { ctx.as_ref() }
        && ctx.busy.load(Ordering::SeqCst)
    {
        ctx.cancel.cancel();
    }
}

/// `vigia config show --json` for the ctx's config: the settings in force, secrets redacted.
/// `args_json` is unused (may be NULL).
///
/// # Safety
/// `ctx` must be a valid ctx; `out_json` NULL or a valid pointer to a `char *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_config_show(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    let _ = args_json;
    guard("config show", out_json, || {
        // SAFETY: the caller passes a valid ctx.
        let ctx = unsafe { ctx.as_ref() }
            .ok_or_else(|| Error::invalid_input("`ctx` must not be NULL"))?;
        ctx.run(|ctx, _, _| Ok(ctx.config().view()))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const CONFIG: &str = "[odoo]\ndatabase = \"odoo\"\n";

    fn ctx() -> Box<vigia_ctx> {
        Box::new(new_ctx(CONFIG, None, None).unwrap())
    }

    unsafe extern "C" fn record(event: *const c_char, userdata: *mut c_void) {
        // SAFETY: the test registers a Mutex<Vec<String>> as userdata, and the library passes
        // a NUL-terminated string.
        let (events, event) = unsafe {
            (
                &*(userdata as *const Mutex<Vec<String>>),
                std::ffi::CStr::from_ptr(event),
            )
        };
        events
            .lock()
            .unwrap()
            .push(event.to_string_lossy().into_owned());
    }

    #[test]
    fn progress_events_reach_the_callback_as_json() {
        let events = Mutex::new(Vec::<String>::new());
        let mut ctx = ctx();
        // SAFETY: a valid ctx and a callback matching the signature; `events` outlives the call.
        unsafe {
            vigia_ctx_set_progress(
                &raw mut *ctx,
                Some(record),
                (&raw const events).cast_mut().cast(),
            );
        };
        ctx.run(|_, progress, _| {
            progress.report(&ProgressEvent::PhaseStarted {
                phase: "dump".into(),
                total_bytes: Some(10),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            [r#"{"event":"phase_started","phase":"dump","total_bytes":10}"#]
        );
    }

    #[test]
    fn cancel_from_another_thread_ends_the_running_call() {
        let ctx: Arc<Mutex<Box<vigia_ctx>>> = Arc::new(Mutex::new(ctx()));
        let raw = std::ptr::from_ref::<vigia_ctx>(&**ctx.lock().unwrap()) as usize;
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: the ctx lives until the main thread's call returns, after this join.
            unsafe { vigia_ctx_cancel(raw as *mut vigia_ctx) };
        });
        let guard = ctx.lock().unwrap();
        let result: Result<()> = guard.run(|_, _, cancel| {
            loop {
                cancel.check()?;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        canceller.join().unwrap();
        let err: Error = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        drop(guard);
        assert!(
            ctx.lock().unwrap().run(|_, _, c| c.check()).is_ok(),
            "the next call starts uncancelled"
        );
    }

    #[test]
    fn a_second_concurrent_call_is_refused() {
        let ctx = ctx();
        let err = ctx.run(|ctx, _, _| ctx.run(|_, _, _| Ok(()))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
    }

    /// Regression (issue 10 item 8): a panic caught at the boundary left the ctx busy, and
    /// every later call on it failed with `locked`.
    #[test]
    fn a_ctx_is_not_busy_after_a_caught_panic() {
        let ctx = ctx();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.run(|_, _, _| -> Result<()> { panic!("a bug") })
        }));
        assert!(panicked.is_err());
        assert!(ctx.run(|_, _, _| Ok(())).is_ok(), "the ctx is free again");
    }

    /// Regression (issue 10 item 8): freeing a ctx whose call still ran on another thread
    /// freed it under that call; now the call is cancelled and waited for.
    #[test]
    fn freeing_a_busy_ctx_cancels_its_call_and_waits_for_it() {
        let raw = Box::into_raw(ctx()) as usize;
        let ended = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let worker = {
            let (ended, started) = (Arc::clone(&ended), Arc::clone(&started));
            std::thread::spawn(move || {
                // SAFETY: the ctx is freed only by vigia_ctx_free, which waits for this call.
                let ctx = unsafe { &*(raw as *const vigia_ctx) };
                let result: Result<()> = ctx.run(|_, _, cancel| {
                    started.store(true, Ordering::SeqCst);
                    while cancel.check().is_ok() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    ended.store(true, Ordering::SeqCst);
                    cancel.check()
                });
                assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: a ctx from vigia_ctx_new's Box, freed once.
        unsafe { vigia_ctx_free(raw as *mut vigia_ctx) };
        assert!(ended.load(Ordering::SeqCst), "freed before its call ended");
        worker.join().unwrap();
    }
}
