//! A throwaway nginx (Debian's nginx-light) on a free loopback port, as the stack's proxy in
//! front of Odoo: plain HTTP, its own prefix folder, no system service. `nginx -p DIR -c
//! DIR/nginx.conf -g 'daemon off;'`, killed on drop.

use std::path::Path;
use std::process::Command;

use vigia_core::{Error, Result};

use crate::local_server::{LocalServer, free_port};

const PACKAGE_HINT: &str = "install the Debian package nginx-light (scripts/test does)";
const NGINX: &str = "/usr/sbin/nginx";

#[derive(Debug)]
pub struct NginxServer {
    server: LocalServer,
    _dir: tempfile::TempDir,
    /// The certificate and key of an HTTPS server.
    files: Option<tempfile::TempDir>,
    /// The plain-HTTP port of a site that also redirects it.
    http_port: Option<u16>,
}

/// Mozilla's "intermediate" TLS 1.2 suites (guidelines 6.0; DOMAIN.md 5).
pub const MOZILLA_INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305";

/// The stack's nginx in front of an Odoo with two ports, and the mistakes the smoke test
/// must catch. `Default` is the good config: Mozilla intermediate, HSTS and the other
/// headers on every answer, `/websocket` to the evented port, the database manager blocked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one mistake in the config"
)]
pub struct OdooSite {
    /// TLS 1.0, 1.1 and 1.2 with every suite, DHE and CBC included (`@SECLEVEL=0`); no
    /// TLS 1.3.
    pub weak_tls: bool,
    /// The asset location has its own `add_header Cache-Control`, which drops the server's
    /// headers there (HSTS, nosniff) without a word.
    pub assets_drop_headers: bool,
    /// nginx adds `X-Frame-Options` without hiding Odoo's, so the login page has it twice.
    pub duplicate_frame_options: bool,
    /// `/websocket` goes to the HTTP workers instead of the evented port.
    pub websocket_to_main: bool,
    /// `/web/database/` is proxied to Odoo instead of blocked.
    pub database_open: bool,
    /// No rate limit on `/web/login` (the stack's is 5 a minute): for benchmarks that ask it
    /// more often than that.
    pub no_login_limit: bool,
}

impl NginxServer {
    /// Proxies everything to `upstream` (`http://127.0.0.1:PORT`), as the stack's nginx
    /// proxies Odoo.
    pub fn proxy(upstream: &str) -> Result<Self> {
        Self::start(&format!(
            "location / {{ proxy_pass {upstream}; proxy_set_header Host $host; \
             proxy_connect_timeout 2s; }}"
        ))
    }

    /// As [`NginxServer::proxy`], answering 503 while `maintenance` exists, as the stack's
    /// site does during a deploy's upgrade (`if (-f ..) { return 503; }`).
    pub fn proxy_with_maintenance(upstream: &str, maintenance: &std::path::Path) -> Result<Self> {
        Self::start(&format!(
            "location / {{ if (-f {}) {{ return 503; }} proxy_pass {upstream}; \
             proxy_set_header Host $host; proxy_connect_timeout 2s; }}",
            maintenance.display()
        ))
    }

    /// Answers every plain-HTTP request with a 301 to https, as nginx forcing HTTPS does.
    pub fn redirect_to_https() -> Result<Self> {
        Self::start("return 301 https://$host$request_uri;")
    }

    /// HTTPS on its port with `cert_chain_pem` (leaf first) and `key_pem`; `more` adds
    /// `server` directives (protocols, ciphers). Every path answers 200 "ok".
    pub fn https(cert_chain_pem: &str, key_pem: &str, more: &str) -> Result<Self> {
        let files = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let body = tls_body(files.path(), "default", cert_chain_pem, key_pem, more)?;
        let mut server = Self::start_tls(&body, true, None)?;
        server.files = Some(files);
        Ok(server)
    }

    /// The stack's site: HTTPS on `port()` in front of Odoo's `main` and `gevent` URLs, and
    /// plain HTTP on `http_port()` redirecting to it; `site` picks the mistakes.
    pub fn odoo(main: &str, gevent: &str, chain: (&str, &str), site: &OdooSite) -> Result<Self> {
        let files = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let cert = files.path().join("site.pem");
        let key = files.path().join("site.key");
        std::fs::write(&cert, chain.0).map_err(|e| Error::io("write", &cert, e))?;
        std::fs::write(&key, chain.1).map_err(|e| Error::io("write", &key, e))?;
        let tls = if site.weak_tls {
            let dh = files.path().join("dhparam.pem");
            let made = Command::new("openssl")
                .args(["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"])
                .arg("dh_param:ffdhe2048")
                .arg("-out")
                .arg(&dh)
                .status()
                .map_err(|e| {
                    Error::config(format!(
                        "cannot run openssl ({e}): install the Debian package openssl"
                    ))
                })?;
            if !made.success() {
                return Err(Error::internal("openssl genpkey made no DH parameters"));
            }
            format!(
                "ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers ALL:@SECLEVEL=0; ssl_dhparam {};",
                dh.display()
            )
        } else {
            format!(
                "ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS}; \
                 ssl_prefer_server_ciphers off;"
            )
        };
        // Odoo sets X-Frame-Options on some pages only: nginx sets it everywhere, after
        // hiding Odoo's (forgetting that sends it twice on the login page).
        let frame = if site.duplicate_frame_options {
            "add_header X-Frame-Options SAMEORIGIN always;"
        } else {
            "proxy_hide_header X-Frame-Options; add_header X-Frame-Options SAMEORIGIN always;"
        };
        let websocket = if site.websocket_to_main { main } else { gevent };
        let database = if site.database_open {
            String::new()
        } else {
            "location /web/database/ { return 404; }".to_owned()
        };
        let assets_headers = if site.assets_drop_headers {
            "add_header Cache-Control \"public, max-age=604800\";"
        } else {
            ""
        };
        let login_limit = if site.no_login_limit {
            ""
        } else {
            "limit_req zone=login burst=3 nodelay; limit_req_status 429;"
        };
        let body = format!(
            "ssl_certificate {cert}; ssl_certificate_key {key}; {tls}\n    \
             add_header Strict-Transport-Security \"max-age=63072000\" always;\n    \
             add_header X-Content-Type-Options nosniff always;\n    \
             add_header Referrer-Policy strict-origin-when-cross-origin always;\n    {frame}\n    \
             proxy_set_header Host $host; proxy_set_header X-Forwarded-Proto $scheme;\n    \
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    \
             location /websocket {{ proxy_pass {websocket}; proxy_http_version 1.1;\n      \
             proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";\n      \
             proxy_set_header Host $host; proxy_set_header X-Forwarded-Proto $scheme; }}\n    \
             {database}\n    \
             location = /web/login {{ {login_limit} proxy_pass {main}; }}\n    \
             location /web/assets/ {{ proxy_pass {main}; {assets_headers} }}\n    \
             location / {{ proxy_pass {main}; }}",
            cert = cert.display(),
            key = key.display(),
        );
        let http_port = free_port()?;
        // The stack's login limit (5 a minute, burst 3): a smoke test asks /web/login once.
        let redirect = format!(
            "  limit_req_zone $binary_remote_addr zone=login:1m rate=5r/m;\n  server {{\n    listen 127.0.0.1:{http_port};\n    server_name _;\n    \
             return 301 https://$host$request_uri;\n  }}\n"
        );
        let mut server = Self::start_conf(&body, true, &redirect)?;
        server.files = Some(files);
        server.http_port = Some(http_port);
        Ok(server)
    }

    /// The plain-HTTP port of [`Self::odoo`]'s site.
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    /// HTTPS serving `named` (chain, key) to clients that ask for `host` by SNI, and
    /// `default` to the others: what tells a client that sends the right name apart.
    pub fn https_by_name(host: &str, named: (&str, &str), default: (&str, &str)) -> Result<Self> {
        let files = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let first = tls_body(files.path(), "default", default.0, default.1, "")?;
        let second = tls_body(files.path(), "named", named.0, named.1, "")?;
        let mut server = Self::start_tls(&first, true, Some((host, &second)))?;
        server.files = Some(files);
        Ok(server)
    }

    fn start(server_body: &str) -> Result<Self> {
        Self::start_tls(server_body, false, None)
    }

    fn start_tls(server_body: &str, tls: bool, named: Option<(&str, &str)>) -> Result<Self> {
        Self::start_conf_with(server_body, tls, |port, ssl| {
            named.map_or(String::new(), |(host, body)| {
                format!("  server {{\n    listen 127.0.0.1:{port}{ssl};\n    server_name {host};\n    {body}\n  }}\n")
            })
        })
    }

    fn start_conf(server_body: &str, tls: bool, more: &str) -> Result<Self> {
        Self::start_conf_with(server_body, tls, |_, _| more.to_owned())
    }

    /// nginx with one server on a free port (`server_body` inside it) and the servers
    /// `more(port, ssl)` gives.
    fn start_conf_with(
        server_body: &str,
        tls: bool,
        more: impl FnOnce(u16, &str) -> String,
    ) -> Result<Self> {
        if !Path::new(NGINX).exists() {
            return Err(Error::config(format!("{NGINX} is missing: {PACKAGE_HINT}")));
        }
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let port = free_port()?;
        let d = dir.path().display();
        let ssl = if tls { " ssl" } else { "" };
        let named = more(port, ssl);
        // One process, no master: killing it (on drop, or with the parent) leaves no worker
        // serving the port.
        let conf = format!(
            "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port}{ssl};\n    server_name _;\n    {server_body}\n  }}\n{named}}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| Error::io("write", &conf_path, e))?;
        let mut command = Command::new(NGINX);
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"]);
        Ok(Self {
            server: LocalServer::start(command, port, "nginx", PACKAGE_HINT)?,
            _dir: dir,
            files: None,
            http_port: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }
}

/// A `server` body serving `chain` and `key` (written under `dir` as `<name>.pem`).
fn tls_body(dir: &Path, name: &str, chain: &str, key: &str, more: &str) -> Result<String> {
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, chain).map_err(|e| Error::io("write", &cert_path, e))?;
    std::fs::write(&key_path, key).map_err(|e| Error::io("write", &key_path, e))?;
    Ok(format!(
        "ssl_certificate {}; ssl_certificate_key {}; {more} location / {{ return 200 \"ok\"; }}",
        cert_path.display(),
        key_path.display()
    ))
}
