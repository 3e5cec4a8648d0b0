//! A server run as a child process on a free loopback port: started, waited for until it
//! accepts connections, killed on drop. Shared by the moto and Redis servers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct LocalServer {
    pub addr: SocketAddr,
    child: Child,
}

impl LocalServer {
    /// Runs `command` (which must listen on `port`); `hint` says how to install `name`.
    pub fn start(command: Command, port: u16, name: &str, hint: &str) -> Result<Self> {
        Self::start_with_output(command, port, name, hint, Stdio::null())
    }

    /// [`Self::start`], with the server's stdout sent to `stdout` (what it received).
    pub fn start_with_output(
        mut command: Command,
        port: u16,
        name: &str,
        hint: &str,
        stdout: Stdio,
    ) -> Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null());
        vigia_core::process::die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| {
            let text = if e.kind() == std::io::ErrorKind::NotFound {
                format!("{name} is not installed: {hint}")
            } else {
                format!("cannot start {name}: {e}")
            };
            Error::new(ErrorKind::Io, text)
        })?;
        let mut server = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("{name} exited with {status} while starting: {hint}"),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("{name} did not listen within {START_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the kernel picks it; the server binds it right after).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot bind 127.0.0.1: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
}
