//! Replacing the live database and filestore with the restored ones: the e-invoicing guard
//! before, the renames (live aside, restored into place), and the way back.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vigia_core::{Error, Result};

use vigia_core::failpoint::hit;

use crate::pg::{PgTarget, db_error, has_table, quote_ident as q};

/// What the swap moved aside (kept until `vigia restore --cleanup`).
#[derive(Debug, Clone, Serialize)]
pub struct Aside {
    pub database: String,
    pub filestore: Option<PathBuf>,
}

/// The live database's e-invoice documents created after `since` (UTC, as PostgreSQL reads a
/// timestamp), per document type: restoring an older copy would make Odoo forget them while
/// Hacienda has their claves. None when there are none (or the module is not installed).
pub async fn newer_einvoices(target: &PgTarget, live: &str, since: &str) -> Result<Option<String>> {
    let client = target.connect(live).await?;
    if !has_table(&client, "l10n_cr_einvoice_document").await? {
        return Ok(None);
    }
    // create_date is UTC without a time zone (DOMAIN.md); the consecutive is the clave's
    // 20 digits after 506 + date + issuer id.
    let rows = client
        .query(
            "SELECT document_type, count(*), count(*) FILTER (WHERE state = 'accepted'), \
             coalesce(max(substring(clave FROM 22 FOR 20)), '') \
             FROM l10n_cr_einvoice_document WHERE create_date > $1::text::timestamp \
             GROUP BY 1 ORDER BY 1",
            &[&since],
        )
        .await
        .map_err(|e| db_error("cannot count the newer e-invoice documents", &e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let (kind, all, accepted, last): (Option<String>, i64, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            format!(
                "{}: {all} documents ({accepted} accepted by Hacienda), last consecutive {last}",
                kind.unwrap_or_else(|| "?".into())
            )
        })
        .collect();
    Ok(Some(lines.join("; ")))
}

/// The live database and filestore renamed aside and the restored ones renamed into place.
pub struct Swap<'a> {
    pub target: &'a PgTarget,
    pub live: &'a str,
    pub restored: &'a str,
    pub aside: &'a str,
    /// `(restored folder, live folder, aside folder)` when the backup has a filestore.
    pub filestore: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Swap<'_> {
    /// Performs the swap. On an error nothing is left half-done: what was renamed is renamed
    /// back before the error is returned.
    pub async fn run(&self) -> Result<()> {
        let client = self.target.connect("postgres").await?;
        hit("restore.swap.journal")?;
        // No new sessions on the live database, then end the ones there are.
        let renamed = async {
            close(&client, self.live, "restore.swap", "live").await?;
            rename(&client, self.live, self.aside, "restore.swap.live_aside").await
        }
        .await;
        if let Err(e) = renamed {
            let _ = open(&client, self.live, "").await;
            return Err(e);
        }
        // Likewise the restored copy: a session there would block its rename.
        let renamed = async {
            close(&client, self.restored, "restore.swap", "restored").await?;
            rename(
                &client,
                self.restored,
                self.live,
                "restore.swap.restored_live",
            )
            .await
        }
        .await;
        if let Err(e) = renamed {
            let _ = rename(&client, self.aside, self.live, "").await;
            let _ = open(&client, self.live, "").await;
            let _ = open(&client, self.restored, "").await;
            return Err(e);
        }
        if let Some((restored, live, aside)) = &self.filestore
            && let Err(e) = swap_folders(restored, live, aside)
        {
            let _ = self.back_databases(&client).await;
            return Err(e);
        }
        // The copy kept aside stays open to inspection until `--cleanup` removes it.
        open(&client, self.aside, "restore.swap.open_aside").await?;
        open(&client, self.live, "restore.swap.open_live").await
    }

    /// Undoes a completed swap: the restored copy back to its own name, the live one back.
    pub async fn undo(&self) -> Result<()> {
        if let Some((restored, live, aside)) = &self.filestore {
            swap_folders_back(restored, live, aside)?;
        }
        let client = self.target.connect("postgres").await?;
        self.back_databases(&client).await
    }

    async fn back_databases(&self, client: &tokio_postgres::Client) -> Result<()> {
        close(client, self.live, "restore.undo", "live").await?;
        rename(
            client,
            self.live,
            self.restored,
            "restore.undo.live_restored",
        )
        .await?;
        close(client, self.aside, "restore.undo", "aside").await?;
        rename(client, self.aside, self.live, "restore.undo.aside_live").await?;
        open(client, self.live, "restore.undo.open_live").await?;
        open(client, self.restored, "restore.undo.open_restored").await
    }
}

fn swap_folders(restored: &Path, live: &Path, aside: &Path) -> Result<()> {
    let had_live = live.exists();
    if had_live {
        std::fs::rename(live, aside).map_err(|e| Error::io("rename", live, e))?;
        hit("restore.swap.folder_aside")?;
    }
    if let Err(e) = std::fs::rename(restored, live)
        .map_err(|e| Error::io("rename", restored, e))
        .and_then(|()| hit("restore.swap.folder_live"))
    {
        if had_live {
            let _ = std::fs::rename(aside, live);
        }
        return Err(e);
    }
    Ok(())
}

fn swap_folders_back(restored: &Path, live: &Path, aside: &Path) -> Result<()> {
    std::fs::rename(live, restored).map_err(|e| Error::io("rename", live, e))?;
    hit("restore.undo.folder_restored")?;
    if aside.exists() {
        std::fs::rename(aside, live).map_err(|e| Error::io("rename", aside, e))?;
        hit("restore.undo.folder_live")?;
    }
    Ok(())
}

/// Ends every session on `database` but ours.
async fn end_sessions(client: &tokio_postgres::Client, database: &str) -> Result<()> {
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .map_err(|e| db_error(&format!("cannot end the sessions on {database}"), &e))?;
    Ok(())
}

/// Closes `database` to new sessions, then ends the ones it has: before every rename, so
/// that a client reconnecting at once (as Odoo's workers do) cannot block it.
/// Fail points `<points>.close_<who>` and `<points>.end_<who>_sessions`.
async fn close(
    client: &tokio_postgres::Client,
    database: &str,
    points: &str,
    who: &str,
) -> Result<()> {
    exec(
        client,
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", q(database)),
    )
    .await?;
    hit(&format!("{points}.close_{who}"))?;
    end_sessions(client, database).await?;
    hit(&format!("{points}.end_{who}_sessions"))
}

async fn open(client: &tokio_postgres::Client, database: &str, point: &str) -> Result<()> {
    exec(
        client,
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", q(database)),
    )
    .await?;
    hit(point)
}

async fn rename(client: &tokio_postgres::Client, from: &str, to: &str, point: &str) -> Result<()> {
    exec(
        client,
        &format!("ALTER DATABASE {} RENAME TO {}", q(from), q(to)),
    )
    .await?;
    hit(point)
}

async fn exec(client: &tokio_postgres::Client, sql: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| db_error(sql, &e))
}
