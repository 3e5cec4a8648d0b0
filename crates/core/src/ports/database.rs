//! `Database`: the PostgreSQL server the stack uses, for SQL-level operations.
//! Dumps and restores stream through `pg_dump` / `pg_restore` processes in vigia-backup.

use async_trait::async_trait;

use crate::error::Result;

#[async_trait]
pub trait Database: Send + Sync {
    /// `server_version_num`, e.g. 150018.
    async fn server_version(&self) -> Result<u32>;
    async fn list_databases(&self) -> Result<Vec<String>>;
    /// Runs `sql` (one or more statements) in `database`.
    async fn execute(&self, database: &str, sql: &str) -> Result<()>;
    async fn rename_database(&self, from: &str, to: &str) -> Result<()>;
    /// Drops `name`, ending its connections first.
    async fn drop_database(&self, name: &str) -> Result<()>;
}
