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
        let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
        std::fs::write(&cert, cert_chain_pem).map_err(|e| Error::io("write", &cert, e))?;
        std::fs::write(&key, key_pem).map_err(|e| Error::io("write", &key, e))?;
        let mut server = Self::start_tls(
            &format!(
                "ssl_certificate {}; ssl_certificate_key {}; {more} \
                 location / {{ return 200 \"ok\"; }}",
                cert.display(),
                key.display()
            ),
            true,
        )?;
        server.files = Some(files);
        Ok(server)
    }

    fn start(server_body: &str) -> Result<Self> {
        Self::start_tls(server_body, false)
    }

    fn start_tls(server_body: &str, tls: bool) -> Result<Self> {
        if !Path::new(NGINX).exists() {
            return Err(Error::config(format!("{NGINX} is missing: {PACKAGE_HINT}")));
        }
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let port = free_port()?;
        let d = dir.path().display();
        let ssl = if tls { " ssl" } else { "" };
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port}{ssl};\n    server_name _;\n    {server_body}\n  }}\n}}\n"
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
