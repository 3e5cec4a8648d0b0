//! Who else is connected to the live database. With `[runtime] kind = "none"` vigia cannot
//! stop Odoo, and what a still-running Odoo writes after the swap would be swapped away by a
//! failed check: so the swap is refused while other sessions are there, naming them, unless
//! `--force-sessions`.

use vigia_core::{Error, Result};

use vigia_pg::{PgTarget, db_error};

/// A client session on a database.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub pid: i32,
    pub application_name: String,
    /// None: a Unix socket.
    pub client_addr: Option<String>,
}

impl std::fmt::Display for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.application_name.is_empty() {
            "(no application_name)"
        } else {
            &self.application_name
        };
        let from = self.client_addr.as_deref().unwrap_or("a local socket");
        write!(f, "{name} from {from} (pid {})", self.pid)
    }
}

/// The client sessions on `database` other than vigia's own (application_name `vigia`, which
/// this run may still be closing).
pub(super) async fn others(target: &PgTarget, database: &str) -> Result<Vec<Session>> {
    let client = target.connect("postgres").await?;
    let rows = client
        .query(
            "SELECT pid, coalesce(application_name, ''), host(client_addr) \
             FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend' AND application_name <> 'vigia' \
             ORDER BY pid",
            &[&database],
        )
        .await
        .map_err(|e| db_error(&format!("cannot list the sessions on {database}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| Session {
            pid: r.get(0),
            application_name: r.get(1),
            client_addr: r.get(2),
        })
        .collect())
}

/// Refuses while others are connected to the live database `database`; `copy` names the
/// restored copy when it already exists.
pub(super) async fn refuse_others(
    target: &PgTarget,
    database: &str,
    copy: Option<&str>,
) -> Result<()> {
    let sessions = others(target, database).await?;
    if sessions.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = sessions.iter().map(ToString::to_string).collect();
    Err(Error::invalid_input(format!(
        "{} other session(s) are connected to {database}: {}. With [runtime] kind = \"none\" \
         vigia cannot stop Odoo, and what it writes after the swap would be lost; stop Odoo \
         (and whatever else uses {database}) first, or pass --force-sessions to end these \
         sessions{}",
        sessions.len(),
        names.join(", "),
        copy.map(|c| format!(
            ". The restored copy {c} is kept; `vigia restore --cleanup --apply` removes it"
        ))
        .unwrap_or_default()
    )))
}
