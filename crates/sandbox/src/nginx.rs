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
        if !Path::new(NGINX).exists() {
            return Err(Error::config(format!("{NGINX} is missing: {PACKAGE_HINT}")));
        }
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let port = free_port()?;
        let d = dir.path().display();
        let ssl = if tls { " ssl" } else { "" };
        let named = named.map_or(String::new(), |(host, body)| {
            format!("  server {{\n    listen 127.0.0.1:{port}{ssl};\n    server_name {host};\n    {body}\n  }}\n")
        });
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
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
