//! `FaultyStore`: any store with faults a test names (the Nth put fails, a get is cut short,
//! the store answers 503), so the error paths are exercised without a misbehaving server.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

use crate::ports::store::{ObjectMeta, ObjectReader, ObjectStore, StoreError, WriteCondition};

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    puts: AtomicU64,
    fail_put: AtomicU64,
    cut_gets_after: AtomicU64,
    unavailable: AtomicBool,
}

impl FaultyStore {
    /// `inner` with no fault yet.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            puts: AtomicU64::new(0),
            fail_put: AtomicU64::new(0),
            cut_gets_after: AtomicU64::new(u64::MAX),
            unavailable: AtomicBool::new(false),
        }
    }

    /// The `n`th put from now (1 = the next), streamed or conditional, fails.
    pub fn fail_put(&self, n: u64) {
        self.fail_put
            .store(self.puts.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Every streamed get ends with an error after `bytes` bytes.
    pub fn cut_gets_after(&self, bytes: u64) {
        self.cut_gets_after.store(bytes, Ordering::SeqCst);
    }

    /// Every call answers 503 (or stops doing so).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn answer(&self, action: &'static str, key: &str) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(self.backend(action, key, "503 Service Unavailable"));
        }
        Ok(())
    }

    fn count_put(&self, key: &str) -> Result<(), StoreError> {
        self.answer("put", key)?;
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_put.load(Ordering::SeqCst) {
            return Err(self.backend("put", key, "injected failure"));
        }
        Ok(())
    }

    fn backend(&self, action: &'static str, key: &str, message: &str) -> StoreError {
        StoreError::Backend {
            store: self.location(),
            action,
            key: key.to_owned(),
            message: message.to_owned(),
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    fn location(&self) -> String {
        format!("faulty {}", self.inner.location())
    }

    async fn put(&self, key: &str, body: ObjectReader) -> Result<ObjectMeta, StoreError> {
        self.count_put(key)?;
        self.inner.put(key, body).await
    }

    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        self.count_put(key)?;
        self.inner.put_bytes_if(key, data, condition).await
    }

    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError> {
        self.answer("get", key)?;
        self.inner.get_bytes_meta(key).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError> {
        self.answer("get", key)?;
        let reader = self.inner.get(key, range).await?;
        Ok(Box::pin(CutShort {
            inner: reader,
            left: self.cut_gets_after.load(Ordering::SeqCst),
        }))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.answer("head", key)?;
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.answer("list", prefix)?;
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.answer("delete", key)?;
        self.inner.delete(key).await
    }

    async fn clean_dead_writes(&self) -> Result<u64, StoreError> {
        self.answer("clean", "")?;
        self.inner.clean_dead_writes().await
    }
}

/// A reader that fails once `left` bytes have been read.
struct CutShort {
    inner: ObjectReader,
    left: u64,
}

impl AsyncRead for CutShort {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            // Cut only when there is more to read: an object of exactly that size reads whole.
            let mut probe = [0u8; 1];
            let mut one = ReadBuf::new(&mut probe);
            return match self.inner.as_mut().poll_read(cx, &mut one) {
                Poll::Ready(Ok(())) if one.filled().is_empty() => Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: the connection was cut",
                ))),
                other => other,
            };
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let mut bytes = vec![0u8; room];
        let mut limited = ReadBuf::new(&mut bytes);
        let polled = self.inner.as_mut().poll_read(cx, &mut limited);
        let n = limited.filled().len();
        buf.put_slice(&bytes[..n]);
        self.left -= n as u64;
        polled
    }
}
