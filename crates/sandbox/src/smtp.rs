//! A throwaway SMTP server: aiosmtpd's debugging server (`python3 -m aiosmtpd -n -l
//! 127.0.0.1:P`), which prints every message it accepts; the output goes to a file the tests
//! read. Plain SMTP on loopback, no authentication. Killed on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use vigia_core::{Error, Result};

use crate::local_server::{LocalServer, free_port};

const PACKAGE_HINT: &str =
    "install the Python package aiosmtpd (python3 -m pip install aiosmtpd; scripts/test does)";

#[derive(Debug)]
pub struct SmtpServer {
    _server: LocalServer,
    port: u16,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// On a free port.
    pub fn start() -> Result<Self> {
        Self::start_on(free_port()?)
    }

    /// On `port` (to bring a stopped server back where the config points).
    pub fn start_on(port: u16) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let output = dir.path().join("received.txt");
        let file = std::fs::File::create(&output).map_err(|e| Error::io("create", &output, e))?;
        let mut command = Command::new("python3");
        command.args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
        ]);
        let server = LocalServer::start_with_output(
            command,
            port,
            "aiosmtpd",
            PACKAGE_HINT,
            Stdio::from(file),
        )?;
        Ok(Self {
            _server: server,
            port,
            output,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, as aiosmtpd printed it (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.split("---------- MESSAGE FOLLOWS ----------")
            .skip(1)
            .map(|m| {
                m.split("------------ END MESSAGE ------------")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    }
}
