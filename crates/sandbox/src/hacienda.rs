//! A server that answers like the Ministerio de Hacienda's API where Vigia asks (DOMAIN.md
//! section 4), over HTTPS with a throwaway CA: the Keycloak token and logout of both realms
//! (`rut-stag` with client `api-stag`, `rut` with `api-prod`) and `GET` of a clave's status
//! at the reception API. Failure modes: every login refused (401), 503 everywhere, a slow
//! answer, a clock that is off. It counts the logins it got.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use vigia_core::{Error, Result};

use crate::tls::TestCa;

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Every login is refused, as with a wrong or expired password.
    Refuse,
    /// 503 to everything.
    Unavailable,
    /// Every answer comes after this long.
    Slow(Duration),
    /// The Date header is this many seconds off.
    Skewed(i64),
}

/// What the server accepts and knows.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub username: String,
    pub password: String,
    /// Claves it has received, with their `ind-estado`.
    pub claves: BTreeMap<String, String>,
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct HaciendaServer {
    addr: SocketAddr,
    ca_pem: String,
    logins: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    accounts: Accounts,
    mode: Mode,
    logins: Arc<AtomicUsize>,
}

impl HaciendaServer {
    /// HTTPS on `127.0.0.1:port` (0: a free port) with a certificate for 127.0.0.1 and
    /// localhost signed by a CA of its own ([`Self::ca_pem`]). Needs a tokio runtime.
    pub async fn start(port: u16, accounts: Accounts, mode: Mode) -> Result<Self> {
        let ca = TestCa::new("Hacienda test CA")?;
        let cert = ca.server_cert(&["127.0.0.1", "localhost"])?;
        let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
            .map_err(|e| Error::internal(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::internal(e.to_string()))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (listener, addr) = crate::odoo_http::listen(port).await?;
        let logins = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            accounts,
            mode,
            logins: Arc::clone(&logins),
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let task = tokio::spawn(accept_loop(listener, acceptor, state));
        Ok(Self {
            addr,
            ca_pem: ca.cert_pem(),
            logins,
            task,
        })
    }

    /// `[hacienda] idp-url`: `https://127.0.0.1:PORT/auth`.
    pub fn idp_url(&self) -> String {
        format!("https://{}/auth", self.addr)
    }

    /// `[hacienda] api-url`: `https://127.0.0.1:PORT/recepcion/v1/recepcion/`.
    pub fn api_url(&self) -> String {
        format!("https://{}/recepcion/v1/recepcion/", self.addr)
    }

    /// The CA a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Token requests received so far.
    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }
}

impl Drop for HaciendaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
) {
    let http = ConnBuilder::new(TokioExecutor::new());
    while let Ok((socket, _)) = listener.accept().await {
        let (acceptor, state, http) = (acceptor.clone(), Arc::clone(&state), http.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(socket).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(req, &state).await) }
            });
            let _ = http.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

async fn answer(req: Request<hyper::body::Incoming>, state: &State) -> Response<Full<Bytes>> {
    if let Mode::Slow(delay) = state.mode {
        tokio::time::sleep(delay).await;
    }
    if state.mode == Mode::Unavailable {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html",
            "<h1>503</h1>",
            state,
        );
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let realm = |p: &str| {
        p.strip_prefix("/auth/realms/")
            .and_then(|r| r.split_once('/'))
            .map(|(realm, rest)| (realm.to_owned(), rest.to_owned()))
    };
    match (method, realm(&path)) {
        (Method::POST, Some((realm, rest))) if rest == "protocol/openid-connect/token" => {
            state.logins.fetch_add(1, Ordering::SeqCst);
            let client = if realm == "rut" {
                "api-prod"
            } else {
                "api-stag"
            };
            let good = state.mode != Mode::Refuse
                && matches!(realm.as_str(), "rut" | "rut-stag")
                && form.get("grant_type").map(String::as_str) == Some("password")
                && form.get("client_id").map(String::as_str) == Some(client)
                && form.get("username") == Some(&state.accounts.username)
                && form.get("password") == Some(&state.accounts.password);
            if good {
                reply(
                    StatusCode::OK,
                    "application/json",
                    r#"{"access_token": "access-t0k3n", "expires_in": 300, "refresh_token": "refresh-t0k3n", "token_type": "bearer"}"#,
                    state,
                )
            } else {
                reply(
                    StatusCode::UNAUTHORIZED,
                    "application/json",
                    r#"{"error": "invalid_grant", "error_description": "Invalid user credentials"}"#,
                    state,
                )
            }
        }
        (Method::POST, Some((_, rest))) if rest == "protocol/openid-connect/logout" => {
            reply(StatusCode::NO_CONTENT, "text/plain", "", state)
        }
        (Method::GET, _) if path.starts_with("/recepcion/v1/recepcion/") => {
            if bearer.as_deref() != Some("bearer access-t0k3n")
                && bearer.as_deref() != Some("Bearer access-t0k3n")
            {
                return reply(StatusCode::UNAUTHORIZED, "text/plain", "", state);
            }
            let clave = path.trim_start_matches("/recepcion/v1/recepcion/");
            if let Some(estado) = state.accounts.claves.get(clave) {
                return reply(
                    StatusCode::OK,
                    "application/json",
                    &format!(r#"{{"clave": "{clave}", "ind-estado": "{estado}"}}"#),
                    state,
                );
            }
            let mut r = reply(StatusCode::NOT_FOUND, "text/plain", "", state);
            r.headers_mut().insert(
                "x-error-cause",
                http::HeaderValue::from_static("El comprobante no ha sido recibido"),
            );
            r
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "", state),
    }
}

fn reply(status: StatusCode, kind: &str, body: &str, state: &State) -> Response<Full<Bytes>> {
    let skew = match state.mode {
        Mode::Skewed(s) => s,
        _ => 0,
    };
    let offset = Duration::from_secs(skew.unsigned_abs());
    let now = std::time::SystemTime::now();
    let date = if skew >= 0 {
        now + offset
    } else {
        now - offset
    };
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .header("date", httpdate::fmt_http_date(date))
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid response")
}
