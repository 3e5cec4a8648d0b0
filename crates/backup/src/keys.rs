//! The age keys: recipients (public, enough to write backups) and the identity (private,
//! needed only to read them).

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use vigia_core::config::EncryptionConfig;
use vigia_core::{Error, ErrorKind, Result};

/// The x25519 public keys every backup is encrypted to.
#[derive(Clone)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

impl Recipients {
    pub fn from_config(encryption: &EncryptionConfig) -> Result<Self> {
        let keys: Result<Vec<_>> = encryption
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                age::x25519::Recipient::from_str(r).map_err(|_| {
                    Error::config(format!("`{r}` is not an age x25519 public key"))
                        .with_key(format!("backup.encryption.recipients[{i}]"))
                })
            })
            .collect();
        Self::new(keys?)
    }

    pub fn new(keys: Vec<age::x25519::Recipient>) -> Result<Self> {
        if keys.is_empty() {
            return Err(
                Error::config("no age recipients: backups need at least one public key")
                    .with_key("backup.encryption.recipients"),
            );
        }
        Ok(Self(keys))
    }

    pub(crate) fn encryptor(&self) -> Result<age::Encryptor> {
        age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::new(ErrorKind::Crypto, format!("cannot set up encryption: {e}")))
    }
}

/// The private key that reads backups.
#[derive(Clone)]
pub struct Identity(age::x25519::Identity);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.0.to_public())
    }
}

impl Identity {
    /// Parses an identity file's text (`age-keygen` format: comments, then AGE-SECRET-KEY-1...).
    pub fn parse(text: &str) -> Result<Self> {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| age::x25519::Identity::from_str(l).ok())
            .map(Self)
            .ok_or_else(|| {
                Error::config("the identity is not an age x25519 secret key (AGE-SECRET-KEY-1...)")
                    .with_key("backup.encryption.identity")
            })
    }

    pub fn public(&self) -> String {
        self.0.to_public().to_string()
    }

    pub(crate) fn as_age(&self) -> &dyn age::Identity {
        &self.0
    }

    /// A fresh key pair, for the demo and tests.
    pub fn generate() -> Self {
        Self(age::x25519::Identity::generate())
    }

    /// The identity file text, for the demo and tests.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", self.0.to_string().expose_secret())
    }

    pub fn recipients(&self) -> Recipients {
        Recipients(vec![self.0.to_public()])
    }
}
