//! A throwaway Redis (Debian's `redis-server`) on a free loopback port, with a password and
//! no persistence. Killed on drop.

use std::process::Command;

use vigia_core::Result;

use crate::local_server::{LocalServer, free_port};

const PACKAGE_HINT: &str = "install the Debian package redis-server (scripts/test does)";

#[derive(Debug)]
pub struct RedisServer {
    server: LocalServer,
    password: String,
}

impl RedisServer {
    /// `redis-server --bind 127.0.0.1 --port P --save '' --requirepass PASSWORD`, with
    /// `maxmemory` in bytes (0: none).
    pub fn start(password: &str, maxmemory: u64) -> Result<Self> {
        let port = free_port()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--requirepass", password])
            .args(["--maxmemory", &maxmemory.to_string()]);
        Ok(Self {
            server: LocalServer::start(command, port, "redis-server", PACKAGE_HINT)?,
            password: password.to_owned(),
        })
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.server.addr)
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}
