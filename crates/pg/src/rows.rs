//! Exact per-table row counts (taken in the backup's snapshot, compared after a restore), the
//! tables' sizes (to share them among a backup's data streams), and whether a table exists.

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

/// A table by schema and name, as the catalog spells them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: &str, name: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            name: name.to_owned(),
        }
    }

    /// As a `pg_dump --table` pattern that matches this table only: inside double quotes
    /// `*`, `?` and `.` are literal, and a double quote is doubled.
    pub fn pattern(&self) -> String {
        let quote = |part: &str| format!("\"{}\"", part.replace('"', "\"\""));
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

/// Every table whose rows `pg_dump` writes, with its size on disk (TOAST included, indexes
/// not), largest first. Tables of extensions are left out: pg_dump decides about those.
pub async fn table_sizes(client: &Client) -> Result<Vec<(TableName, u64)>> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, pg_table_size(c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND c.relpersistence <> 't' \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' \
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                 AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 3 DESC, 1, 2",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot list the tables' sizes", &e))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let size: i64 = row.get(2);
            (
                TableName::new(row.get(0), row.get(1)),
                u64::try_from(size).unwrap_or_default(),
            )
        })
        .collect())
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
