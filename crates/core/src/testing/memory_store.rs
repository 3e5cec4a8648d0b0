//! `MemoryStore`: an `ObjectStore` in a map, conditional writes honoured atomically, each
//! object stamped with the store's own clock (which a test moves), for unit tests that start
//! no server.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::AsyncReadExt;

use crate::ports::store::{
    ObjectMeta, ObjectReader, ObjectStore, SMALL_OBJECT_MAX, StoreError, WriteCondition, too_large,
    validate_key,
};

#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    objects: BTreeMap<String, (Bytes, ObjectMeta)>,
    /// Every call, in order: `put key`, `get key`, `list prefix`, ...
    ops: Vec<String>,
    now: Timestamp,
    writes: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Timestamp::now())
    }
}

impl MemoryStore {
    /// An empty store whose clock reads `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                ops: Vec::new(),
                now,
                writes: 0,
            }),
        }
    }

    /// Moves the store's clock: objects written from now on are this old.
    pub fn set_time(&self, now: Timestamp) {
        self.lock().now = now;
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Every call so far, in order (`put key`, `get key`, `list prefix`, `delete key`, ...):
    /// a test that must touch nothing asserts it is empty.
    pub fn ops(&self) -> Vec<String> {
        self.lock().ops.clone()
    }

    fn log(&self, op: &str, key: &str) {
        self.lock().ops.push(format!("{op} {key}"));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            store: self.location(),
            key: key.to_owned(),
        }
    }

    fn store(
        &self,
        key: &str,
        data: Bytes,
        condition: Option<&WriteCondition>,
    ) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let mut state = self.lock();
        let current = state.objects.get(key).and_then(|(_, m)| m.etag.clone());
        let holds = match condition {
            None => true,
            Some(WriteCondition::Absent) => current.is_none(),
            Some(WriteCondition::Matches(etag)) => current.as_ref() == Some(etag),
        };
        if !holds {
            return Err(StoreError::ConditionFailed {
                store: self.location(),
                key: key.to_owned(),
            });
        }
        state.writes += 1;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size_bytes: data.len() as u64,
            modified: Some(state.now),
            etag: Some(format!("\"{}\"", state.writes)),
        };
        state.objects.insert(key.to_owned(), (data, meta.clone()));
        Ok(meta)
    }

    fn read(&self, key: &str) -> Result<(Bytes, ObjectMeta), StoreError> {
        validate_key(key)?;
        self.lock()
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key))
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn location(&self) -> String {
        "memory store".to_owned()
    }

    async fn put(&self, key: &str, mut body: ObjectReader) -> Result<ObjectMeta, StoreError> {
        self.log("put", key);
        validate_key(key)?;
        let mut data = Vec::new();
        body.read_to_end(&mut data)
            .await
            .map_err(|e| StoreError::Source {
                key: key.to_owned(),
                source: e,
            })?;
        self.store(key, data.into(), None)
    }

    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        self.log("put_if", key);
        self.store(key, data, Some(&condition))
    }

    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError> {
        self.log("get", key);
        let (data, meta) = self.read(key)?;
        if meta.size_bytes > SMALL_OBJECT_MAX {
            return Err(too_large(self.location(), key, meta.size_bytes));
        }
        Ok((data.to_vec(), meta))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError> {
        self.log("get", key);
        let (data, _) = self.read(key)?;
        let len = data.len() as u64;
        let Range { start, end } = range.unwrap_or(0..len);
        let (start, end) = (start.min(len), end.min(len).max(start.min(len)));
        let slice =
            data.slice(usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0));
        Ok(Box::pin(std::io::Cursor::new(slice)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.log("head", key);
        self.read(key).map(|(_, meta)| meta)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.log("list", prefix);
        Ok(self
            .lock()
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, (_, meta))| meta.clone())
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.log("delete", key);
        validate_key(key)?;
        self.lock().objects.remove(key);
        Ok(())
    }
}
