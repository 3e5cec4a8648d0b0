//! `vigia alert test|silence|unsilence` over the C ABI.

use std::ffi::c_char;

use vigia_health::alerts::{self, Alerting, SilenceRequest};

use crate::commands::{Call, NoArgs, run_command};
use crate::context::vigia_ctx;

/// `vigia alert test --json`. `args_json` is NULL or `{}`. No channel configured: 10
/// (config); a channel that refused: 13 (network), every channel's answer in the data.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_alert_test(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "alert test",
            ctx,
            args_json,
            out_json,
            async |c: Call<NoArgs>| Alerting::from_config(&c.config)?.test().await,
        )
    }
}

/// `vigia alert silence --json`. `args_json`: `{"for": "2h", "reason": "upgrade"}`.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_alert_silence(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "alert silence",
            ctx,
            args_json,
            out_json,
            async |c: Call<SilenceRequest>| alerts::silence(&c.config, &c.args),
        )
    }
}

/// `vigia alert unsilence --json`. `args_json` is NULL or `{}`.
///
/// # Safety
/// As for `vigia_backup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigia_alert_unsilence(
    ctx: *mut vigia_ctx,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> u32 {
    // SAFETY: the caller's pointers, as documented.
    unsafe {
        run_command(
            "alert unsilence",
            ctx,
            args_json,
            out_json,
            async |c: Call<NoArgs>| alerts::unsilence(&c.config),
        )
    }
}
