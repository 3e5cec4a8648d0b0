//! Secret references (`env:NAME`, `file:/path`, `cmd:COMMAND`) and their resolution.
//!
//! A secret field never holds the secret itself: configs get copied, pasted into tickets and
//! committed, and a value there would leak with them.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const CMD_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const FORMS: &str =
    "`env:NAME`, `file:/path/to/file` (mode 0600 or stricter) or `cmd:COMMAND` (run with sh -c)";

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    Cmd(String),
}

/// A resolved secret: redacted in `Debug`, wiped from memory on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What `config check` learns about a reference without needing the secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ok,
    /// Resolvable later, but not now (an unset variable, a missing file).
    Unavailable(String),
    /// Wrong in a way that will not fix itself (a file readable by others).
    Invalid(String),
}

impl SecretRef {
    /// Parses one of the three forms; the message never repeats the value, which may be a secret.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("a secret field takes a reference, not a value: {FORMS}");
        let (form, rest) = text.split_once(':').ok_or_else(bad)?;
        if rest.trim().is_empty() {
            return Err(format!(
                "`{form}:` needs something after the colon: {FORMS}"
            ));
        }
        match form {
            "env" => Ok(Self::Env(rest.to_owned())),
            "file" => Ok(Self::File(PathBuf::from(rest))),
            "cmd" => Ok(Self::Cmd(rest.to_owned())),
            _ => Err(bad()),
        }
    }

    /// Makes a relative `file:` path relative to `base` (the config file's folder).
    pub(crate) fn anchor(&mut self, base: &Path) {
        if let Self::File(path) = self
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }

    /// Checks what can be checked without running commands: variables set, files present and
    /// private. Commands are not run here: they may be slow or ask a vault for the secret.
    pub fn probe(&self) -> Probe {
        match self {
            Self::Env(name) => match std::env::var_os(name) {
                Some(_) => Probe::Ok,
                None => Probe::Unavailable(format!("environment variable {name} is not set")),
            },
            Self::File(path) => match std::fs::metadata(path) {
                Ok(meta) => match check_private(path, &meta) {
                    Ok(()) => Probe::Ok,
                    Err(e) => Probe::Invalid(e.message().to_owned()),
                },
                Err(e) => Probe::Unavailable(format!("cannot read {}: {e}", path.display())),
            },
            Self::Cmd(_) => Probe::Ok,
        }
    }

    /// Reads the secret. `key` names the config field, for the error message.
    pub fn resolve(&self, key: &str) -> Result<Secret> {
        let fail = |msg: String| {
            Error::config(format!("cannot resolve secret `{key}`: {msg}")).with_key(key)
        };
        match self {
            Self::Env(name) => std::env::var(name)
                .map(Secret::new)
                .map_err(|_| fail(format!("environment variable {name} is not set"))),
            Self::File(path) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                check_private(path, &meta).map_err(|e| fail(e.message().to_owned()))?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                Ok(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned()))
            }
            Self::Cmd(command) => run_command(command).map(Secret::new).map_err(fail),
        }
    }
}

fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::config(format!(
            "{} has mode {mode:04o}: a secret file must not be readable by group or others; \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        ))
        .with_file(path));
    }
    Ok(())
}

fn run_command(command: &str) -> std::result::Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the command did not finish within {} s",
                    CMD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    };
    let out = reader
        .join()
        .map_err(|_| "the reader thread panicked".to_owned())?
        .map_err(|e| format!("cannot read the command's output: {e}"))?;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        return Err(format!(
            "the command exited with {status}: {}",
            stderr.trim()
        ));
    }
    let text = String::from_utf8(out.to_vec())
        .map_err(|_| "the command's output is not UTF-8".to_owned())?;
    Ok(text.trim().to_owned())
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Cmd(cmd) => write!(f, "cmd:{cmd}"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

/// A plain setting that may also come from a reference (e.g. a user name kept beside its password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueOrRef {
    Value(String),
    Ref(SecretRef),
}

impl ValueOrRef {
    pub fn resolve(&self, key: &str) -> Result<Secret> {
        match self {
            Self::Value(v) => Ok(Secret::new(v.clone())),
            Self::Ref(r) => r.resolve(key),
        }
    }
}

impl<'de> Deserialize<'de> for ValueOrRef {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        let is_ref = ["env:", "file:", "cmd:"]
            .iter()
            .any(|p| text.starts_with(p));
        if is_ref {
            SecretRef::parse(&text)
                .map(Self::Ref)
                .map_err(serde::de::Error::custom)
        } else {
            Ok(Self::Value(text))
        }
    }
}

impl Serialize for ValueOrRef {
    fn serialize<S: Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => ser.serialize_str(v),
            Self::Ref(r) => r.serialize(ser),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn bare_value_is_refused_without_echoing_it() {
        let err = SecretRef::parse("hunter2").unwrap_err();
        assert!(!err.contains("hunter2"));
        assert!(err.contains("env:NAME") && err.contains("file:") && err.contains("cmd:"));
    }

    #[test]
    fn file_readable_by_others_is_refused_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretRef::File(path.clone())
            .resolve("postgres.password")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("mode 0644"), "{}", err.message());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = SecretRef::File(path).resolve("postgres.password").unwrap();
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn command_output_is_trimmed() {
        let secret = SecretRef::Cmd("printf '  abc \\n'".into())
            .resolve("k")
            .unwrap();
        assert_eq!(secret.expose(), "abc");
    }

    #[test]
    fn failing_command_is_an_error() {
        let err = SecretRef::Cmd("echo nope >&2; exit 3".into())
            .resolve("k")
            .unwrap_err();
        assert!(err.message().contains("nope"), "{}", err.message());
    }

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new("pw".into())),
            "Secret([redacted])"
        );
    }
}
