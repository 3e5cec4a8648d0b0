//! Vigia's backups: the object stores (local directory, S3) behind the `ObjectStore` port,
//! and the store's format (ids, keys, the name key and the MACs of its JSON files).

pub mod format;
mod store;

pub use store::{LocalStore, PART_SIZE, S3Options, S3Store, open_store};
