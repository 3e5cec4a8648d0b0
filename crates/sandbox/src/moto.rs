//! moto's S3 server (PyPI `moto[server]`) on a free loopback port: a second, AWS-like S3
//! whose conditional writes (`If-None-Match: *`, `If-Match`) are atomic, unlike s3s-fs's,
//! which checks before it writes. Killed on drop.

use std::process::Command;

use vigia_core::Result;

use crate::local_server::{LocalServer, free_port};

const PACKAGE_HINT: &str = "install it with `python3 -m pip install 'moto[server]'` \
                            (scripts/test does), or put moto_server on PATH";

/// A running `moto_server`; any access key and secret key are accepted.
#[derive(Debug)]
pub struct MotoServer(LocalServer);

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and waits until it answers.
    pub fn start() -> Result<Self> {
        let port = free_port()?;
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        LocalServer::start(command, port, "moto_server", PACKAGE_HINT).map(Self)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.0.addr)
    }
}
