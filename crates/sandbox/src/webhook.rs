//! A Slack-compatible webhook receiver on a real socket: every POST body is kept as JSON
//! (`vigia-sandbox serve webhook` prints each as one line), and every GET's path (a
//! heartbeat). It answers a set status, so a test can make the channel refuse.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;
use vigia_core::{Error, Result};

type Sink = Arc<dyn Fn(serde_json::Value) + Send + Sync>;

/// A running receiver; dropping it stops it.
pub struct WebhookServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
    gets: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WebhookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WebhookServer {
    /// On `127.0.0.1:port` (0: a free port), answering `status` to every POST. Needs a
    /// tokio runtime.
    pub async fn start(port: u16, status: u16) -> Result<Self> {
        Self::start_with(port, status, Arc::new(|_| {})).await
    }

    /// [`Self::start`], also handing each body to `sink`.
    pub async fn start_with(port: u16, status: u16, sink: Sink) -> Result<Self> {
        let status = StatusCode::from_u16(status)
            .map_err(|e| Error::invalid_input(format!("status {status}: {e}")))?;
        let (listener, addr) = crate::odoo_http::listen(port).await?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&received);
        let sink: Sink = Arc::new(move |value: serde_json::Value| {
            keep.lock().expect("not poisoned").push(value.clone());
            sink(value);
        });
        let gets = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept_loop(listener, status, sink, Arc::clone(&gets)));
        Ok(Self {
            addr,
            received,
            gets,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every body received so far (a body that is not JSON is kept as a string).
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().expect("not poisoned").clone()
    }

    /// The path and query of every GET so far.
    pub fn gets(&self) -> Vec<String> {
        self.gets.lock().expect("not poisoned").clone()
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    status: StatusCode,
    sink: Sink,
    gets: Arc<Mutex<Vec<String>>>,
) {
    let http = ConnBuilder::new(TokioExecutor::new());
    while let Ok((socket, _)) = listener.accept().await {
        let (sink, gets) = (Arc::clone(&sink), Arc::clone(&gets));
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (sink, gets) = (Arc::clone(&sink), Arc::clone(&gets));
            async move {
                let post = req.method() == Method::POST;
                let get = req.method() == Method::GET;
                if get {
                    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    gets.lock().expect("not poisoned").push(path.to_owned());
                }
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes);
                if post && let Ok(body) = body {
                    let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
                    });
                    sink(value);
                }
                let status = if post {
                    status
                } else {
                    StatusCode::METHOD_NOT_ALLOWED
                };
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::from_static(b"ok")))
                        .expect("a valid response"),
                )
            }
        });
        let conn = http
            .serve_connection(TokioIo::new(socket), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
