//! One function per CLI command that runs on a ctx: arguments as JSON (the CLI's long flags in
//! snake_case), the result as the CLI's `--json` envelope.

use std::ffi::c_char;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use vigia_backup::format::BackupId;
use vigia_backup::{BackupJob, StoreAccess};
use vigia_core::{Error, Result};

use crate::boundary::{guard, opt_str};
use crate::context::vigia_ctx;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupArgs {
    #[serde(default)]
    allow_missing_files: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowArgs {
    id: String,
}

/// Parses `args_json` (NULL: `{}`).
///
/// # Safety
/// `args_json` must be NULL or a valid NUL-terminated string.
unsafe fn args<T: DeserializeOwned>(args_json: *const c_char) -> Result<T> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { opt_str(args_json, "args_json") }?.unwrap_or("{}");
    serde_json::from_str(text).map_err(|e| Error::invalid_input(format!("bad args_json: {e}")))
}

/// Runs `call` on the ctx, or fails with invalid_input for a NULL ctx.
///
/// # Safety
/// `ctx` must be NULL or a valid ctx.
unsafe fn with_ctx<T>(
    ctx: *mut vigia_ctx,
    call: impl FnOnce(
        &vigia_ctx,
        crate::context::CallbackProgress,
        &vigia_core::CancelToken,
    ) -> Result<T>,
) -> Result<T> {
    // SAFETY: forwarded from the caller.
    let ctx =
        unsafe { ctx.as_ref() }.ok_or_else(|| Error::invalid_input("`ctx` must not be NULL"))?;
    ctx.run(call)
}

/// `vigia backup --json`. `args_json`: `{"allow_missing_files": bool}` or NULL. Progress
/// events go to the ctx's callback; `vigia_ctx_cancel` stops it (no backup is recorded).
///
/// # Safety
/// `ctx` must be a valid ctx, `args_json` NULL or a NUL-terminated string, `out_json` NULL or
/// a valid pointer to a `char *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_backup(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    guard("backup", out_json, || {
        // SAFETY: the caller's pointers, as documented.
        let args: BackupArgs = unsafe { args(args_json) }?;
        // SAFETY: as above.
        unsafe {
            with_ctx(ctx, |ctx, progress, cancel| {
                ctx.runtime().block_on(async {
                    let mut job = BackupJob::from_config(ctx.config()).await?;
                    job.allow_missing_files = args.allow_missing_files;
                    job.progress = Arc::new(progress);
                    job.cancel = cancel.clone();
                    job.run().await
                })
            })
        }
    })
}

/// `vigia backup list --json`. `args_json` is NULL or `{}`.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_backup_list(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    guard("backup list", out_json, || {
        // SAFETY: the caller's pointers, as documented.
        let NoArgs {} = unsafe { args(args_json) }?;
        // SAFETY: as above.
        unsafe {
            with_ctx(ctx, |ctx, _, _| {
                ctx.runtime().block_on(async {
                    StoreAccess::from_config(ctx.config())
                        .await?
                        .list_backups()
                        .await
                })
            })
        }
    })
}

/// `vigia backup show ID --json`. `args_json`: `{"id": "20261128T021530Z-k3f9"}`.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_backup_show(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    guard("backup show", out_json, || {
        // SAFETY: the caller's pointers, as documented.
        let ShowArgs { id } = unsafe { args(args_json) }?;
        let id: BackupId = id.parse()?;
        // SAFETY: as above.
        unsafe {
            with_ctx(ctx, |ctx, _, _| {
                ctx.runtime().block_on(async {
                    StoreAccess::from_config(ctx.config())
                        .await?
                        .show_backup(&id)
                        .await
                })
            })
        }
    })
}
