//! The JSON envelope that `--json` prints and the FFI returns.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorContext, ErrorKind};

/// `{"ok", "command", "data", "error"}`: exactly one per command run.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub ok: bool,
    pub command: String,
    pub data: Value,
    pub error: Option<EnvelopeError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeError {
    pub kind: ErrorKind,
    pub code: u8,
    pub message: String,
    pub context: ErrorContext,
}

/// A result that ran to its end and still failed: `vigia verify` that found corruption. Its
/// data is the answer (which objects, what is wrong) and goes into the envelope beside the error.
pub trait Outcome {
    /// The error that makes this result a failure (its kind picks the exit code); None: success.
    fn failure(&self) -> Option<Error> {
        None
    }
}

impl Outcome for () {}

impl Envelope {
    /// Like `from_result`, with an `Outcome`'s failure turned into an error that keeps the data.
    pub fn from_outcome<T: Serialize + Outcome>(command: &str, result: &Result<T, Error>) -> Self {
        let mut envelope = Self::from_result(command, result);
        if let Ok(value) = result
            && let Some(error) = value.failure()
        {
            let data = std::mem::take(&mut envelope.data);
            envelope = Self::failure(command, &error);
            envelope.data = data;
        }
        envelope
    }

    /// Wraps a command's result: `data` on success, the error (and `null` data) on failure.
    pub fn from_result<T: Serialize>(command: &str, result: &Result<T, Error>) -> Self {
        match result {
            Ok(data) => match serde_json::to_value(data) {
                Ok(data) => Self::success(command, data),
                Err(e) => Self::failure(
                    command,
                    &Error::internal(format!("cannot serialize the result: {e}")),
                ),
            },
            Err(error) => Self::failure(command, error),
        }
    }

    pub fn success(command: &str, data: Value) -> Self {
        Self {
            ok: true,
            command: command.to_owned(),
            data,
            error: None,
        }
    }

    pub fn failure(command: &str, error: &Error) -> Self {
        Self {
            ok: false,
            command: command.to_owned(),
            data: Value::Null,
            error: Some(EnvelopeError {
                kind: error.kind(),
                code: error.kind().code(),
                message: error.message().to_owned(),
                context: error.context().clone(),
            }),
        }
    }

    /// 0 on success, else the error kind's code.
    pub fn status(&self) -> u8 {
        self.error.as_ref().map_or(0, |e| e.code)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"ok":false,"command":{},"data":null,"error":{{"kind":"internal","code":30,"message":"cannot serialize the envelope: {}","context":{{}}}}}}"#,
                serde_json::Value::from(self.command.as_str()),
                e.to_string().replace('"', "'")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_kind_code_and_context() {
        let err = Error::config("unknown key")
            .with_file("/etc/vigia.toml")
            .with_line(3)
            .with_key("odoo.databse");
        let env = Envelope::failure("config check", &err);
        let json: Value = serde_json::from_str(&env.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ok": false, "command": "config check", "data": null,
                "error": {"kind": "config", "code": 10, "message": "unknown key",
                          "context": {"file": "/etc/vigia.toml", "line": 3, "key": "odoo.databse"}}
            })
        );
        assert_eq!(env.status(), 10);
    }

    #[test]
    fn success_has_null_error() {
        let env = Envelope::from_result::<_>("x", &Ok::<_, Error>(serde_json::json!({"a": 1})));
        assert!(env.ok);
        assert_eq!(env.status(), 0);
        assert!(env.to_json().contains(r#""error":null"#));
    }
}
