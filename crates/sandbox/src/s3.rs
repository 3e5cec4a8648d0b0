//! An in-process S3 server (s3s + s3s-fs) on a free loopback port, with SigV4 credentials.
//! Buckets are folders under its root and objects plain files, easy to corrupt on purpose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use vigia_core::{Error, ErrorKind, Result};

pub const REGION: &str = "us-east-1";

/// A running server; dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct S3Server {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Starts a server on 127.0.0.1 with a fresh root and random credentials. Needs a tokio
    /// runtime (the server runs as a task on it).
    pub async fn start() -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("vgs3-")
            .tempdir()
            .map_err(|e| Error::io("create", Path::new("/tmp"), e))?;
        let fs = s3s_fs::FileSystem::new(root.path()).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("s3s-fs cannot use {}: {e:?}", root.path().display()),
            )
        })?;
        let access_key = "vigia-sandbox".to_owned();
        let secret_key = hex::encode(vigia_core::random_bytes::<16>());
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen on 127.0.0.1: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(Self {
            addr,
            access_key,
            secret_key,
            root,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Creates a bucket (a folder under the root).
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let dir = self.bucket_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))
    }

    /// The server's root folder: one folder per bucket, plus s3s-fs's in-flight upload parts
    /// (`.upload_id-*`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Where the bucket's objects are kept, as plain files named by key.
    pub fn bucket_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
