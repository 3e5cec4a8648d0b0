//! The object stores: a local directory (the embedded default) and S3.

mod journal;
mod local;
mod local_conditional;
mod s3;

use std::sync::Arc;

use vigia_core::config::StoreKind;
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Config, Error, Result};

pub use local::LocalStore;
pub use s3::{PART_SIZE, S3Options, S3Store};

/// Where `state-dir` keeps the S3 uploads in flight.
pub const UPLOAD_JOURNAL_DIR: &str = "s3-uploads";

/// The `backup.upload` fail point, in the middle of a large object's upload.
fn upload_failpoint(key: &str) -> Result<(), vigia_core::ports::store::StoreError> {
    vigia_core::failpoint::hit("backup.upload").map_err(|e| {
        vigia_core::ports::store::StoreError::Source {
            key: key.to_owned(),
            source: std::io::Error::other(e.to_string()),
        }
    })
}

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
            let store = S3Store::connect(S3Options::from_config(s3)?)
                .await
                .with_upload_journal(&config.state_dir.join(UPLOAD_JOURNAL_DIR));
            Ok(Arc::new(store))
        }
        None => Err(Error::config("missing `backup.store`").with_key("backup.store")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_core::ConfigSource;

    #[tokio::test]
    async fn opens_the_configured_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
            [odoo]
            database = "odoo"
            [backup]
            store = "local"
            path = "store"
            name-key = "env:K"
            [backup.encryption]
            recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
        "#;
        let config = ConfigSource::from_text(text, Some(dir.path()))
            .unwrap()
            .load(None)
            .unwrap();
        let store = open_store(&config).await.unwrap();
        assert_eq!(
            store.location(),
            format!("local directory {}", dir.path().join("store").display())
        );
    }

    #[tokio::test]
    async fn names_the_missing_key() {
        let config = ConfigSource::from_text("[odoo]\ndatabase = \"odoo\"\n", None)
            .unwrap()
            .load(None)
            .unwrap();
        let err = open_store(&config).await.unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("backup.store"));
    }
}
