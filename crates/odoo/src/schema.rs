//! What an Odoo database says about itself: the filestore files it references, its installed
//! modules and their versions, and its Odoo series. A database without Odoo's tables is not
//! an error here: the answer is empty.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;
use vigia_core::Result;
use vigia_pg::{db_error, has_table};

/// The filestore files the database references (`ir_attachment.store_fname`, `xx/sha1`),
/// sorted and unique; None when the database has no `ir_attachment` (not an Odoo database).
pub async fn filestore_refs(client: &impl GenericClient) -> Result<Option<Vec<String>>> {
    if !has_table(client, "ir_attachment").await? {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL \
             AND store_fname <> '' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot list the filestore files", &e))?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Installed modules and their versions (`ir_module_module`); empty when not an Odoo database.
pub async fn module_versions(client: &impl GenericClient) -> Result<BTreeMap<String, String>> {
    if !has_table(client, "ir_module_module").await? {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query(
            "SELECT name, coalesce(latest_version, '') FROM ir_module_module \
             WHERE state = 'installed' ORDER BY name",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot list the modules", &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The installed `base` module's version (the series followed by the module's own version,
/// e.g. `19.0.1.3`); None when it is not an Odoo database.
pub async fn base_version(client: &impl GenericClient) -> Result<Option<String>> {
    if !has_table(client, "ir_module_module").await? {
        return Ok(None);
    }
    Ok(client
        .query_opt(
            "SELECT latest_version FROM ir_module_module \
             WHERE name = 'base' AND state = 'installed'",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the Odoo version", &e))?
        .and_then(|row| row.get::<_, Option<String>>(0)))
}

/// Whether a base version (`19.0.1.3`) belongs to the Odoo series `series` (`19.0`).
pub fn in_series(base_version: &str, series: &str) -> bool {
    base_version.starts_with(&format!("{series}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_a_whole_prefix() {
        assert!(in_series("19.0.1.3", "19.0"));
        assert!(!in_series("19.01.1", "19.0"));
        assert!(!in_series("18.0.1.3", "19.0"));
    }
}
