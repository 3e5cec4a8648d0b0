//! `ObjectStore`: where backup objects live.

use std::fmt;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind};

/// A stream of object bytes.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size_bytes: u64,
    /// When the object was last written, when the store says (prune's grace period uses it).
    pub modified: Option<jiff::Timestamp>,
    /// The store's version tag of the object, when it says: what a conditional write names.
    #[serde(skip)]
    pub etag: Option<String>,
}

/// The precondition of a conditional write (S3's `If-None-Match: *` and `If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if nothing is under the key.
    Absent,
    /// Only if the object under the key still has this ETag.
    Matches(String),
}

/// The most `get_bytes_meta` reads.
pub const SMALL_OBJECT_MAX: u64 = 1024 * 1024;

/// The error for an object over `SMALL_OBJECT_MAX`.
pub fn too_large(store: String, key: &str, size: u64) -> StoreError {
    StoreError::Backend {
        store,
        action: "get",
        key: key.to_owned(),
        message: format!(
            "it is {size} bytes, and a record vigia writes is at most {SMALL_OBJECT_MAX}: it is \
             not vigia's; remove it"
        ),
    }
}

/// Why a store operation failed. `NotFound` is its own case: callers branch on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object `{key}` not found in {store}")]
    NotFound { store: String, key: String },
    #[error("`{key}` is not a valid object key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("reading the data for `{key}` failed: {source}")]
    Source {
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// A conditional write's precondition did not hold: someone else wrote (or removed) it.
    #[error("{store}: `{key}` was changed by another writer")]
    ConditionFailed { store: String, key: String },
    #[error("{store}: {action} `{key}` failed: {message}")]
    Backend {
        store: String,
        action: &'static str,
        key: String,
        message: String,
    },
}

impl StoreError {
    /// A failure reported by a store's backend; a read (`get`, `head`) of a missing object
    /// becomes `NotFound`, the case callers branch on.
    pub fn backend(
        store: String,
        action: &'static str,
        key: &str,
        message: String,
        missing: bool,
    ) -> Self {
        if missing && matches!(action, "get" | "head") {
            return Self::NotFound {
                store,
                key: key.to_owned(),
            };
        }
        Self::Backend {
            store,
            action,
            key: key.to_owned(),
            message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    pub fn is_condition_failed(&self) -> bool {
        matches!(self, Self::ConditionFailed { .. })
    }

    pub fn key(&self) -> &str {
        match self {
            Self::NotFound { key, .. }
            | Self::ConditionFailed { key, .. }
            | Self::InvalidKey { key, .. }
            | Self::Source { key, .. }
            | Self::Backend { key, .. } => key,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let kind = match e {
            StoreError::InvalidKey { .. } => ErrorKind::InvalidInput,
            StoreError::Source { .. } => ErrorKind::Io,
            _ => ErrorKind::Storage,
        };
        let key = e.key().to_owned();
        Error::new(kind, e.to_string())
            .with_object(key)
            .with_source(e)
    }
}

/// An object store: a flat namespace of immutable objects under `/`-separated keys.
///
/// Writes are atomic: an object is visible whole or not at all, so a run that dies midway
/// never leaves a truncated object under its final key.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Where the store is, for messages: `local directory /x`, `s3://bucket/prefix`.
    fn location(&self) -> String;

    /// Streams `body` to `key`, replacing any object there. Memory stays bounded whatever
    /// the size. If `body` fails, nothing is left under `key`.
    async fn put(&self, key: &str, body: ObjectReader) -> Result<ObjectMeta, StoreError>;

    /// Stores a small object only if `condition` holds, atomically on a store that honours
    /// conditional writes; `ConditionFailed` otherwise. The result carries the new ETag.
    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError>;

    /// Reads a small object (at most `SMALL_OBJECT_MAX` bytes: a lock record) into memory
    /// with its metadata (ETag, when it was last written), both from the same read. A larger
    /// object is refused before it is read: whoever can write to the store could otherwise
    /// exhaust memory through a record every run reads.
    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError>;

    /// Streams the object, or the byte `range` of it.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError>;

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError>;

    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Deletes `key`; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Removes what writes of a process that died left behind (temporary files, unfinished
    /// multipart uploads it recorded) and returns how many. Call under the store lock.
    async fn clean_dead_writes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Stores a small object from memory.
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<ObjectMeta, StoreError> {
        self.put(key, Box::pin(std::io::Cursor::new(data))).await
    }

    /// Reads a small object into memory.
    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut reader = self.get(key, None).await?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| StoreError::Backend {
                store: self.location(),
                action: "read",
                key: key.to_owned(),
                message: e.to_string(),
            })?;
        Ok(out)
    }
}

/// Checks a key the same way for every store, so that a key valid on one is valid on all.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("it is empty")
    } else if key.starts_with('/') || key.ends_with('/') {
        Some("it starts or ends with `/`")
    } else if key.split('/').any(|s| s.is_empty() || s.starts_with('.')) {
        // Dot segments could escape a directory store, and the local store keeps its
        // temporary files under `.partial/`.
        Some("it has an empty segment or one starting with `.`")
    } else if key.len() > 1024 {
        Some("it is longer than 1024 bytes")
    } else if key.chars().any(|c| c.is_control() || c == '\\') {
        Some("it holds a control character or `\\`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_or_collide_are_refused() {
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "./a",
            ".partial/x",
            "a\\b",
            "a\nb",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        validate_key("backups/20261128T021530Z-k3f9/index.json").unwrap();
    }

    #[test]
    fn not_found_maps_to_storage_with_the_key() {
        let err: Error = StoreError::NotFound {
            store: "s".into(),
            key: "objects/x".into(),
        }
        .into();
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert_eq!(err.context().object.as_deref(), Some("objects/x"));
    }
}
