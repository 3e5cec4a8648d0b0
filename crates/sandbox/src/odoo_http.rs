//! An HTTP server that answers like Odoo 19 where Vigia asks (DOMAIN.md section 2), on a real
//! socket: `GET /web/health` (with the `db_server_status` probe of PostgreSQL's socket),
//! `POST /web/webclient/version_info` and the pages of [`crate::odoo_site`], on a main port
//! and a second "gevent" port as Odoo's two servers. Odoo itself cannot run here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;
use vigia_core::{Error, ErrorKind, Result};

use crate::odoo_site::{self, Port, Site};

/// How the server's `/web/health` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// 200 pass; with `db_server_status`, a connection to PostgreSQL's socket decides.
    Pass {
        /// PostgreSQL's socket file (`.../.s.PGSQL.5432`); None: the probe always passes.
        db_socket: Option<PathBuf>,
    },
    /// 500 fail, as an Odoo that cannot reach its database answers.
    Fail,
    /// 301 to this location, as nginx answers plain HTTP when it forces HTTPS.
    Redirect(String),
    /// Accepts the request and never answers, as a stuck worker.
    Hang,
    /// Passes, after this long (a busy Odoo; the health benchmark's 2 s).
    Slow(std::time::Duration),
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct OdooServer {
    addr: SocketAddr,
    gevent: SocketAddr,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl OdooServer {
    /// Listens on `127.0.0.1:port` (0: a free port). Needs a tokio runtime.
    pub async fn start(port: u16, health: Health) -> Result<Self> {
        Self::start_site(port, 0, health, Site::default()).await
    }

    /// Listens on `port` and, as Odoo's evented server, on `gevent_port` (0: free ports).
    pub async fn start_site(
        port: u16,
        gevent_port: u16,
        health: Health,
        site: Site,
    ) -> Result<Self> {
        let (main, addr) = listen(port).await?;
        let (evented, gevent) = listen(gevent_port).await?;
        let shared = Arc::new((health, site));
        let tasks = [
            tokio::spawn(accept_loop(main, Arc::clone(&shared), Port::Main)),
            tokio::spawn(accept_loop(evented, shared, Port::Gevent)),
        ];
        Ok(Self {
            addr,
            gevent,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT`, Odoo's internal URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` of the evented server (Odoo's 8072), where nginx sends
    /// `/websocket`.
    pub fn gevent_url(&self) -> String {
        format!("http://{}", self.gevent)
    }
}

impl Drop for OdooServer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// A listener on `127.0.0.1:port` (0: a free port) and its address; the sandbox's HTTP
/// servers all start here.
pub(crate) async fn listen(port: u16) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen on port {port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    Ok((listener, addr))
}

async fn accept_loop(listener: TcpListener, shared: Arc<(Health, Site)>, port: Port) {
    let http = ConnBuilder::new(TokioExecutor::new());
    while let Ok((socket, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let shared = Arc::clone(&shared);
            async move {
                let (health, site) = &*shared;
                let page =
                    odoo_site::answer(req.method(), req.uri().path(), req.headers(), site, port);
                Ok::<_, Infallible>(match page {
                    Some(page) => page,
                    None => answer(&req, health).await,
                })
            }
        });
        // With upgrades, so that a 101 hands the connection over as Odoo's would.
        let conn = http
            .serve_connection_with_upgrades(TokioIo::new(socket), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

async fn answer(req: &Request<hyper::body::Incoming>, health: &Health) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/web/health") if matches!(health, Health::Redirect(_) | Health::Hang) => {
            if let Health::Redirect(location) = health {
                return Response::builder()
                    .status(StatusCode::MOVED_PERMANENTLY)
                    .header("location", location.as_str())
                    .body(Full::new(Bytes::from_static(
                        b"<html>301 Moved Permanently</html>",
                    )))
                    .expect("a valid response");
            }
            std::future::pending::<()>().await;
            unreachable!("a hanging server never answers")
        }
        (&Method::GET, "/web/health") if matches!(health, Health::Slow(_)) => {
            if let Health::Slow(delay) = health {
                tokio::time::sleep(*delay).await;
            }
            json(StatusCode::OK, r#"{"status": "pass"}"#)
        }
        (&Method::GET, "/web/health") => {
            // Any non-empty value of db_server_status asks for the probe.
            let probe = req.uri().query().is_some_and(|q| {
                q.split('&').any(|kv| {
                    kv.strip_prefix("db_server_status=")
                        .is_some_and(|v| !v.is_empty())
                })
            });
            let reachable = match health {
                Health::Fail | Health::Redirect(_) | Health::Hang | Health::Slow(_) => false,
                Health::Pass { db_socket: None } => true,
                Health::Pass {
                    db_socket: Some(socket),
                } => !probe || tokio::net::UnixStream::connect(socket).await.is_ok(),
            };
            let (status, body) = match (reachable, probe) {
                (true, true) => (
                    StatusCode::OK,
                    r#"{"status": "pass", "db_server_status": true}"#,
                ),
                (true, false) => (StatusCode::OK, r#"{"status": "pass"}"#),
                (false, _) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"status": "fail", "db_server_status": false}"#,
                ),
            };
            json(status, body)
        }
        (&Method::POST, "/web/webclient/version_info") => json(
            StatusCode::OK,
            r#"{"jsonrpc": "2.0", "id": null, "result": {"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""], "server_serie": "19.0", "protocol_version": 1}}"#,
        ),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "text/html; charset=utf-8")
            .body(Full::new(Bytes::from_static(b"<h1>Not Found</h1>")))
            .expect("a valid response"),
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid response")
}
