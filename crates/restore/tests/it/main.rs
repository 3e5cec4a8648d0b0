//! vigia-restore's integration tests, one binary: restores of Vigia backups and Odoo zips,
//! swaps and their undo, neutralization and cleanup, against a real PostgreSQL and filestore
//! and a hostile store.

mod common;

mod cleanup;
mod filestore_links;
mod hostile_store;
mod neutralize;
mod odoo_zip;
mod parts;
mod restore;
mod swap;
