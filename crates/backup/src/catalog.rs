//! The catalog: every backup whose index is in the store, each index checked against its mac.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, ErrorKind, Result};

use crate::access::StoreAccess;
use crate::format::{BackupId, BackupIndex, BackupManifest, NameKey, index_key};
use crate::format::{
    Problem, SealedObject, VerificationLog, VerifyLevel, manifest_key, open_manifest,
};
use crate::keys::Identity;
use crate::seal::read_small;

#[derive(Debug, Default)]
pub struct Catalog {
    /// Oldest first.
    pub backups: Vec<BackupIndex>,
    /// Indexes that failed their mac, did not parse, or describe another backup than their
    /// key names: (store key, what is wrong).
    pub damaged: Vec<(String, String)>,
}

impl Catalog {
    pub async fn read(store: &dyn ObjectStore, name_key: &NameKey) -> Result<Self> {
        let mut catalog = Self::default();
        for meta in store.list("backups/").await? {
            if !meta.key.ends_with("/index.json") {
                continue;
            }
            let bytes = store.get_bytes(&meta.key).await?;
            match open_index(name_key, &bytes, &meta.key) {
                Ok(index) => catalog.backups.push(index),
                Err(e) => catalog.damaged.push((meta.key, e.message().to_owned())),
            }
        }
        // Ids sort by their second; the start time orders backups taken within one.
        catalog
            .backups
            .sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(catalog)
    }

    /// Every object some index lists, with its size and sha256.
    pub fn known_objects(&self) -> HashMap<String, SealedObject> {
        self.backups
            .iter()
            .flat_map(|b| &b.objects)
            .map(|o| (o.key.clone(), o.clone()))
            .collect()
    }
}

/// The index stored at `key`, its mac checked and its id the one its key names: a name-key
/// holder can copy an old index over the newest one's key, which would hide the newest backup.
pub fn open_index(name_key: &NameKey, bytes: &[u8], key: &str) -> Result<BackupIndex> {
    let index: BackupIndex = name_key.open(bytes, key)?;
    if index_key(&index.id) != key {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "{key}: it describes backup {}, not the one its key names (an index copied over it)",
                index.id
            ),
        )
        .with_object(key));
    }
    Ok(index)
}

/// The `data` of `vigia backup list --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupList {
    /// Oldest first.
    pub backups: Vec<BackupSummary>,
    /// Indexes that failed their mac: listed so that nobody restores from them unawares.
    pub damaged: Vec<DamagedIndex>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub id: BackupId,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub database: String,
    pub size_bytes: u64,
    /// The latest verification; null until `vigia verify` has run on it.
    pub verified: Option<Verified>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub level: VerifyLevel,
    pub at: Timestamp,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DamagedIndex {
    pub key: String,
    pub problem: String,
}

/// The `data` of `vigia backup show ID --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupDetails {
    pub index: BackupIndex,
    /// Null when no identity is configured (the manifest is encrypted).
    pub manifest: Option<BackupManifest>,
}

impl StoreAccess {
    pub async fn list_backups(&self) -> Result<BackupList> {
        let store = self.store.as_ref();
        let catalog = Catalog::read(store, &self.name_key).await?;
        let log = VerificationLog::read(store).await?;
        let mut backups = Vec::with_capacity(catalog.backups.len());
        for b in &catalog.backups {
            let verified = log
                .latest(store, &self.name_key, &b.id, VerifyLevel::Quick)
                .await?
                .map(|r| Verified {
                    level: r.level,
                    at: r.at,
                    ok: r.ok,
                });
            backups.push(BackupSummary {
                id: b.id.clone(),
                started_at: b.started_at,
                finished_at: b.finished_at,
                database: b.database.clone(),
                size_bytes: b.size_bytes(),
                verified,
            });
        }
        Ok(BackupList {
            backups,
            damaged: catalog
                .damaged
                .into_iter()
                .map(|(key, problem)| DamagedIndex { key, problem })
                .collect(),
        })
    }

    /// One backup's index, its mac checked; a missing one is invalid input naming the store.
    pub async fn read_index(&self, id: &BackupId) -> Result<BackupIndex> {
        let key = index_key(id);
        let bytes = self.store.get_bytes(&key).await.map_err(|e| {
            if e.is_not_found() {
                Error::invalid_input(format!(
                    "there is no backup {id} in {}; see `vigia backup list`",
                    self.store.location()
                ))
            } else {
                e.into()
            }
        })?;
        open_index(&self.name_key, &bytes, &key)
    }

    pub async fn show_backup(&self, id: &BackupId) -> Result<BackupDetails> {
        let index = self.read_index(id).await?;
        let manifest = match &self.identity()? {
            Some(identity) => Some(
                read_manifest(self.store.as_ref(), &self.name_key, identity, &index)
                    .await?
                    .map_err(|p| {
                        Error::new(ErrorKind::Integrity, format!("{}: {}", p.object, p.problem))
                            .with_object(&p.object)
                    })?,
            ),
            None => None,
        };
        Ok(BackupDetails { index, manifest })
    }
}

impl vigia_core::Outcome for BackupList {}

impl vigia_core::Outcome for BackupDetails {}

/// A backup's manifest, read back and opened by `open_manifest`. A name-key holder can re-seal
/// a manifest: restore, verify and `backup show` all read it here, so none of them acts on a
/// name that leaves the filestore.
pub async fn read_manifest(
    store: &dyn ObjectStore,
    name_key: &NameKey,
    identity: &Identity,
    index: &BackupIndex,
) -> Result<std::result::Result<BackupManifest, Problem>> {
    let key = manifest_key(&index.id);
    let Some(object) = index.objects.iter().find(|o| o.key == key) else {
        return Ok(Err(Problem::new(&key, "the index does not list it")));
    };
    Ok(read_small(store, object, identity)
        .await?
        .and_then(|plain| open_manifest(name_key, &plain, index)))
}

#[cfg(test)]
mod tests {
    use vigia_core::config::Secret;
    use vigia_core::testing::{FaultyStore, MemoryStore};

    use super::*;
    use crate::format::{FORMAT, index_key};

    fn name_key() -> NameKey {
        NameKey::from_secret(&Secret::new("ef".repeat(32))).unwrap()
    }

    fn index(id: &str) -> BackupIndex {
        let id: BackupId = id.parse().unwrap();
        BackupIndex {
            format: FORMAT,
            started_at: id.started_at(),
            finished_at: id.started_at(),
            id,
            database: "odoo".into(),
            vigia_version: "0.1.0".into(),
            objects: Vec::new(),
        }
    }

    async fn put(store: &MemoryStore, key: &str, index: &BackupIndex) {
        let sealed = name_key().seal(index).unwrap();
        store.put_bytes(key, sealed.into()).await.unwrap();
    }

    #[tokio::test]
    async fn altered_or_moved_indexes_are_damaged_never_listed() {
        let store = MemoryStore::default();
        let (old, new) = (
            index("20261101T020000Z-aaaa"),
            index("20261102T020000Z-bbbb"),
        );
        put(&store, &index_key(&old.id), &old).await;
        // An old index copied over the newest one's key would hide the newest backup.
        put(&store, &index_key(&new.id), &old).await;
        let mut altered = name_key().seal(&index("20261103T020000Z-cccc")).unwrap();
        let last = altered.len() - 3;
        altered[last] ^= 1;
        store
            .put_bytes("backups/20261103T020000Z-cccc/index.json", altered.into())
            .await
            .unwrap();
        let catalog = Catalog::read(&store, &name_key()).await.unwrap();
        let listed: Vec<&str> = catalog.backups.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(listed, ["20261101T020000Z-aaaa"]);
        assert_eq!(catalog.damaged.len(), 2, "{:?}", catalog.damaged);
    }

    #[tokio::test]
    async fn a_store_that_cuts_a_read_short_fails_the_catalog() {
        let memory = std::sync::Arc::new(MemoryStore::default());
        let old = index("20261101T020000Z-aaaa");
        put(&memory, &index_key(&old.id), &old).await;
        let faulty = FaultyStore::new(memory);
        faulty.cut_gets_after(10);
        let err = Catalog::read(&faulty, &name_key()).await.unwrap_err();
        assert!(err.message().contains("cut"), "{err}");
    }
}
