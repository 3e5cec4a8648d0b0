//! `Database`: the PostgreSQL server's databases, as whole objects. Dumps and restores stream
//! through `pg_dump` / `pg_restore` processes (vigia-pg); what is inside a database is queried
//! by the crate that knows it (vigia-odoo).

use async_trait::async_trait;

use crate::error::Result;

#[async_trait]
pub trait Database: Send + Sync {
    /// `server_version_num`, e.g. 150018.
    async fn server_version(&self) -> Result<u32>;
    async fn list_databases(&self) -> Result<Vec<String>>;
    async fn exists(&self, name: &str) -> Result<bool>;
    /// Creates the empty database `name` (from `template0`); an existing one is an error.
    async fn create(&self, name: &str) -> Result<()>;
    /// Creates `name` as a copy of `template`, which must have no session.
    async fn create_from_template(&self, name: &str, template: &str) -> Result<()>;
    async fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Drops `name` if it exists, ending its sessions first.
    async fn drop(&self, name: &str) -> Result<()>;
    /// Ends every session on `name` but the caller's own.
    async fn end_sessions(&self, name: &str) -> Result<()>;
    /// Opens `name` to new sessions, or closes it (its open sessions stay until ended).
    async fn allow_connections(&self, name: &str, allow: bool) -> Result<()>;
}
