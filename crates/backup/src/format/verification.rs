//! What verification found, as the store keeps it: levels quick < full < drill, problems, and
//! `verifications/<id>/<time>.json`: each verification's result, with its mac. `backup list`
//! shows the latest; prune keeps the newest backup whose latest full or drill passed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, Result};

use super::{BackupId, NameKey, verification_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    /// Every object the index names exists with its size; the index's mac.
    Quick,
    /// Quick, and every object read back: sha256, decryption, the dump's table of contents,
    /// every filestore file's sha1, the name key copy.
    Full,
    /// Full, and a real restore into a scratch database whose row counts must equal the
    /// manifest's.
    Drill,
}

impl VerifyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::Drill => "drill",
        }
    }
}

impl fmt::Display for VerifyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VerifyLevel {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "quick" => Ok(Self::Quick),
            "full" => Ok(Self::Full),
            "drill" => Ok(Self::Drill),
            other => Err(Error::invalid_input(format!(
                "`{other}` is not a verify level: use quick, full or drill"
            ))),
        }
    }
}

/// One thing wrong: the store key it concerns, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    pub object: String,
    pub problem: String,
}

impl Problem {
    pub fn new(object: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationRecord {
    pub id: BackupId,
    pub level: VerifyLevel,
    pub at: Timestamp,
    pub ok: bool,
    pub problems: Vec<Problem>,
}

impl VerificationRecord {
    pub async fn write(&self, store: &dyn ObjectStore, name_key: &NameKey) -> Result<()> {
        let key = verification_key(&self.id, self.at);
        store.put_bytes(&key, name_key.seal(self)?.into()).await?;
        Ok(())
    }
}

/// The record keys in the store, per backup, oldest first (compact times sort as strings).
#[derive(Debug, Default)]
pub struct VerificationLog {
    keys: BTreeMap<BackupId, Vec<String>>,
}

impl VerificationLog {
    /// One LIST of `verifications/`.
    pub async fn read(store: &dyn ObjectStore) -> Result<Self> {
        let mut log = Self::default();
        for meta in store.list("verifications/").await? {
            let Some(id) = meta
                .key
                .strip_prefix("verifications/")
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(id, _)| id.parse::<BackupId>().ok())
            else {
                continue;
            };
            log.keys.entry(id).or_default().push(meta.key);
        }
        for keys in log.keys.values_mut() {
            keys.sort();
        }
        Ok(log)
    }

    /// The record at `key` (of backup `id`); one whose mac fails or that names another backup
    /// reads as a failed drill: a forged "ok" must not protect or excuse anything.
    pub async fn open(
        &self,
        store: &dyn ObjectStore,
        name_key: &NameKey,
        id: &BackupId,
        key: &str,
    ) -> Result<VerificationRecord> {
        let bytes = store.get_bytes(key).await?;
        Ok(match name_key.open::<VerificationRecord>(&bytes, key) {
            Ok(record) if record.id == *id => record,
            Ok(_) | Err(_) => VerificationRecord {
                id: id.clone(),
                level: VerifyLevel::Drill,
                at: Timestamp::UNIX_EPOCH,
                ok: false,
                problems: vec![Problem {
                    object: key.to_owned(),
                    problem: "this verification record fails its mac or names another backup"
                        .into(),
                }],
            },
        })
    }

    /// Every backup with a record, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &BackupId> {
        self.keys.keys()
    }

    /// Every record key of `id`.
    pub fn keys_of(&self, id: &BackupId) -> &[String] {
        self.keys.get(id).map_or(&[], Vec::as_slice)
    }

    /// The newest record of `id` at `min_level` or above. A record whose mac fails counts as
    /// a failed verification: a forged "ok" must not protect or excuse anything.
    pub async fn latest(
        &self,
        store: &dyn ObjectStore,
        name_key: &NameKey,
        id: &BackupId,
        min_level: VerifyLevel,
    ) -> Result<Option<VerificationRecord>> {
        for key in self.keys_of(id).iter().rev() {
            let record = self.open(store, name_key, id, key).await?;
            if record.level >= min_level {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }
}
