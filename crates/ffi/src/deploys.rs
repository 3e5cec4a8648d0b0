//! `vigia deploy`, `vigia rollback` and `vigia deploy history` over the C ABI.

use std::ffi::c_char;

use vigia_deploy::{DeployJob, DeployRequest, RollbackRequest};

use crate::commands::{Call, NoArgs, run_command};
use crate::context::vigia_ctx;

/// `vigia deploy --release REF [--dry-run] --json`. `args_json`: `{"release": "v2",
/// "dry_run": bool}`, or `{"resume": true}` (`vigia deploy --resume`: the last deploy,
/// killed midway, goes on). A deploy that failed and rolled back returns 18 (`check_failed`)
/// with the report as data; `vigia_ctx_cancel` stops it at the next step and rolls back.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_deploy(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "deploy",
            ctx,
            args_json,
            out_json,
            async |c: Call<DeployRequest>| {
                let mut job = DeployJob::from_config(&c.config)?;
                job.cancel = c.cancel;
                job.request(&c.args).await
            },
        )
    }
}

/// `vigia rollback --json`. `args_json`: `{"accept_einvoice_loss": bool}` or NULL.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_rollback(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "rollback",
            ctx,
            args_json,
            out_json,
            async |c: Call<RollbackRequest>| {
                DeployJob::from_config(&c.config)?
                    .rollback_request(&c.args)
                    .await
            },
        )
    }
}

/// `vigia deploy history --json`. `args_json` is NULL or `{}`.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_deploy_history(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "deploy history",
            ctx,
            args_json,
            out_json,
            async |c: Call<NoArgs>| vigia_deploy::history(&c.config),
        )
    }
}
