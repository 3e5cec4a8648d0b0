//! vigia-backup's integration tests, one binary: stores (local directory, s3s-fs, moto),
//! backups, verify, prune and the store lock against a real PostgreSQL and filestore.

mod common;

mod backup;
mod filestore;
mod lock;
mod pg_dump;
mod prune;
mod s3_faults;
mod seal;
mod store_contract;
mod store_memory;
mod verify;
