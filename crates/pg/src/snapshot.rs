//! A read-only repeatable-read transaction whose snapshot `pg_dump --snapshot` shares: what
//! it reads (the row counts here, the filestore files and modules vigia-odoo reads) is exactly
//! what the dump holds.

use std::collections::BTreeMap;

use tokio_postgres::Client;
use vigia_core::Result;

use crate::{PgTarget, db_error};

#[derive(Debug)]
pub struct SnapshotSession {
    client: Client,
    snapshot: String,
    server_version_num: u32,
}

impl SnapshotSession {
    /// Opens the transaction and exports its snapshot. Keep the session alive until pg_dump
    /// has started: the snapshot lives as long as the transaction.
    pub async fn open(target: &PgTarget, database: &str) -> Result<Self> {
        let client = target.connect(database).await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| db_error("cannot start the snapshot transaction", &e))?;
        let row = client
            .query_one(
                "SELECT pg_export_snapshot(), current_setting('server_version_num')::int",
                &[],
            )
            .await
            .map_err(|e| db_error("cannot export a snapshot", &e))?;
        let version: i32 = row.get(1);
        Ok(Self {
            client,
            snapshot: row.get(0),
            server_version_num: u32::try_from(version).unwrap_or_default(),
        })
    }

    /// The id to pass to `pg_dump --snapshot`.
    pub fn snapshot_id(&self) -> &str {
        &self.snapshot
    }

    /// `server_version_num`, e.g. 150018.
    pub fn server_version_num(&self) -> u32 {
        self.server_version_num
    }

    /// The session inside the snapshot, for queries that must see what the dump holds (the
    /// filestore files and modules vigia-odoo reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Exact row counts of every user table, as `schema.table`.
    pub async fn row_counts(&self) -> Result<BTreeMap<String, u64>> {
        crate::row_counts(&self.client).await
    }

    /// Ends the transaction (and with it the snapshot).
    pub async fn close(self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| db_error("cannot end the snapshot transaction", &e))
    }
}
