//! The one error type of the library crates, its stable kinds and their exit codes.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What went wrong, as a stable category. The numbers are exit codes and FFI status codes:
/// they are part of the interface and are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Config,
    InvalidInput,
    Io,
    Network,
    Database,
    Storage,
    Crypto,
    Integrity,
    CheckFailed,
    Locked,
    Cancelled,
    Internal,
}

impl ErrorKind {
    /// Every kind, in code order (for the README table and its test).
    pub const ALL: [ErrorKind; 12] = [
        Self::Config,
        Self::InvalidInput,
        Self::Io,
        Self::Network,
        Self::Database,
        Self::Storage,
        Self::Crypto,
        Self::Integrity,
        Self::CheckFailed,
        Self::Locked,
        Self::Cancelled,
        Self::Internal,
    ];

    /// The exit code of the CLI and the status code of the FFI.
    pub const fn code(self) -> u8 {
        match self {
            Self::Config => 10,
            Self::InvalidInput => 11,
            Self::Io => 12,
            Self::Network => 13,
            Self::Database => 14,
            Self::Storage => 15,
            Self::Crypto => 16,
            Self::Integrity => 17,
            Self::CheckFailed => 18,
            Self::Locked => 19,
            Self::Cancelled => 20,
            Self::Internal => 30,
        }
    }

    /// The `kind` string of the JSON envelope.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::InvalidInput => "invalid_input",
            Self::Io => "io",
            Self::Network => "network",
            Self::Database => "database",
            Self::Storage => "storage",
            Self::Crypto => "crypto",
            Self::Integrity => "integrity",
            Self::CheckFailed => "check_failed",
            Self::Locked => "locked",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }

    /// What the kind means, for the README's exit-code table.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Config => "the configuration is invalid or incomplete",
            Self::InvalidInput => {
                "bad arguments, or a refusal (missing --confirm, e-invoice guard)"
            }
            Self::Io => "a local file or process failed",
            Self::Network => "a remote service could not be reached",
            Self::Database => "PostgreSQL refused or failed",
            Self::Storage => "the object store refused or failed",
            Self::Crypto => "encryption, decryption or a key failed",
            Self::Integrity => "corruption found",
            Self::CheckFailed => "a check or gate failed",
            Self::Locked => "another run holds the lock",
            Self::Cancelled => "cancelled by the user",
            Self::Internal => "a bug in vigia",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an error happened, for the envelope's `context`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// An object store key or a file the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

impl ErrorContext {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An error with a kind, a message that says what to do, and where it happened. Boxed, so
/// that `Result`s stay one pointer wide on the happy path.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    context: ErrorContext,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            context: ErrorContext::default(),
            source: None,
        }))
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// An I/O error on `path`, with the path in the message and the context.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Self {
        Self::new(
            ErrorKind::Io,
            format!("cannot {action} {}: {err}", path.display()),
        )
        .with_file(path)
        .with_source(err)
    }

    #[must_use]
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.0.context.file = Some(file.into());
        self
    }

    #[must_use]
    pub fn with_line(mut self, line: usize) -> Self {
        self.0.context.line = Some(line);
        self
    }

    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.0.context.key = Some(key.into());
        self
    }

    #[must_use]
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.0.context.object = Some(object.into());
        self
    }

    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub fn context(&self) -> &ErrorContext {
        &self.0.context
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An error with its causes, "outer: inner: innermost" (for libraries whose Display shows
/// only the outermost, such as reqwest's "error sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_stable() {
        let codes: Vec<u8> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 30]);
    }

    #[test]
    fn kind_serializes_as_its_string() {
        for kind in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}
