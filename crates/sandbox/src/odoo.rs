//! An Odoo-shaped database and filestore: the tables Vigia reads (modules, partners,
//! attachments, Costa Rica e-invoice documents) with data in each, and files stored where
//! Odoo stores them (`<filestore>/<sha1[:2]>/<sha1>`, named in `ir_attachment.store_fname`).

use std::path::Path;

use sha1::{Digest, Sha1};
use vigia_core::{Error, Result};

use crate::postgres::PgCluster;

/// The schema and rows of the Odoo-shaped database.
pub const ODOO_SQL: &str = include_str!("odoo.sql");

/// Creates `database` on `cluster` and loads [`ODOO_SQL`] into it.
pub fn create_odoo_database(cluster: &PgCluster, database: &str) -> Result<()> {
    cluster.create_database(database)?;
    cluster.psql(database, ODOO_SQL).map(drop)
}

/// Writes `content` where Odoo would under `filestore` and returns its `store_fname`.
pub fn write_file(filestore: &Path, content: &[u8]) -> Result<String> {
    let sha1 = hex::encode(Sha1::digest(content));
    let store_fname = format!("{}/{sha1}", &sha1[..2]);
    let dir = filestore.join(&sha1[..2]);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = filestore.join(&store_fname);
    std::fs::write(&path, content).map_err(|e| Error::io("write", &path, e))?;
    Ok(store_fname)
}

/// One `ir_attachment` row per file (its name is its `store_fname`).
pub fn attach(cluster: &PgCluster, database: &str, files: &[String]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = files
        .iter()
        .map(|f| format!("('{f}', 'account.move', '{f}', '{}')", &f[3..]))
        .collect();
    cluster
        .psql(
            database,
            &format!(
                "INSERT INTO ir_attachment (name, res_model, store_fname, checksum) VALUES {}",
                values.join(",")
            ),
        )
        .map(drop)
}
