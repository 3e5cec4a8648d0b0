//! Undoing a swap from its journal and what really exists: where each database is now (by
//! oid, which follows it through renames) and each folder (by device and inode). Every step
//! looks first and does only what is left, so an undo killed anywhere is simply run again.
//! It never finishes a swap: the check after it did not complete, so the restored copy is not
//! known to be good. Each statement is followed by a fail point (`restore.undo.<step>`), and
//! the result is checked before anyone is told the live database is as it was.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use vigia_core::{Error, ErrorKind, Result};

use super::journal::{FolderId, Folders, SwapJournal};
use super::swap::{close, open, rename, rename_folder};
use vigia_pg::{PgAdmin, PgTarget};

pub(super) struct Undo<'a> {
    pub target: &'a PgTarget,
    pub journal: &'a SwapJournal,
}

impl Undo<'_> {
    /// Puts the live database and folder back as they were before the swap and checks that
    /// they are. Returns the steps taken (none when the swap had renamed nothing) and what
    /// was checked.
    pub async fn run(&self) -> Result<(Vec<String>, String)> {
        let mut steps = Vec::new();
        if let Some(folders) = &self.journal.filestore {
            folders_back(folders, &mut steps)?;
        }
        let client = PgAdmin::connect(self.target).await?;
        self.databases_back(&client, &mut steps).await?;
        let checked = self.check(&client).await?;
        Ok((steps, checked))
    }

    async fn databases_back(&self, client: &PgAdmin, steps: &mut Vec<String>) -> Result<()> {
        let j = self.journal;
        let (live, restored, aside) = (&j.live.name, &j.restored.name, &j.aside);
        // The restored copy back to its own name.
        let now = Databases::read(client, j).await?;
        match now.name_of(j.restored.oid) {
            Some(name) if name == live => {
                now.free(restored)?;
                close(client, live, "restore.undo", "live").await?;
                rename(client, live, restored, "restore.undo.live_restored").await?;
                steps.push(format!(
                    "renamed {live} (the restored copy) back to {restored}"
                ));
            }
            Some(name) if name == restored => {}
            Some(name) => return Err(unexpected(format!("the restored copy is named {name}"))),
            // Dropped by hand: nothing to move.
            None => {}
        }
        // The live database back to its name.
        let now = Databases::read(client, j).await?;
        match now.name_of(j.live.oid) {
            Some(name) if name == aside => {
                now.free(live)?;
                close(client, aside, "restore.undo", "aside").await?;
                rename(client, aside, live, "restore.undo.aside_live").await?;
                steps.push(format!("renamed {aside} back to {live}"));
            }
            Some(name) if name == live => {}
            Some(name) => {
                return Err(unexpected(format!(
                    "the live database of before the swap is named {name}"
                )));
            }
            None => {
                return Err(unexpected(format!(
                    "the live database of before the swap (oid {}) no longer exists",
                    j.live.oid
                )));
            }
        }
        // Both open again: the live one to Odoo, the restored copy to inspection.
        let now = Databases::read(client, j).await?;
        if !now.allows(j.live.oid) {
            open(client, live, "restore.undo.open_live").await?;
            steps.push(format!("opened {live} to connections"));
        }
        if now.name_of(j.restored.oid) == Some(restored) && !now.allows(j.restored.oid) {
            open(client, restored, "restore.undo.open_restored").await?;
            steps.push(format!("opened {restored} to connections"));
        }
        Ok(())
    }

    /// Checks that the live database and folder are those of before the swap (where the
    /// restored copy ended up is not the live data's concern); says what was checked.
    async fn check(&self, client: &PgAdmin) -> Result<String> {
        let j = self.journal;
        let now = Databases::read(client, j).await?;
        let mut ok = now.name_of(j.live.oid) == Some(&j.live.name) && now.allows(j.live.oid);
        let mut checked = format!(
            "{} is the database it was before the swap, open to connections",
            j.live.name
        );
        if let Some(f) = &j.filestore {
            let at_live = FolderId::at(&f.live)?;
            let live = f.live.display();
            if f.live_existed {
                ok &= at_live.is_some() && at_live == f.live_id;
                let _ = write!(checked, ", and {live} is the folder it was before");
            } else {
                ok &= at_live != Some(f.restored_id);
                let _ = write!(checked, " ({live} did not exist before the swap)");
            }
        }
        if ok {
            return Ok(checked);
        }
        Err(unexpected(format!(
            "after the undo the state is not that of before the swap: {}",
            state_with(&now, j)?
        )))
    }
}

/// The restored folder back to its name, then the live one.
fn folders_back(f: &Folders, steps: &mut Vec<String>) -> Result<()> {
    if FolderId::at(&f.live)? == Some(f.restored_id) {
        if FolderId::at(&f.restored)?.is_some() {
            return Err(unexpected(format!(
                "{} holds the restored folder and {} exists too",
                f.live.display(),
                f.restored.display()
            )));
        }
        rename_folder(&f.live, &f.restored, "restore.undo.folder_restored")?;
        steps.push(format!(
            "renamed folder {} (the restored one) back to {}",
            f.live.display(),
            f.restored.display()
        ));
    }
    if let Some(live_id) = f.live_id
        && FolderId::at(&f.aside)? == Some(live_id)
    {
        if FolderId::at(&f.live)?.is_some() {
            return Err(unexpected(format!(
                "{} exists and is not the live folder, which is {}",
                f.live.display(),
                f.aside.display()
            )));
        }
        rename_folder(&f.aside, &f.live, "restore.undo.folder_live")?;
        steps.push(format!(
            "renamed folder {} back to {}",
            f.aside.display(),
            f.live.display()
        ));
    }
    Ok(())
}

fn unexpected(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: fix it by hand"))
}

/// What the journal's names and folders are now, for a person: `name: what` pairs.
pub(super) async fn state(target: &PgTarget, journal: &SwapJournal) -> String {
    let read = async {
        let client = PgAdmin::connect(target).await?;
        let now = Databases::read(&client, journal).await?;
        state_with(&now, journal)
    };
    match read.await {
        Ok(state) => state,
        Err(e) => format!("unknown ({e})"),
    }
}

fn state_with(now: &Databases, j: &SwapJournal) -> Result<String> {
    let mut parts: Vec<String> = [&j.live.name, &j.aside, &j.restored.name]
        .into_iter()
        .map(|name| {
            let what = match now.oid_named(name) {
                None => "missing".to_owned(),
                Some(oid) => {
                    let which = if oid == j.live.oid {
                        "the live database of before the swap"
                    } else if oid == j.restored.oid {
                        "the restored copy"
                    } else {
                        "another database"
                    };
                    let open = if now.allows(oid) { "open" } else { "closed" };
                    format!("{which}, {open} to connections")
                }
            };
            format!("{name}: {what}")
        })
        .collect();
    if let Some(f) = &j.filestore {
        for path in [&f.live, &f.aside, &f.restored] {
            parts.push(format!("{}: {}", path.display(), folder_state(path, f)?));
        }
    }
    Ok(parts.join("; "))
}

fn folder_state(path: &Path, f: &Folders) -> Result<&'static str> {
    Ok(match FolderId::at(path)? {
        None => "missing",
        Some(id) if Some(id) == f.live_id => "the live folder of before the swap",
        Some(id) if id == f.restored_id => "the restored folder",
        Some(_) => "something else",
    })
}

/// The journal's databases as they are now: by oid, their name and whether they accept
/// connections; and which oid holds each of the journal's names.
struct Databases {
    by_oid: HashMap<u32, (String, bool)>,
    by_name: HashMap<String, u32>,
}

impl Databases {
    async fn read(client: &PgAdmin, j: &SwapJournal) -> Result<Self> {
        let oids = vec![j.live.oid, j.restored.oid];
        let names = [
            j.live.name.as_str(),
            j.restored.name.as_str(),
            j.aside.as_str(),
        ];
        let mut now = Self {
            by_oid: HashMap::new(),
            by_name: HashMap::new(),
        };
        for row in client.find(&oids, &names).await? {
            now.by_name.insert(row.name.clone(), row.oid);
            now.by_oid
                .insert(row.oid, (row.name, row.allows_connections));
        }
        Ok(now)
    }

    fn name_of(&self, oid: u32) -> Option<&String> {
        self.by_oid.get(&oid).map(|(name, _)| name)
    }

    fn oid_named(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    fn allows(&self, oid: u32) -> bool {
        self.by_oid.get(&oid).is_some_and(|(_, allows)| *allows)
    }

    /// Refuses when `name` is taken: the rename back would fail, or worse.
    fn free(&self, name: &str) -> Result<()> {
        match self.oid_named(name) {
            None => Ok(()),
            Some(oid) => Err(unexpected(format!(
                "database {name} exists (oid {oid}) and is not the one to rename back there"
            ))),
        }
    }
}
