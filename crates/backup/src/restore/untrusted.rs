//! The SQL of a dump (a backup's, an Odoo zip's) runs as a throwaway role that owns only the
//! new database, so that nothing in it reaches another database or a role, even when a
//! name-key holder made the index vouch for a hostile dump. The role is made by the
//! configured one (which needs CREATEROLE), and afterwards the database is reset and handed
//! back to `--role` or the configured role, and the role dropped, before anything else uses it.

use vigia_core::{Error, Result};

use super::RestoreJob;
use crate::pg::{PgTarget, ThrowawayRole, can_create_roles};

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

    /// Runs `work` on the new `database`: as the throwaway role `role` (then handed back and
    /// dropped, even when `work` failed), or as the configured role when None. `work` gets
    /// the server as whom to connect and, for the configured role only, `--role` to take.
    pub(super) async fn run_untrusted(
        &self,
        database: &str,
        role: Option<&str>,
        work: impl FnOnce(&PgTarget, Option<&str>) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let Some(role) = role else {
            let (target, set_role) = (self.target.clone(), self.options.role.clone());
            return super::blocking(move || work(&target, set_role.as_deref())).await;
        };
        let role = ThrowawayRole::create(&self.target, role).await?;
        let ran = async {
            role.own_database(database).await?;
            let target = role.target();
            super::blocking(move || work(&target, None)).await
        }
        .await;
        let handed_back = role.hand_back(database, self.options.role.as_deref()).await;
        ran?;
        handed_back
    }
}
