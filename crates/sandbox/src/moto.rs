//! moto's S3 server (PyPI `moto[server]`) on a free loopback port: a second, AWS-like S3
//! whose conditional writes (`If-None-Match: *`, `If-Match`) are atomic, unlike s3s-fs's,
//! which checks before it writes. Killed on drop.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

const PACKAGE_HINT: &str = "install it with `python3 -m pip install 'moto[server]'` \
                            (scripts/test does), or put moto_server on PATH";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `moto_server`; any access key and secret key are accepted.
#[derive(Debug)]
pub struct MotoServer {
    addr: SocketAddr,
    child: Child,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and waits until it answers.
    pub fn start() -> Result<Self> {
        let port = free_port()?;
        let mut command = Command::new("moto_server");
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        vigia_core::process::die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("moto_server is not installed: {PACKAGE_HINT}")
            } else {
                format!("cannot start moto_server: {e}")
            };
            Error::new(ErrorKind::Io, hint)
        })?;
        let mut server = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("moto_server exited with {status} while starting: {PACKAGE_HINT}"),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("moto_server did not listen within {START_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the kernel picks it; moto binds it right after).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot bind 127.0.0.1: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
}
