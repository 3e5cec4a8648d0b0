//! Vigia's backups: the object stores (local directory, S3) behind the `ObjectStore` port.

mod store;

pub use store::{LocalStore, PART_SIZE, S3Options, S3Store, open_store};
