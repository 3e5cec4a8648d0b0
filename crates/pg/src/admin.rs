//! `PgAdmin`: the `Database` port on one session to the maintenance database, as the
//! configured user. Database names are quoted identifiers; nothing else is interpolated.

use async_trait::async_trait;
use tokio_postgres::Client;
use vigia_core::Result;
use vigia_core::ports::database::Database;

use crate::{PgTarget, db_error, quote_ident as q};

/// The database an administrator's session connects to for CREATE, ALTER and DROP DATABASE.
pub const MAINTENANCE_DB: &str = "postgres";

#[derive(Debug)]
pub struct PgAdmin {
    client: Client,
}

impl PgAdmin {
    /// One session to [`MAINTENANCE_DB`] as `target`'s user, kept for every call.
    pub async fn connect(target: &PgTarget) -> Result<Self> {
        Ok(Self {
            client: target.connect(MAINTENANCE_DB).await?,
        })
    }

    /// `name` made as a copy of `template` (which must have no session), file by file on
    /// PostgreSQL 15+ (`STRATEGY FILE_COPY`: a checkpoint and a copy, not the whole database
    /// through the WAL).
    pub async fn copy_database(&self, name: &str, template: &str) -> Result<()> {
        let strategy = if self.server_version().await? >= 150_000 {
            " STRATEGY FILE_COPY"
        } else {
            ""
        };
        let quoted = q(name);
        self.exec(
            &format!(
                "CREATE DATABASE {quoted} TEMPLATE {}{strategy}",
                q(template)
            ),
            &format!("cannot create {quoted} (the [postgres] user needs CREATEDB)"),
        )
        .await
    }

    /// The sessions on `database` other than this one whose `application_name` starts with
    /// `prefix`, as `application_name (client address)`.
    pub async fn sessions_of(&self, database: &str, prefix: &str) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT application_name || ' (' || coalesce(client_addr::text, 'local') || ')' \
                 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() \
                 AND application_name LIKE $2 || '%'",
                &[&database, &prefix],
            )
            .await
            .map_err(|e| db_error(&format!("cannot list the sessions on {database}"), &e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Why this session's user could not copy `database` (`CREATE DATABASE .. TEMPLATE`):
    /// it needs CREATEDB, and to own the template (or have its owner's privileges: a member
    /// that inherits them) or be a superuser. None: it can. Also the database's size, for the room the copy takes.
    pub async fn copy_readiness(&self, database: &str) -> Result<(Option<String>, u64)> {
        let row = self
            .client
            .query_opt(
                "SELECT r.rolsuper OR r.rolcreatedb, \
                 r.rolsuper OR pg_has_role(current_user, d.datdba, 'USAGE'), \
                 pg_get_userbyid(d.datdba), current_user::text, pg_database_size(d.oid) \
                 FROM pg_roles r, pg_database d \
                 WHERE r.rolname = current_user AND d.datname = $1",
                &[&database],
            )
            .await
            .map_err(|e| db_error(&format!("cannot read who may copy {database}"), &e))?;
        let Some(row) = row else {
            return Ok((Some(format!("database {database} does not exist")), 0));
        };
        let (createdb, owner_ok): (bool, bool) = (row.get(0), row.get(1));
        let (owner, user): (String, String) = (row.get(2), row.get(3));
        let size = u64::try_from(row.get::<_, i64>(4)).unwrap_or(0);
        let problem = if !createdb {
            Some(format!(
                "role {user} cannot create databases: `ALTER ROLE {} CREATEDB` (the copy before \
                 the upgrade is a CREATE DATABASE)",
                q(&user)
            ))
        } else if !owner_ok {
            Some(format!(
                "role {user} does not own {database} (its owner is {owner}), so it cannot use it \
                 as a TEMPLATE: connect as {owner}, or `GRANT {} TO {}`",
                q(&owner),
                q(&user)
            ))
        } else {
            None
        };
        Ok((problem, size))
    }

    /// The server's data directory when this session may read it (superuser or
    /// pg_read_all_settings); None otherwise.
    pub async fn data_directory(&self) -> Option<std::path::PathBuf> {
        let row = self
            .client
            .query_one("SELECT current_setting('data_directory', true)", &[])
            .await
            .ok()?;
        row.get::<_, Option<String>>(0).map(Into::into)
    }

    async fn exec(&self, sql: &str, what: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| db_error(what, &e))
    }
}

#[async_trait]
impl Database for PgAdmin {
    async fn server_version(&self) -> Result<u32> {
        let version: i32 = self
            .client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| db_error("cannot read the server version", &e))?
            .get(0);
        Ok(u32::try_from(version).unwrap_or_default())
    }

    async fn list_databases(&self) -> Result<Vec<String>> {
        let rows = self
            .client
            .query("SELECT datname FROM pg_database ORDER BY 1", &[])
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?
            .is_some())
    }

    async fn create(&self, name: &str) -> Result<()> {
        self.create_from_template(name, "template0").await
    }

    async fn create_from_template(&self, name: &str, template: &str) -> Result<()> {
        let quoted = q(name);
        self.exec(
            &format!("CREATE DATABASE {quoted} TEMPLATE {}", q(template)),
            &format!("cannot create {quoted} (the [postgres] user needs CREATEDB)"),
        )
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let sql = format!("ALTER DATABASE {} RENAME TO {}", q(from), q(to));
        self.exec(&sql, &sql).await
    }

    async fn drop(&self, name: &str) -> Result<()> {
        let quoted = q(name);
        self.exec(
            &format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
            &format!("cannot drop {quoted}"),
        )
        .await
    }

    async fn end_sessions(&self, name: &str) -> Result<()> {
        self.client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .map_err(|e| db_error(&format!("cannot end the sessions on {name}"), &e))?;
        Ok(())
    }

    async fn allow_connections(&self, name: &str, allow: bool) -> Result<()> {
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS {allow}", q(name));
        self.exec(&sql, &sql).await
    }
}

/// A database as `pg_database` shows it; the oid follows it through renames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRow {
    pub oid: u32,
    pub name: String,
    pub allows_connections: bool,
}

impl PgAdmin {
    /// The databases with one of `oids` or one of `names`.
    pub async fn find(&self, oids: &[u32], names: &[&str]) -> Result<Vec<DatabaseRow>> {
        let rows = self
            .client
            .query(
                "SELECT oid, datname, datallowconn FROM pg_database \
                 WHERE oid = ANY($1) OR datname = ANY($2)",
                &[&oids, &names],
            )
            .await
            .map_err(|e| db_error("cannot list the databases", &e))?;
        Ok(rows
            .iter()
            .map(|r| DatabaseRow {
                oid: r.get(0),
                name: r.get(1),
                allows_connections: r.get(2),
            })
            .collect())
    }

    /// The oid of the database `name`, if it exists.
    pub async fn oid_of(&self, name: &str) -> Result<Option<u32>> {
        Ok(self
            .find(&[], &[name])
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .map(|d| d.oid))
    }
}
