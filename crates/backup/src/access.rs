//! What every command on the store needs: the store and the name key (public keys only), and,
//! for reading data, the identity.

use std::sync::Arc;

use vigia_core::config::SecretRef;
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Config, Result};

use crate::format::NameKey;
use crate::keys::Identity;
use crate::store::open_store;

#[derive(Clone)]
pub struct StoreAccess {
    pub store: Arc<dyn ObjectStore>,
    pub name_key: NameKey,
    /// `[backup.encryption] identity`, resolved only when data must be read.
    pub identity: Option<SecretRef>,
}

impl std::fmt::Debug for StoreAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreAccess")
            .field("store", &self.store.location())
            .finish_non_exhaustive()
    }
}

impl StoreAccess {
    /// Opens the configured store and resolves the name key. The identity is not resolved
    /// here: hosts that only take backups do not have it.
    pub async fn from_config(config: &Config) -> Result<Self> {
        config.backup_requirements()?;
        let name_key = config
            .backup
            .name_key
            .as_ref()
            .expect("checked by backup_requirements");
        let name_key = NameKey::from_secret(&name_key.resolve("backup.name-key")?)?;
        Ok(Self {
            store: open_store(config).await?,
            name_key,
            identity: config
                .backup
                .encryption
                .as_ref()
                .and_then(|e| e.identity.clone()),
        })
    }

    /// The identity, when one is configured.
    pub fn identity(&self) -> Result<Option<Identity>> {
        self.identity
            .as_ref()
            .map(|r| Identity::parse(r.resolve("backup.encryption.identity")?.expose()))
            .transpose()
    }
}
