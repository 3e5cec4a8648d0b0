//! Exact per-table row counts (taken in the backup's snapshot, compared after a restore), and
//! whether a table exists.

use std::collections::BTreeMap;

use tokio_postgres::{Client, GenericClient};

use crate::db_error;
use vigia_core::Result;

/// Every user table's exact row count, keyed `schema.table`.
pub async fn row_counts(client: &Client) -> Result<BTreeMap<String, u64>> {
    let tables = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 2, 3",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot list the tables", &e))?;
    let mut counts = BTreeMap::new();
    for table in tables {
        let quoted: String = table.get(0);
        let (schema, name): (String, String) = (table.get(1), table.get(2));
        let row = client
            .query_one(&format!("SELECT count(*) FROM ONLY {quoted}"), &[])
            .await
            .map_err(|e| db_error(&format!("cannot count the rows of {quoted}"), &e))?;
        let count: i64 = row.get(0);
        counts.insert(
            format!("{schema}.{name}"),
            u64::try_from(count).unwrap_or_default(),
        );
    }
    Ok(counts)
}

/// Whether `table` (a name as `to_regclass` reads it) exists: a missing Odoo table means a
/// module is not installed, not an error.
pub async fn has_table(client: &impl GenericClient, table: &str) -> Result<bool> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(|e| db_error("cannot read the catalog", &e))?
        .get(0))
}
