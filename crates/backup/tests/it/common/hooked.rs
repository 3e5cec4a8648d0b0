//! A real store with a hook run before each operation: what another host does at that moment
//! (takes the lock over, deletes an object), or a slow link. Not a mock: every operation
//! still reaches the real store.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use vigia_core::ports::store::{ObjectMeta, ObjectReader, ObjectStore, StoreError, WriteCondition};

/// Runs before an operation: (operation name, key or prefix).
pub type Hook = Arc<dyn Fn(&'static str, &str) -> BoxFuture<'static, ()> + Send + Sync>;

pub struct Hooked {
    inner: Arc<dyn ObjectStore>,
    hook: Hook,
    /// Conditional writes become plain ones: a server that ignores If-None-Match / If-Match.
    ignore_conditions: bool,
    /// A conditional write that succeeds answers 412, as the retry of a request whose first
    /// answer was lost does.
    lose_replies: bool,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .field("ignore_conditions", &self.ignore_conditions)
            .field("lose_replies", &self.lose_replies)
            .finish_non_exhaustive()
    }
}

impl Hooked {
    pub fn wrap(inner: Arc<dyn ObjectStore>, hook: Hook) -> Arc<dyn ObjectStore> {
        Arc::new(Self {
            inner,
            hook,
            ignore_conditions: false,
            lose_replies: false,
        })
    }

    pub fn losing_replies(inner: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(Self {
            inner,
            hook: Arc::new(|_, _| Box::pin(async {})),
            ignore_conditions: false,
            lose_replies: true,
        })
    }

    pub fn ignoring_conditions(inner: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(Self {
            inner,
            hook: Arc::new(|_, _| Box::pin(async {})),
            ignore_conditions: true,
            lose_replies: false,
        })
    }
}

#[async_trait]
impl ObjectStore for Hooked {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(&self, key: &str, body: ObjectReader) -> Result<ObjectMeta, StoreError> {
        (self.hook)("put", key).await;
        self.inner.put(key, body).await
    }
    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        (self.hook)("put_bytes_if", key).await;
        if self.ignore_conditions {
            self.inner.put_bytes(key, data).await?;
            return self.inner.head(key).await;
        }
        let written = self.inner.put_bytes_if(key, data, condition).await?;
        if self.lose_replies {
            return Err(StoreError::ConditionFailed {
                store: self.location(),
                key: key.to_owned(),
            });
        }
        Ok(written)
    }
    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError> {
        (self.hook)("get_bytes_meta", key).await;
        self.inner.get_bytes_meta(key).await
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError> {
        (self.hook)("get", key).await;
        self.inner.get(key, range).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        (self.hook)("head", key).await;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        (self.hook)("list", prefix).await;
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (self.hook)("delete", key).await;
        self.inner.delete(key).await
    }
    async fn clean_dead_writes(&self) -> Result<u64, StoreError> {
        self.inner.clean_dead_writes().await
    }
}
