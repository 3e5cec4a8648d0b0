//! The SQL of a dump (a backup's, an Odoo zip's) runs as a throwaway role that owns only the
//! new database, so that nothing in it reaches another database or a role, even when a
//! name-key holder made the index vouch for a hostile dump. Everything vigia then does in the
//! copy before it is used (ANALYZE, row counts, the zip's newest e-invoice, neutralization)
//! runs as that role too: the dump's triggers, policies and index expressions never run with
//! the configured user's rights. Then the database is reset, handed to its new owner (`--role`,
//! else the live database's owner, else the configured user) and the role dropped.

use vigia_core::{Error, Result};

use super::RestoreJob;
use vigia_pg::{PgTarget, ThrowawayRole, can_create_roles, db_error};

/// Who runs SQL in the new database until it is handed back.
#[derive(Debug)]
pub(super) struct CopyOwner {
    role: Option<ThrowawayRole>,
    target: PgTarget,
}

impl CopyOwner {
    /// The server as the throwaway role, or as the configured user when the dump is trusted.
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// After the dump ran: what it set on its own database undone (see
    /// [`ThrowawayRole::reset_database`]); nothing to do when trusted.
    pub async fn reset(&self, database: &str) -> Result<()> {
        match &self.role {
            Some(role) => role.reset_database(database).await,
            None => Ok(()),
        }
    }

    /// Whether the dump's SQL runs as the configured user (`--role` then taken with SET ROLE).
    pub fn trusted(&self) -> bool {
        self.role.is_none()
    }
}

impl RestoreJob {
    /// The throwaway role's name (recorded before it is made); None when the SQL runs as the
    /// configured role: `trusted` (`--trust-zip`, or a backup restored with `[restore]
    /// no-owner = false`, whose owners only a privileged role can set). Refused when the
    /// configured role cannot make one, naming `way_out`.
    pub(super) async fn untrusted_role(
        &self,
        trusted: bool,
        way_out: &str,
    ) -> Result<Option<String>> {
        if trusted {
            return Ok(None);
        }
        if !can_create_roles(&self.target).await? {
            return Err(Error::invalid_input(format!(
                "the [postgres] user {user} cannot create roles (CREATEROLE), so the dump's SQL \
                 cannot run as a throwaway role that reaches no other database and no role: \
                 grant {user} CREATEROLE, or {way_out}; nothing was created",
                user = self.target.user
            )));
        }
        Ok(Some(ThrowawayRole::new_name()))
    }

    /// Gives the new, empty `database` to the throwaway role `role` (made here), or keeps it
    /// with the configured user when None.
    pub(super) async fn take_copy(&self, database: &str, role: Option<&str>) -> Result<CopyOwner> {
        let Some(name) = role else {
            return Ok(CopyOwner {
                role: None,
                target: self.target.clone(),
            });
        };
        let role = ThrowawayRole::create(&self.target, name).await?;
        if let Err(e) = role.own_database(database).await {
            let _ = role.drop().await;
            return Err(e);
        }
        Ok(CopyOwner {
            target: role.target(),
            role: Some(role),
        })
    }

    /// Hands `database` to its new owner and drops the role (nothing to do when trusted).
    pub(super) async fn hand_back(&self, owner: CopyOwner, database: &str) -> Result<()> {
        let Some(role) = owner.role else {
            return Ok(());
        };
        let new_owner = self.new_owner().await?;
        role.hand_back(database, &new_owner).await
    }

    /// After a failure: the role dropped all the same (its record names it for `--cleanup`
    /// when even that fails).
    pub(super) async fn abandon(&self, owner: CopyOwner, database: &str) {
        if let Err(e) = self.hand_back(owner, database).await {
            tracing::warn!("{}", e.message());
        }
    }

    /// `--role` (or `[restore] role`), else the live database's owner (Odoo's role, which
    /// must own the copy it will serve), else the configured user.
    async fn new_owner(&self) -> Result<String> {
        if let Some(role) = &self.options.role {
            return Ok(role.clone());
        }
        let client = self.target.connect("postgres").await?;
        let live = client
            .query_opt(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1",
                &[&self.live_db],
            )
            .await
            .map_err(|e| db_error("cannot read the live database's owner", &e))?;
        Ok(live.map_or_else(|| self.target.user.clone(), |row| row.get(0)))
    }
}
