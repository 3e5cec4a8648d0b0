//! The catalog: every backup whose index is in the store, each index checked against its mac.

use std::collections::HashMap;

use vigia_core::Result;
use vigia_core::ports::store::ObjectStore;

use crate::format::{BackupIndex, NameKey};
use crate::seal::SealedObject;

#[derive(Debug, Default)]
pub struct Catalog {
    /// Oldest first.
    pub backups: Vec<BackupIndex>,
    /// Indexes that failed their mac or did not parse: (store key, what is wrong).
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
            match name_key.open::<BackupIndex>(&bytes, &meta.key) {
                Ok(index) => catalog.backups.push(index),
                Err(e) => catalog.damaged.push((meta.key, e.message().to_owned())),
            }
        }
        catalog.backups.sort_by(|a, b| a.id.cmp(&b.id));
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
