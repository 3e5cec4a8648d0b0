//! A Vigia backup into a new database: every object present and the manifest authenticated
//! before anything is created, the e-invoice guard, the dump proven (format 2: the data
//! streams spooled still encrypted, the schema in memory; format 1: the archive decrypted to
//! a spool file, as `pg_restore -j` cannot read a pipe; free space checked first) and
//! restored while the filestore is written, then ANALYZE and the manifest's row counts.

use std::collections::HashMap;
use std::path::PathBuf;

use vigia_core::{Error, ErrorKind, Result};

use super::phases::Phases;
use super::{Names, RestoreJob, Restored, compare, files};
use crate::copy::CopySpec;
use crate::untrusted::CopyOwner;
use vigia_backup::format::{BackupId, BackupIndex, BackupManifest, DumpObjects, SealedObject};
use vigia_backup::read_back;
use vigia_backup::read_manifest;
use vigia_backup::{Identity, ProvenDump, quick_problems};
use vigia_core::task::blocking;
use vigia_pg::{Archive, RestoreOptions, Section, pg_restore_file};

/// The dump, ready for pg_restore.
enum Spooled {
    /// Format 1: the archive decrypted to a spool file.
    Plain(tempfile::NamedTempFile),
    /// Format 2: proven, nothing decrypted on disk.
    Proven(ProvenDump),
}

/// When the manifest predates `dump_bytes`: spool room as a multiple of the stored dump.
const SPOOL_ESTIMATE_FACTOR: u64 = 6;

impl RestoreJob {
    pub(super) async fn restore_backup(
        &self,
        id: &BackupId,
        identity: &Identity,
        names: &Names,
        phases: &mut Phases<'_>,
    ) -> Result<Restored> {
        phases.start("check the backup");
        let index = self.access.read_index(id).await?;
        let manifest = self.check(id, &index, identity).await?;
        let filestore_dir = self.filestore_dir(id, &manifest, &names.restored)?;
        self.refuse_existing(&names.restored, filestore_dir.as_deref())
            .await?;
        if names.aside.is_some() && !self.accept_einvoice_loss {
            let since = index
                .started_at
                .strftime("%Y-%m-%d %H:%M:%S%.6f")
                .to_string();
            let live = self.target.connect(&self.live_db).await?;
            if let Some(newer) = vigia_odoo::einvoice::created_after(&live, &since).await? {
                return Err(self.einvoice_refusal(&format!("backup {id}"), &newer, None));
            }
        }

        // Keeping the dump's owners (`no-owner = false`) needs a role that may set them.
        let role = self
            .untrusted_role(
                !self.options.no_owner,
                "set [restore] no-owner = false, which keeps the dump's owners and runs its \
                 SQL with that user's rights",
            )
            .await?;

        // The dump is read back (and its sha256 checked) before anything is created; then
        // the filestore is written while pg_restore runs.
        phases.start("spool the dump");
        let spool = match DumpObjects::of(&index).expect("checked by quick_problems") {
            DumpObjects::OneArchive(dump) => {
                Spooled::Plain(self.spool(id, dump, &manifest, identity).await?)
            }
            parts @ DumpObjects::Parts { .. } => {
                Spooled::Proven(self.prove(id, parts, &manifest, identity).await?)
            }
        };
        self.cancel.check()?;
        let spec = CopySpec {
            names,
            filestore: filestore_dir.clone(),
            role,
            import_phase: "restore the database and the filestore",
            check_phase: "analyze and compare row counts",
        };
        let database = async move |owner: &CopyOwner| {
            let (target, db) = (owner.target().clone(), names.restored.clone());
            // The throwaway role owns what it restores; `--role` only for a trusted dump.
            let options = RestoreOptions {
                jobs: self.options.jobs,
                no_owner: self.options.no_owner || !owner.trusted(),
                role: self.options.role.clone().filter(|_| owner.trusted()),
            };
            match spool {
                Spooled::Plain(spool) => {
                    blocking("restore", move || {
                        let archive = Archive::Path(spool.path());
                        pg_restore_file(&target, &db, archive, Section::All, &options)
                    })
                    .await
                }
                Spooled::Proven(dump) => dump
                    .restore(&target, &db, &options, identity)
                    .await?
                    .map_err(|p| {
                        Error::new(
                            ErrorKind::Integrity,
                            format!("backup {id} is damaged: {}: {}", p.object, p.problem),
                        )
                        .with_object(&p.object)
                    }),
            }
        };
        let filestore = async {
            let Some(dir) = &filestore_dir else {
                return Ok(());
            };
            files::restore_files(
                self.access.store.as_ref(),
                identity,
                &manifest,
                &index,
                dir,
                self.live_filestore().as_deref(),
            )
            .await
        };
        let check = async |_: &CopyOwner, counts| {
            let source = format!("backup {id}");
            compare(&names.restored, &counts, &manifest.row_counts, source)?;
            Ok(manifest.row_counts.clone())
        };
        self.make_copy(spec, phases, database, filestore, check)
            .await
    }

    /// Every object present with its size, and the manifest read and authenticated, before
    /// anything is created. (The dump's and files' sha256 are checked as they are read.)
    async fn check(
        &self,
        id: &BackupId,
        index: &BackupIndex,
        identity: &Identity,
    ) -> Result<BackupManifest> {
        let store = self.access.store.as_ref();
        let mut listing = HashMap::new();
        for prefix in [format!("backups/{id}/"), "objects/".to_owned()] {
            for meta in store.list(&prefix).await? {
                listing.insert(meta.key, meta.size_bytes);
            }
        }
        let refuse = |object: &str, problem: &str| damaged(id, object, problem);
        if let Some(p) = quick_problems(index, &listing).first() {
            return Err(refuse(&p.object, &p.problem));
        }
        read_manifest(store, &self.access.name_key, identity, index)
            .await?
            .map_err(|p| refuse(&p.object, &p.problem))
    }

    fn filestore_dir(
        &self,
        id: &BackupId,
        manifest: &BackupManifest,
        database: &str,
    ) -> Result<Option<PathBuf>> {
        if manifest.filestore.is_empty() {
            return Ok(None);
        }
        self.filestore_root(&format!(
            "backup {id} has {} filestore files",
            manifest.filestore.len()
        ))
        .map(|root| Some(root.join(database)))
    }

    /// Format 2: the data streams spooled still encrypted (room checked first) and the schema
    /// read into memory, each proven against the index.
    async fn prove(
        &self,
        id: &BackupId,
        parts: DumpObjects<'_>,
        manifest: &BackupManifest,
        identity: &Identity,
    ) -> Result<ProvenDump> {
        std::fs::create_dir_all(&self.spool_dir)
            .map_err(|e| Error::io("create", &self.spool_dir, e))?;
        // The data streams are spooled (the schema is held in memory). The sizes are the
        // index's word: saturating, like BackupIndex::size_bytes.
        let DumpObjects::Parts { data, .. } = parts else {
            unreachable!("format 2 only")
        };
        let needed = data
            .iter()
            .fold(0, |total: u64, o| total.saturating_add(o.size_bytes));
        super::ensure_free(&self.spool_dir, needed, "the dump's encrypted spool")?;
        let store = self.access.store.as_ref();
        ProvenDump::fetch(store, parts, identity, &self.spool_dir, manifest)
            .await?
            .map_err(|p| damaged(id, &p.object, &p.problem))
    }

    /// Format 1: the dump decrypted to `spool_dir/<id>.dump`, its sha256 checked on the way;
    /// removed when the returned guard drops.
    async fn spool(
        &self,
        id: &BackupId,
        dump: &SealedObject,
        manifest: &BackupManifest,
        identity: &Identity,
    ) -> Result<tempfile::NamedTempFile> {
        std::fs::create_dir_all(&self.spool_dir)
            .map_err(|e| Error::io("create", &self.spool_dir, e))?;
        let needed = if manifest.dump_bytes > 0 {
            manifest.dump_bytes
        } else {
            dump.size_bytes * SPOOL_ESTIMATE_FACTOR
        };
        super::ensure_free(&self.spool_dir, needed, "the dump's spool")?;
        let spool = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .suffix(".dump")
            .tempfile_in(&self.spool_dir)
            .map_err(|e| Error::io("create a spool file in", &self.spool_dir, e))?;
        // Held until the spool is dropped: `restore --cleanup` leaves a locked spool alone.
        spool
            .as_file()
            .lock()
            .map_err(|e| Error::io("lock", spool.path(), e))?;
        let mut file = spool
            .reopen()
            .map_err(|e| Error::io("open", spool.path(), e))?;
        // Never more than was checked free: a zstd bomb fails here, not on a full disk.
        let written = read_back(self.access.store.as_ref(), dump, identity, move |plain| {
            let copied = std::io::copy(
                &mut std::io::Read::take(plain, needed.saturating_add(1)),
                &mut file,
            )?;
            if copied > needed {
                return Err(std::io::Error::other(format!(
                    "it decompresses to more than the {needed} bytes its manifest gives"
                )));
            }
            Ok(copied)
        })
        .await?;
        written.map_err(|damage| damaged(id, &dump.key, &damage))?;
        Ok(spool)
    }
}

fn damaged(id: &BackupId, object: &str, problem: &str) -> Error {
    Error::new(
        ErrorKind::Integrity,
        format!(
            "backup {id} is damaged and was not restored (nothing was created): {object}: \
             {problem}"
        ),
    )
    .with_object(object)
}
