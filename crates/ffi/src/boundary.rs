//! The boundary: C strings in, envelopes out, panics caught, the last error kept per thread.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use vigia_core::{Envelope, Error, Outcome, Result};

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `call`, wraps its result in the envelope for `command`, writes it to `out` and returns
/// the status. A panic becomes an `internal` error instead of unwinding into C.
pub fn guard<T: Serialize + Outcome>(
    command: &str,
    out: *mut *mut c_char,
    call: impl FnOnce() -> Result<T>,
) -> u32 {
    let result = catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Error::internal(format!(
            "vigia panicked: {what}; please report this bug"
        )))
    });
    write_out(&Envelope::from_outcome(command, &result), out)
}

/// Stores the envelope's error as the thread's last error, writes the envelope to `out`.
pub fn write_out(envelope: &Envelope, out: *mut *mut c_char) -> u32 {
    let message = envelope.error.as_ref().map(|e| e.message.clone());
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
    if !out.is_null() {
        let json = CString::new(envelope.to_json()).unwrap_or_else(|_| {
            CString::new(r#"{"ok":false,"command":"","data":null,"error":{"kind":"internal","code":30,"message":"NUL in output","context":{}}}"#)
                .expect("no NUL")
        });
        // SAFETY: `out` is non-null and, by the contract of every exported function, points
        // to writable storage for one pointer.
        unsafe { *out = json.into_raw() };
    }
    u32::from(envelope.status())
}

pub fn last_error() -> *mut c_char {
    LAST_ERROR.with(|slot| {
        slot.borrow()
            .as_deref()
            .and_then(|m| CString::new(m.replace('\0', " ")).ok())
            .map_or(std::ptr::null_mut(), CString::into_raw)
    })
}

/// Remembers an error message for `vigia_last_error` (calls that return no envelope).
pub fn set_last_error(message: Option<String>) {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// A required string argument.
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string that outlives the returned slice.
pub unsafe fn req_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { opt_str(ptr, name) }?
        .ok_or_else(|| Error::invalid_input(format!("`{name}` must not be NULL")))
}

/// An optional (nullable) string argument.
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string that outlives the returned slice.
pub unsafe fn opt_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, and the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map(Some)
        .map_err(|_| Error::invalid_input(format!("`{name}` is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_envelope() {
        let mut out: *mut c_char = std::ptr::null_mut();
        let status = guard::<()>("config check", &raw mut out, || panic!("boom"));
        assert_eq!(status, 30);
        // SAFETY: guard wrote a string from CString::into_raw.
        let json = unsafe { CString::from_raw(out) }.into_string().unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(envelope["error"]["kind"], "internal");
        assert!(
            envelope["error"]["message"]
                .as_str()
                .unwrap()
                .contains("boom")
        );
        let last = last_error();
        // SAFETY: last_error returns a string from CString::into_raw.
        let last = unsafe { CString::from_raw(last) }.into_string().unwrap();
        assert!(last.contains("boom"));
    }
}
