//! Shared test helpers: store fixtures and a reader that makes large payloads without holding
//! them in memory.

#![allow(dead_code)]

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use vigia_backup::{LocalStore, S3Options, S3Store};
use vigia_core::config::Secret;
use vigia_core::ports::store::ObjectStore;
use vigia_sandbox::s3::{REGION, S3Server};

pub mod hooked;
pub mod hostile;
pub mod odoo;

pub const BUCKET: &str = "vigia-test";

/// A store and whatever keeps it alive.
pub enum Fixture {
    Local(tempfile::TempDir, Arc<LocalStore>),
    S3(S3Server, Arc<S3Store>),
}

impl Fixture {
    pub fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("store")).unwrap();
        Self::Local(dir, Arc::new(store))
    }

    pub async fn s3() -> Self {
        let server = S3Server::start().await.unwrap();
        server.create_bucket(BUCKET).unwrap();
        let store = S3Store::connect(S3Options {
            bucket: BUCKET.into(),
            prefix: "prod/".into(),
            endpoint: Some(server.endpoint()),
            region: REGION.into(),
            path_style: true,
            credentials: Some((
                Secret::new(server.access_key().into()),
                Secret::new(server.secret_key().into()),
            )),
        })
        .await;
        Self::S3(server, Arc::new(store))
    }

    /// Temporary files or upload parts left behind (none after a failed put).
    pub fn partial_writes(&self) -> Vec<String> {
        let (dir, prefix) = match self {
            Self::Local(dir, _) => (dir.path().join("store/.partial"), ""),
            Self::S3(server, _) => (server.root().to_path_buf(), ".upload_id-"),
        };
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    /// The S3 server behind an S3 fixture, to inject faults.
    pub fn s3_server(&self) -> &S3Server {
        match self {
            Self::S3(server, _) => server,
            Self::Local(..) => panic!("not an S3 fixture"),
        }
    }

    pub fn shared_store(&self) -> Arc<dyn ObjectStore> {
        match self {
            Self::Local(_, s) => s.clone(),
            Self::S3(_, s) => s.clone(),
        }
    }

    pub fn store(&self) -> &dyn ObjectStore {
        match self {
            Self::Local(_, s) => s.as_ref(),
            Self::S3(_, s) => s.as_ref(),
        }
    }
}

/// Byte `i` of every generated payload.
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 13)) as u8
}

/// Yields `len` pattern bytes in small reads, or fails with an I/O error once `fail_at` bytes
/// have been produced.
pub struct PatternReader {
    pos: u64,
    len: u64,
    fail_at: Option<u64>,
}

impl PatternReader {
    pub fn new(len: u64) -> Self {
        Self {
            pos: 0,
            len,
            fail_at: None,
        }
    }

    pub fn failing_at(len: u64, fail_at: u64) -> Self {
        Self {
            pos: 0,
            len,
            fail_at: Some(fail_at),
        }
    }
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            return Poll::Ready(Err(std::io::Error::other("the source failed on purpose")));
        }
        let limit = self.fail_at.unwrap_or(self.len).min(self.len);
        let n = (limit - self.pos)
            .min(buf.remaining() as u64)
            .min(64 * 1024);
        for _ in 0..n {
            buf.put_slice(&[pattern_byte(self.pos)]);
            self.pos += 1;
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads a stream to its end, checking it against the pattern from `offset`; returns its length.
pub async fn check_pattern(mut reader: vigia_core::ports::store::ObjectReader, offset: u64) -> u64 {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = offset;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            return pos - offset;
        }
        for b in &buf[..n] {
            assert_eq!(*b, pattern_byte(pos), "byte {pos} differs");
            pos += 1;
        }
    }
}

/// Writes `content` where Odoo would (`<dir>/<sha1[:2]>/<sha1>`) and returns its `store_fname`.
pub fn odoo_file(dir: &std::path::Path, content: &[u8]) -> String {
    vigia_sandbox::odoo::write_file(dir, content).unwrap()
}

/// A foreign lock record, as a run on another host that took the lock over writes it.
pub async fn take_lock_over(
    store: &dyn vigia_core::ports::store::ObjectStore,
    key: &vigia_backup::format::NameKey,
    owner: &str,
) {
    let now = jiff::Timestamp::now();
    let record = vigia_backup::LockRecord {
        owner: owner.into(),
        process: vigia_core::process::ProcessIdentity {
            host: "another-host".into(),
            pid: 1,
            boot_id: "b".into(),
            pid_ns: "pid:[1]".into(),
            start_ticks: 1,
        },
        started_at: now,
        heartbeat_at: now,
        nonce: "successor".into(),
    };
    store
        .put_bytes(
            vigia_backup::format::LOCK_KEY,
            key.seal(&record).unwrap().into(),
        )
        .await
        .unwrap();
}
