//! Replacing the live database and filestore with the restored ones: the e-invoicing guard
//! before, the journal of the swap, and the renames (live aside, restored into place), every
//! database closed to new sessions before its sessions are ended and it is renamed. The way
//! back is undo.rs.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vigia_core::failpoint::hit;
use vigia_core::{Error, Result};

use super::journal::{Database, FolderId, Folders, SwapJournal};
use vigia_core::ports::database::Database as _;
use vigia_pg::{PgAdmin, PgTarget};

/// What the swap moved aside (kept until `vigia restore --cleanup`).
#[derive(Debug, Clone, Serialize)]
pub struct Aside {
    pub database: String,
    pub filestore: Option<PathBuf>,
}

/// A swap to be made: the live database and filestore folder renamed aside, the restored
/// ones renamed into place.
pub struct Swap<'a> {
    pub target: &'a PgTarget,
    pub live: &'a str,
    pub restored: &'a str,
    pub aside: &'a str,
    /// `(restored folder, live folder, aside folder)` when the restore has a filestore.
    pub filestore: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Swap<'_> {
    /// The journal of this swap, with the databases' oids and the folders' identities; checks
    /// that the live database and the restored copy exist and that nothing has the aside
    /// names. Changes nothing.
    pub async fn journal(&self, odoo_stopped: bool) -> Result<SwapJournal> {
        let admin = PgAdmin::connect(self.target).await?;
        let oid = async |name: &str| admin.oid_of(name).await;
        let missing = |name: &str| Error::internal(format!("database {name} does not exist"));
        let live = oid(self.live).await?.ok_or_else(|| missing(self.live))?;
        let restored = oid(self.restored)
            .await?
            .ok_or_else(|| missing(self.restored))?;
        if oid(self.aside).await?.is_some() {
            return Err(taken(self.aside));
        }
        let filestore = match &self.filestore {
            Some((restored, live, aside)) => Some(folders(restored, live, aside)?),
            None => None,
        };
        Ok(SwapJournal {
            format: SwapJournal::FORMAT,
            cluster: SwapJournal::cluster_of(self.target),
            live: Database {
                name: self.live.to_owned(),
                oid: live,
            },
            restored: Database {
                name: self.restored.to_owned(),
                oid: restored,
            },
            aside: self.aside.to_owned(),
            filestore,
            odoo_stopped,
            pid: std::process::id(),
            started_at: jiff::Timestamp::now(),
        })
    }
}

fn taken(name: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!(
        "{name} exists already (a copy an earlier restore of this backup kept aside?): nothing \
         was swapped; remove it with `vigia restore --cleanup --apply`, or move it away"
    ))
}

/// The folders of a swap with their identities: the restored one and (when there is one)
/// the live one must be real folders, the aside name free.
fn folders(restored: &Path, live: &Path, aside: &Path) -> Result<Folders> {
    let real_dir = |path: &Path| -> Result<Option<FolderId>> {
        let id = FolderId::at(path)?;
        if id.is_some() && !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::invalid_input(format!(
                "{} is not a folder (a link?): nothing was swapped",
                path.display()
            )));
        }
        Ok(id)
    };
    let restored_id = real_dir(restored)?.ok_or_else(|| {
        Error::internal(format!(
            "the restored folder {} is missing",
            restored.display()
        ))
    })?;
    let live_id = real_dir(live)?;
    if FolderId::at(aside)?.is_some() {
        return Err(taken(aside.display()));
    }
    Ok(Folders {
        restored: restored.to_path_buf(),
        live: live.to_path_buf(),
        aside: aside.to_path_buf(),
        live_existed: live_id.is_some(),
        restored_id,
        live_id,
    })
}

/// Makes the swap the journal describes, one statement at a time, each followed by its fail
/// point (`restore.swap.<step>`). On an error it stops where it is: the caller undoes the
/// swap from the journal and what exists (undo.rs).
pub async fn forward(target: &PgTarget, journal: &SwapJournal) -> Result<()> {
    let client = PgAdmin::connect(target).await?;
    hit("restore.swap.journal")?;
    let (live, restored, aside) = (&journal.live.name, &journal.restored.name, &journal.aside);
    close(&client, live, "restore.swap", "live").await?;
    rename(&client, live, aside, "restore.swap.live_aside").await?;
    // Likewise the restored copy: a session there would block its rename.
    close(&client, restored, "restore.swap", "restored").await?;
    rename(&client, restored, live, "restore.swap.restored_live").await?;
    if let Some(f) = &journal.filestore {
        if f.live_existed {
            rename_folder(&f.live, &f.aside, "restore.swap.folder_aside")?;
        }
        rename_folder(&f.restored, &f.live, "restore.swap.folder_live")?;
    }
    // The copy kept aside stays open to inspection until `--cleanup` removes it.
    open(&client, aside, "restore.swap.open_aside").await?;
    open(&client, live, "restore.swap.open_live").await
}

/// Renames a folder (never following a link), then the fail point `point`.
pub(super) fn rename_folder(from: &Path, to: &Path, point: &str) -> Result<()> {
    std::fs::rename(from, to)
        .map_err(|e| Error::io(&format!("rename (to {})", to.display()), from, e))?;
    hit(point)
}

/// Closes `database` to new sessions, then ends the ones it has: before every rename, so
/// that a client reconnecting at once (as Odoo's workers do) cannot block it.
/// Fail points `<points>.close_<who>` and `<points>.end_<who>_sessions`.
pub(super) async fn close(admin: &PgAdmin, database: &str, points: &str, who: &str) -> Result<()> {
    admin.allow_connections(database, false).await?;
    hit(&format!("{points}.close_{who}"))?;
    admin.end_sessions(database).await?;
    hit(&format!("{points}.end_{who}_sessions"))
}

pub(super) async fn open(admin: &PgAdmin, database: &str, point: &str) -> Result<()> {
    admin.allow_connections(database, true).await?;
    hit(point)
}

pub(super) async fn rename(admin: &PgAdmin, from: &str, to: &str, point: &str) -> Result<()> {
    admin.rename(from, to).await?;
    hit(point)
}
