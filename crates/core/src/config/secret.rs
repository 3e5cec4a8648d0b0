//! Secret references (`env:NAME`, `file:/path`, `cmd:COMMAND`) and their resolution.
//!
//! A secret field never holds the secret itself: configs get copied, pasted into tickets and
//! committed, and a value there would leak with them.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
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
            Self::File(path) => match open_private(path) {
                Ok(_) => Probe::Ok,
                Err(Opened::Missing(why)) => Probe::Unavailable(why),
                Err(Opened::Refused(why)) => Probe::Invalid(why),
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
                let mut file = open_private(path).map_err(|e| fail(e.into_message()))?;
                let mut text = Zeroizing::new(String::new());
                file.read_to_string(&mut text)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                Ok(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned()))
            }
            Self::Cmd(command) => run_command(command).map(Secret::new).map_err(fail),
        }
    }
}

/// Why a secret file could not be opened.
enum Opened {
    /// Not there (yet): a warning in `config check`.
    Missing(String),
    /// There, but not private to this user: always an error.
    Refused(String),
}

impl Opened {
    fn into_message(self) -> String {
        match self {
            Self::Missing(why) | Self::Refused(why) => why,
        }
    }
}

/// Opens a secret file once, without following a link, and checks what was opened (not the
/// path again): a regular file owned by this user (or root), readable by nobody else.
fn open_private(path: &Path) -> std::result::Result<std::fs::File, Opened> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Opened::Refused(format!(
                "{shown} is a link: a secret file must be the file itself"
            )),
            _ if e.kind() == std::io::ErrorKind::NotFound => {
                Opened::Missing(format!("cannot read {shown}: {e}"))
            }
            _ => Opened::Refused(format!("cannot read {shown}: {e}")),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Opened::Refused(format!("cannot read {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Opened::Refused(format!("{shown} is not a regular file")));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Opened::Refused(format!(
            "{shown} has mode {mode:04o}: a secret file must not be readable by group or \
             others; run `chmod 600 {shown}`"
        )));
    }
    let me = crate::process::effective_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Opened::Refused(format!(
            "{shown} is owned by uid {}, not by this user (uid {me}) or root: whoever owns it \
             chooses the secret; run `chown {me} {shown}`",
            meta.uid()
        )));
    }
    Ok(file)
}

fn run_command(command: &str) -> std::result::Result<String, String> {
    // Its own process group, so that a timeout ends what it started too. Its stderr goes
    // nowhere: a vault client may print there what it was asked for.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
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
                let _ = crate::process::signal_group(child.id(), libc::SIGKILL);
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
        return Err(format!(
            "the command exited with {status} (its stderr is not shown: it may name the \
             secret; run the command by hand to see it)"
        ));
    }
    let text = Zeroizing::new(
        String::from_utf8(out.to_vec())
            .map_err(|_| "the command's output is not UTF-8".to_owned())?,
    );
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

    /// Regression (issue 10 item 5): a failing command's stderr went into the error (and the
    /// JSON), and stderr is where a vault client prints what it was asked for.
    #[test]
    fn a_failing_commands_stderr_is_never_in_the_error() {
        let err = SecretRef::Cmd("echo token=hunter2 >&2; exit 3".into())
            .resolve("k")
            .unwrap_err();
        assert!(!err.message().contains("hunter2"), "{}", err.message());
        assert!(
            err.message().contains("exit status: 3"),
            "{}",
            err.message()
        );
    }

    /// Regression (issue 10 item 5): a secret file was checked by path (following a link) and
    /// then read again by path; now it is opened once without following links, and its mode
    /// and owner are checked on what was opened.
    #[test]
    fn a_secret_file_behind_a_link_or_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "s3cret\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = SecretRef::File(link).resolve("k").unwrap_err();
        assert!(err.message().contains("link"), "{}", err.message());

        // Owned by another user (nobody) yet 0600: someone else controls its content.
        std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
        let err = SecretRef::File(real).resolve("k").unwrap_err();
        assert!(err.message().contains("owned by"), "{}", err.message());
    }

    /// Regression (issue 10 item 5): on timeout only `sh` was killed; what it started lived on.
    #[test]
    fn a_command_that_times_out_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let err = SecretRef::Cmd(command).resolve("k").unwrap_err();
        assert!(
            err.message().contains("did not finish"),
            "{}",
            err.message()
        );
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !crate::process::is_running(pid),
            "sleep {pid} outlived the timeout"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new("pw".into())),
            "Secret([redacted])"
        );
    }
}
