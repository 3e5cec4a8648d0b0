//! An in-process S3 server (s3s + s3s-fs) on a free loopback port, with SigV4 credentials.
//! Buckets are folders under its root and objects plain files, easy to corrupt on purpose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use vigia_core::{Error, ErrorKind, Result};

pub const REGION: &str = "us-east-1";

/// A failure the server injects, to test a client's retries over a real socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 InternalError.
    InternalError,
    /// 503 SlowDown: S3's throttling answer.
    SlowDown,
    /// The connection is closed without an answer.
    Reset,
}

/// Which requests fail: every `every`-th one (1 = all), counting from the first after it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    pub every: u64,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct Faults {
    plan: Mutex<Option<(FaultPlan, u64)>>,
    injected: AtomicU64,
}

impl Faults {
    /// The fault for the next request, if the plan says so.
    fn next(&self) -> Option<Fault> {
        let mut plan = self
            .plan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (p, seen) = plan.as_mut()?;
        *seen += 1;
        (*seen % p.every.max(1) == 0).then(|| {
            self.injected.fetch_add(1, Ordering::SeqCst);
            p.fault
        })
    }
}

/// A running server; dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct S3Server {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    root: tempfile::TempDir,
    faults: Arc<Faults>,
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
        let faults = Arc::new(Faults::default());
        let task = tokio::spawn(accept_loop(listener, service, Arc::clone(&faults)));
        Ok(Self {
            addr,
            access_key,
            secret_key,
            root,
            faults,
            task,
        })
    }

    /// Starts (or with None, stops) failing requests as `plan` says.
    pub fn set_faults(&self, plan: Option<FaultPlan>) {
        *self
            .faults
            .plan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = plan.map(|p| (p, 0));
    }

    /// How many requests have been failed on purpose so far.
    pub fn faults_injected(&self) -> u64 {
        self.faults.injected.load(Ordering::SeqCst)
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

async fn accept_loop(listener: TcpListener, service: S3Service, faults: Arc<Faults>) {
    let http = ConnBuilder::new(TokioExecutor::new());
    while let Ok((socket, _)) = listener.accept().await {
        let service = service.clone();
        let faults = Arc::clone(&faults);
        let with_faults =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let service = service.clone();
                let fault = faults.next();
                async move {
                    match fault {
                        None => hyper::service::Service::call(&service, req).await,
                        Some(Fault::Reset) => {
                            Err(s3s::HttpError::new("connection reset on purpose".into()))
                        }
                        Some(Fault::InternalError) => Ok(error_response(500, "InternalError")),
                        Some(Fault::SlowDown) => Ok(error_response(503, "SlowDown")),
                    }
                }
            });
        let conn = http
            .serve_connection(TokioIo::new(socket), with_faults)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn error_response(status: u16, code: &str) -> http::Response<s3s::Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the vigia sandbox</Message></Error>"
    );
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body))
        .expect("a valid response")
}
