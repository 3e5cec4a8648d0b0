//! The object stores: a local directory (the embedded default) and S3.

mod local;
mod s3;

use std::sync::Arc;

use vigia_core::config::StoreKind;
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Config, Error, Result};

pub use local::LocalStore;
pub use s3::{PART_SIZE, S3Options, S3Store};

/// The store `[backup]` configures.
pub async fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>> {
    config.backup_requirements()?;
    match config.backup.store {
        Some(StoreKind::Local) => {
            let path = config
                .backup
                .path
                .as_deref()
                .expect("checked by backup_requirements");
            Ok(Arc::new(LocalStore::open(path)?))
        }
        Some(StoreKind::S3) => {
            let s3 = config
                .backup
                .s3
                .as_ref()
                .expect("checked by backup_requirements");
            Ok(Arc::new(
                S3Store::connect(S3Options::from_config(s3)?).await,
            ))
        }
        None => Err(Error::config("missing `backup.store`").with_key("backup.store")),
    }
}
