//! A throwaway login role for SQL vigia does not trust (an Odoo zip's `dump.sql`, a drill's
//! `pg_restore`): no superuser, no CREATEROLE, no CREATEDB, no membership in any role, owner of
//! one new database only, so nothing it runs can reach another database or a role. The
//! configured role makes it, hands the database back to itself afterwards and drops it.

use tokio_postgres::Client;
use vigia_core::config::Secret;
use vigia_core::{Error, ErrorKind, Result};

use crate::{PgTarget, db_error, quote_ident as q};

/// Every throwaway role's name starts so, which `restore --cleanup` reads in its records.
pub const THROWAWAY_PREFIX: &str = "vigia_tmp_";

#[derive(Debug)]
pub struct ThrowawayRole {
    admin: PgTarget,
    name: String,
    password: Secret,
}

impl ThrowawayRole {
    /// A name for a role not made yet: recorded before [`ThrowawayRole::create`], so that a
    /// killed run's role is found by `restore --cleanup`.
    pub fn new_name() -> String {
        let letters = vigia_core::random_bytes::<10>()
            .iter()
            .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
            .collect::<String>();
        format!("{THROWAWAY_PREFIX}{letters}")
    }

    /// Creates the role `name` (from [`ThrowawayRole::new_name`]) with a random password,
    /// which reaches the server only as a SCRAM verifier (never in a statement a log could
    /// show). `admin` must be a superuser or have CREATEROLE: refused otherwise, saying so.
    pub async fn create(admin: &PgTarget, name: &str) -> Result<Self> {
        let client = admin.connect("postgres").await?;
        if !has_createrole(&client).await? {
            return Err(Error::invalid_input(format!(
                "the [postgres] user {} cannot create roles (it needs CREATEROLE), so vigia \
                 cannot run untrusted SQL as a throwaway role",
                admin.user
            )));
        }
        let password = Secret::new(hex::encode(vigia_core::random_bytes::<32>()));
        let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
        let role = Self {
            admin: admin.clone(),
            name: name.to_owned(),
            password,
        };
        // Utility statements take no parameters; the verifier is base64, `$`, `:` and `-`.
        debug_assert!(!verifier.contains('\''));
        client
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB \
                 NOREPLICATION NOBYPASSRLS PASSWORD '{verifier}'",
                q(name)
            ))
            .await
            .map_err(|e| db_error(&format!("cannot create the throwaway role {name}"), &e))?;
        // The configured role becomes a member of the throwaway one (never the reverse), so
        // that a non-superuser admin may give it a database and take everything back.
        if let Err(e) = exec(&client, &format!("GRANT {} TO CURRENT_USER", q(name))).await {
            let _ = exec(&client, &format!("DROP ROLE IF EXISTS {}", q(name))).await;
            return Err(e);
        }
        Ok(role)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same server, as this role (its password through PGPASSWORD for client programs).
    pub fn target(&self) -> PgTarget {
        PgTarget {
            user: self.name.clone(),
            password: Some(self.password.clone()),
            ..self.admin.clone()
        }
    }

    /// Makes this role the owner of `database` (new and empty).
    pub async fn own_database(&self, database: &str) -> Result<()> {
        let client = self.admin.connect("postgres").await?;
        exec(
            &client,
            &format!("ALTER DATABASE {} OWNER TO {}", q(database), q(&self.name)),
        )
        .await
    }

    /// Before anything else uses `database`: the role can log in no more and its sessions
    /// are ended (a pg_restore worker could still be running the dump's SQL); the database's
    /// settings reset (its owner could have set `default_transaction_read_only`, which would
    /// follow it through a swap), connections allowed without limit; everything the role owns
    /// there given to `new_owner`; then the role dropped.
    pub async fn hand_back(self, database: &str, new_owner: &str) -> Result<()> {
        let client = self.admin.connect("postgres").await?;
        exec(&client, &format!("ALTER ROLE {} NOLOGIN", q(&self.name))).await?;
        self.reset_database_with(&client, database).await?;
        let inside = self.admin.connect(database).await?;
        exec(
            &inside,
            &format!(
                "REASSIGN OWNED BY {role} TO {owner}; DROP OWNED BY {role}",
                role = q(&self.name),
                owner = q(new_owner)
            ),
        )
        .await?;
        drop(inside);
        self.drop_role(&client).await
    }

    /// The role's sessions ended, then what it set on `database` undone: its settings,
    /// connection limit, `ALLOW_CONNECTIONS` and `IS_TEMPLATE`. After the dump ran, so that
    /// vigia's own sessions (as the role) start clean; again when handing back.
    pub async fn reset_database(&self, database: &str) -> Result<()> {
        let client = self.admin.connect("postgres").await?;
        self.reset_database_with(&client, database).await
    }

    async fn reset_database_with(&self, client: &Client, database: &str) -> Result<()> {
        self.end_sessions(client).await?;
        let db = q(database);
        exec(
            client,
            &format!(
                "ALTER DATABASE {db} RESET ALL; \
                 ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT -1 \
                 IS_TEMPLATE false"
            ),
        )
        .await
    }

    /// Every session of the role ended, until none is left.
    async fn end_sessions(&self, client: &Client) -> Result<()> {
        for _ in 0..50 {
            let left: i64 = client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE usename = $1",
                    &[&self.name],
                )
                .await
                .map_err(|e| db_error("cannot end the throwaway role's sessions", &e))?
                .get(0);
            if left == 0 {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(Error::new(
            ErrorKind::Database,
            format!(
                "the sessions of the throwaway role {} did not end within 5 s",
                self.name
            ),
        ))
    }

    /// Drops the role once the databases it owned are gone (a drill's scratch database).
    pub async fn drop(self) -> Result<()> {
        let client = self.admin.connect("postgres").await?;
        self.drop_role(&client).await
    }

    async fn drop_role(&self, client: &Client) -> Result<()> {
        exec(client, &format!("DROP ROLE IF EXISTS {}", q(&self.name)))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Database,
                    format!(
                        "{e}; the throwaway role {} is left: `vigia restore --cleanup --apply` \
                         removes it",
                        self.name
                    ),
                )
            })
    }
}

/// Drops a role a killed run left (`restore --cleanup`); it owns nothing once the databases
/// it owned are dropped.
pub async fn drop_abandoned_role(admin: &PgTarget, name: &str) -> Result<()> {
    let client = admin.connect("postgres").await?;
    exec(&client, &format!("DROP ROLE IF EXISTS {}", q(name))).await
}

/// Whether `name` exists as a role.
pub async fn role_exists(admin: &PgTarget, name: &str) -> Result<bool> {
    let client = admin.connect("postgres").await?;
    Ok(client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .map_err(|e| db_error("cannot list the roles", &e))?
        .is_some())
}

/// Whether the configured role may make a throwaway role (superuser or CREATEROLE).
pub async fn can_create_roles(admin: &PgTarget) -> Result<bool> {
    has_createrole(&admin.connect("postgres").await?).await
}

async fn has_createrole(client: &Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the [postgres] user's rights", &e))?
        .get(0))
}

async fn exec(client: &Client, sql: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| db_error(sql, &e))
}
