//! One function per CLI command that runs on a ctx: arguments as JSON (the CLI's long flags in
//! snake_case), the result as the CLI's `--json` envelope.

use std::ffi::c_char;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vigia_backup::format::BackupId;
use vigia_backup::{
    BackupJob, BackupRequest, PruneJob, PruneRequest, StoreAccess, VerifyJob, VerifyRequest,
};
use vigia_core::{CancelToken, Config, Error, Outcome, Result};
use vigia_health::{HealthRequest, HealthRun, SmokeRequest};
use vigia_restore::{
    CleanupRequest, PlannedRestore, RestoreCleanup, RestoreJob, RestoreReport, RestoreRequest,
    ResumeReport, SwapRecovery,
};

use crate::boundary::{guard, opt_str};
use crate::context::{CallbackProgress, vigia_ctx};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowArgs {
    id: String,
}

/// `vigia_restore`'s data: a restore's report, or with `"resume": true` the undo's.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RestoreData {
    Restore(Box<RestoreReport>),
    Resume(ResumeReport),
    Plan(PlannedRestore),
}

impl Outcome for RestoreData {}

/// What a command body gets: the ctx's config, its parsed arguments, progress and cancellation.
pub(crate) struct Call<A> {
    pub config: Config,
    pub args: A,
    progress: CallbackProgress,
    pub cancel: CancelToken,
}

/// Parses `args_json` (NULL: `{}`), runs `body` on the ctx's runtime, and writes the envelope
/// for `command`.
///
/// # Safety
/// `ctx` must be NULL or a valid ctx, `args_json` NULL or a NUL-terminated string, `out_json`
/// NULL or a valid pointer to a `char *`.
pub(crate) unsafe fn run_command<A, T>(
    command: &str,
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
    body: impl AsyncFnOnce(Call<A>) -> Result<T>,
) -> u32
where
    A: DeserializeOwned,
    T: Serialize + Outcome,
{
    guard(command, out_json, || {
        // SAFETY: forwarded from the caller.
        let text = unsafe { opt_str(args_json, "args_json") }?.unwrap_or("{}");
        let args: A = serde_json::from_str(text)
            .map_err(|e| Error::invalid_input(format!("bad args_json: {e}")))?;
        // SAFETY: forwarded from the caller.
        let ctx = unsafe { ctx.as_ref() }
            .ok_or_else(|| Error::invalid_input("`ctx` must not be NULL"))?;
        ctx.run(|ctx, progress, cancel| {
            let call = Call {
                config: ctx.config().clone(),
                args,
                progress,
                cancel: cancel.clone(),
            };
            ctx.runtime().block_on(body(call))
        })
    })
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
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "backup",
            ctx,
            args_json,
            out_json,
            async |c: Call<BackupRequest>| {
                let mut job = BackupJob::from_config(&c.config, c.args).await?;
                job.progress = Arc::new(c.progress);
                job.cancel = c.cancel;
                job.run().await
            },
        )
    }
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
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "backup list",
            ctx,
            args_json,
            out_json,
            async |c: Call<NoArgs>| {
                StoreAccess::from_config(&c.config)
                    .await?
                    .list_backups()
                    .await
            },
        )
    }
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
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "backup show",
            ctx,
            args_json,
            out_json,
            async |c: Call<ShowArgs>| {
                let id: BackupId = c.args.id.parse()?;
                StoreAccess::from_config(&c.config)
                    .await?
                    .show_backup(&id)
                    .await
            },
        )
    }
}

/// `vigia verify --json`. `args_json`: `{"id": "...", "all": bool, "level": "quick" | "full" |
/// "drill"}`, every key optional (NULL: the newest backup at the default level). Returns 17
/// (integrity) with the results in the envelope's data when a backup fails.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_verify(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "verify",
            ctx,
            args_json,
            out_json,
            async |c: Call<VerifyRequest>| {
                let mut job = VerifyJob::from_config(&c.config, &c.args).await?;
                job.progress = Arc::new(c.progress);
                job.cancel = c.cancel;
                job.run().await
            },
        )
    }
}

/// `vigia prune --json`. `args_json`: `{"dry_run": bool}` or NULL (apply).
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_prune(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "prune",
            ctx,
            args_json,
            out_json,
            async |c: Call<PruneRequest>| {
                PruneJob::from_config(&c.config, c.args).await?.run().await
            },
        )
    }
}

/// `vigia restore ID --json`. `args_json`: `{"id": "..."}` or `{"from_odoo_zip": "path"}`,
/// plus optional `"target_db": "...", "confirm": "...", "accept_einvoice_loss": bool,
/// "force_sessions": bool, "neutralize": bool, "trust_zip": bool, "jobs": N, "role": "..."`:
/// with `target_db` beside the live database, else swapped in for it. `{"resume": true}`
/// alone restores nothing: it undoes an interrupted swap, like `vigia restore --resume --json`.
/// With `"dry_run": true` the data is `{"plan": ...}` and nothing is touched.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_restore(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "restore",
            ctx,
            args_json,
            out_json,
            async |c: Call<RestoreRequest>| {
                if c.args.resume {
                    let mut recovery = SwapRecovery::from_config(&c.config, &c.args).await?;
                    recovery.progress = Arc::new(c.progress);
                    recovery.cancel = c.cancel;
                    return recovery.run().await.map(RestoreData::Resume);
                }
                let dry_run = c.args.dry_run;
                let mut job = RestoreJob::from_config(&c.config, c.args).await?;
                if dry_run {
                    return Ok(RestoreData::Plan(PlannedRestore { plan: job.plan()? }));
                }
                job.progress = Arc::new(c.progress);
                job.cancel = c.cancel;
                job.run().await.map(|r| RestoreData::Restore(Box::new(r)))
            },
        )
    }
}

/// `vigia health --json`. `args_json`: `{"only": ["postgres", "disk:/srv"], "alert": bool}` or
/// NULL (every check, no alerts). A critical or unknown run returns 18 (`check_failed`) with
/// the report as data.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_health(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "health",
            ctx,
            args_json,
            out_json,
            async |c: Call<HealthRequest>| {
                Ok(HealthRun::from_config(&c.config, &c.args)?.run().await)
            },
        )
    }
}

/// `vigia smoke --json`. `args_json`: `{"url": "https://erp.example.cr"}` or NULL (`[odoo]
/// url`). A critical or unknown run returns 18 (`check_failed`) with the report as data.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_smoke(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "smoke",
            ctx,
            args_json,
            out_json,
            async |c: Call<SmokeRequest>| Ok(HealthRun::smoke(&c.config, &c.args)?.run().await),
        )
    }
}

/// `vigia restore --cleanup --json`. `args_json`: `{"apply": bool, "confirm": "db"}` or NULL
/// (list only).
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_restore_cleanup(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "restore cleanup",
            ctx,
            args_json,
            out_json,
            async |c: Call<CleanupRequest>| {
                RestoreCleanup::from_config(&c.config, c.args)
                    .await?
                    .run()
                    .await
            },
        )
    }
}
