//! The pages of the Odoo-like server that the smoke test reads (DOMAIN.md section 2): the
//! login page with its asset bundles, Odoo's own framing headers and session cookie, the
//! websocket on the "gevent" port (the main port refuses it as Odoo's workers do), and the
//! database manager as Odoo answers with `list_db = False` (or `True`).

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;
use sha1::{Digest, Sha1};

/// What the site does besides `/web/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    /// One bundle the login page links answers 404, as after an upgrade that left the
    /// assets unbuilt.
    pub missing_asset: bool,
    /// `list_db = True`: the database manager and list answer, as production must not.
    pub list_db: bool,
    /// The evented port answers 101 with a canned `Sec-WebSocket-Accept` (not computed from
    /// the client's key), as something other than Odoo taking the upgrade would.
    pub canned_upgrade: bool,
}

/// Which of Odoo's two ports a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    /// The HTTP workers (8069).
    Main,
    /// The evented server (8072), the only one that can hold a websocket.
    Gevent,
}

pub(crate) const BUNDLES: [&str; 3] = [
    "/web/assets/3f2a1c9/web.assets_frontend.min.css",
    "/web/assets/3f2a1c9/web.assets_frontend_minimal.min.js",
    "/web/assets/3f2a1c9/web.assets_frontend_lazy.min.js",
];

/// The message Odoo raises when a websocket reaches an HTTP worker.
pub const WEBSOCKET_ON_MAIN_PORT: &str =
    "Couldn't bind the websocket. Is the connection opened on the evented port (8072)?";

/// The answer for a page of the site, or None when the path is not one of them.
pub(crate) fn answer(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    site: &Site,
    port: Port,
) -> Option<Response<Full<Bytes>>> {
    Some(match (method, path) {
        (&Method::GET, "/web/login") => login(headers),
        (&Method::GET, asset) if asset.starts_with("/web/assets/") => bundle(asset, site),
        (&Method::GET, "/websocket") if port == Port::Main => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html; charset=utf-8",
            format!("<h1>Internal Server Error</h1><p>RuntimeError: {WEBSOCKET_ON_MAIN_PORT}</p>"),
        ),
        (&Method::GET, "/websocket") => upgrade(headers, site.canned_upgrade),
        (&Method::GET, "/websocket/health") => respond(
            StatusCode::OK,
            "application/json",
            r#"{"status": "pass"}"#.to_owned(),
        ),
        (_, "/web/database/manager") if site.list_db => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><form action=\"/web/database/create\">Create database</form>\
             <a href=\"/web/database/backup\">Backup</a></body></html>"
                .to_owned(),
        ),
        (_, "/web/database/manager") => respond(
            StatusCode::FORBIDDEN,
            "text/html; charset=utf-8",
            "<h1>Forbidden</h1><p>The database manager has been disabled by the administrator</p>"
                .to_owned(),
        ),
        (&Method::POST, "/web/database/list") if site.list_db => respond(
            StatusCode::OK,
            "application/json",
            r#"{"jsonrpc": "2.0", "id": null, "result": ["odoo"]}"#.to_owned(),
        ),
        (&Method::POST, "/web/database/list") => respond(
            StatusCode::OK,
            "application/json",
            r#"{"jsonrpc": "2.0", "id": null, "error": {"code": 200, "message": "Odoo Server Error", "data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}}}"#
                .to_owned(),
        ),
        _ => return None,
    })
}

/// The login page: its bundles, `X-Frame-Options` and a CSP `frame-ancestors` as Odoo sets
/// them, and a session cookie that is `Secure` only when the proxy says the client came over
/// HTTPS (`X-Forwarded-Proto`, Odoo's proxy mode).
fn login(headers: &HeaderMap) -> Response<Full<Bytes>> {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "session_id=8d3f0a6e1b2c4d5e6f708192a3b4c5d6e7f80912; Expires=Sun, 06 Dec 2026 00:00:00 GMT; \
         Max-Age=604800; HttpOnly; Path=/; SameSite=Lax{}",
        if https { "; Secure" } else { "" }
    );
    let [css, minimal, lazy] = BUNDLES;
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en-US\"><head><meta charset=\"utf-8\"/><title>Odoo</title>\n\
         <link type=\"text/css\" rel=\"stylesheet\" href=\"{css}\"/>\n\
         <script type=\"text/javascript\" src=\"{minimal}\"></script>\n\
         <script type=\"text/javascript\" src=\"{lazy}\" defer=\"defer\"></script>\n\
         </head><body><form class=\"oe_login_form\" action=\"/web/login\" method=\"post\">\
         <input type=\"text\" name=\"login\"/><input type=\"password\" name=\"password\"/>\
         </form></body></html>\n"
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/html; charset=utf-8")
        .header("x-frame-options", "SAMEORIGIN")
        .header("content-security-policy", "frame-ancestors 'self'")
        .header("set-cookie", cookie)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn bundle(path: &str, site: &Site) -> Response<Full<Bytes>> {
    let known = BUNDLES.contains(&path);
    if !known || (site.missing_asset && path == BUNDLES[2]) {
        return respond(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            "<h1>Not Found</h1>".to_owned(),
        );
    }
    let (kind, body) = if path == BUNDLES[0] {
        ("text/css; charset=utf-8", "body{margin:0}")
    } else {
        (
            "application/javascript; charset=utf-8",
            "odoo.define('x', [], function(){});",
        )
    };
    respond(StatusCode::OK, kind, body.to_owned())
}

/// The websocket handshake as Odoo's evented server answers it: 101 with the accept key
/// (RFC 6455), or 400 naming the missing headers.
fn upgrade(headers: &HeaderMap, canned: bool) -> Response<Full<Bytes>> {
    let key = headers.get("sec-websocket-key");
    let version = headers.get("sec-websocket-version");
    let upgrade = headers
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    match (key, version) {
        (Some(key), Some(version)) if upgrade && version.as_bytes() == b"13" => Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header(
                "sec-websocket-accept",
                if canned {
                    accept_key(b"dGhlIHNhbXBsZSBub25jZQ==")
                } else {
                    accept_key(key.as_bytes())
                },
            )
            .body(Full::new(Bytes::new()))
            .expect("a valid response"),
        _ => respond(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "Empty or missing header(s): Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version"
                .to_owned(),
        ),
    }
}

/// RFC 6455's `Sec-WebSocket-Accept` for a client's key.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

fn respond(status: StatusCode, kind: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
