//! The checks of one backup, level by level.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;

use futures::StreamExt;
use sha1::{Digest, Sha1};
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, ErrorKind, Result};

use super::VerifyJob;
use super::drill::Drill;
use crate::catalog::read_manifest;
use crate::copy_records::CopyRecords;
use crate::extra::extra_entries;
use crate::format::{
    BackupIndex, BackupManifest, DumpObjects, NAME_KEY_KEY, Problem, SealedObject, VerifyLevel,
    extra_key, manifest_key,
};
use crate::keys::Identity;
use crate::proven_dump::ProvenDump;
use crate::seal::{read_back, read_small};
use vigia_pg::{PgTarget, RestoreMode, pg_restore_stream};

/// A drill's `pg_restore -j` for indexes and constraints: the two cores of a small server.
const DRILL_JOBS: u32 = 2;

pub(super) struct Checker<'j> {
    job: &'j VerifyJob,
    level: VerifyLevel,
    identity: Option<Identity>,
    /// Every key under `backups/` and `objects/` with its size: one LIST each per run.
    listing: HashMap<String, u64>,
    /// Problems of `keys/name-key.age`, found once per run and reported with every backup.
    name_key_problems: Vec<Problem>,
}

impl<'j> Checker<'j> {
    pub async fn new(
        job: &'j VerifyJob,
        identity: Option<Identity>,
        level: VerifyLevel,
    ) -> Result<Self> {
        let store = job.access.store.as_ref();
        let mut listing = HashMap::new();
        for prefix in ["backups/", "objects/"] {
            for meta in store.list(prefix).await? {
                listing.insert(meta.key, meta.size_bytes);
            }
        }
        let mut checker = Self {
            job,
            level,
            identity,
            listing,
            name_key_problems: Vec::new(),
        };
        if level >= VerifyLevel::Full {
            checker.name_key_problems = checker.check_name_key_copy().await?;
        }
        Ok(checker)
    }

    fn store(&self) -> &dyn ObjectStore {
        self.job.access.store.as_ref()
    }

    fn identity(&self) -> &Identity {
        self.identity
            .as_ref()
            .expect("full and drill are only chosen with an identity")
    }

    /// Every problem found in `index`'s backup at the checker's level; empty when it passed.
    pub async fn check(&self, index: &BackupIndex) -> Result<Vec<Problem>> {
        let mut problems = self.quick(index);
        if self.level == VerifyLevel::Quick || !problems.is_empty() {
            // A missing or short object fails every deeper check the same way.
            return Ok(problems);
        }
        problems.extend(self.name_key_problems.iter().cloned());
        problems.extend(self.full(index).await?);
        Ok(problems)
    }

    fn quick(&self, index: &BackupIndex) -> Vec<Problem> {
        quick_problems(index, &self.listing)
    }

    async fn full(&self, index: &BackupIndex) -> Result<Vec<Problem>> {
        let find = |key: String| index.objects.iter().find(|o| o.key == key);
        let manifest_object = find(manifest_key(&index.id)).expect("checked by quick");
        let dump = DumpObjects::of(index).expect("checked by quick");

        let manifest = match self.read_manifest(index).await? {
            Ok(manifest) => manifest,
            Err(problem) => return Ok(vec![problem]),
        };
        let dump_problems = async {
            if self.level == VerifyLevel::Drill {
                self.drill(dump, &manifest).await
            } else {
                let lists = dump.all().into_iter().map(|object| self.list_dump(object));
                let listed = futures::future::try_join_all(lists).await?;
                Ok(listed.into_iter().flatten().collect())
            }
        };
        let files = self.read_files(index, &manifest);
        let (dump_problems, files) = tokio::join!(dump_problems, files);
        let mut problems = dump_problems?;
        problems.extend(files?);
        for object in index.objects.iter().filter(|o| {
            o.key != manifest_object.key && !dump.holds(&o.key) && !o.key.starts_with("objects/")
        }) {
            problems.extend(self.read_other(object, &manifest).await?);
        }
        Ok(problems)
    }

    async fn read_manifest(
        &self,
        index: &BackupIndex,
    ) -> Result<std::result::Result<BackupManifest, Problem>> {
        read_manifest(
            self.store(),
            &self.job.access.name_key,
            self.identity(),
            index,
        )
        .await
    }

    /// `pg_restore --list` of the dump as it is read back: it executes nothing, so it may
    /// read bytes whose sha256 is checked only at the end.
    async fn list_dump(&self, object: &SealedObject) -> Result<Vec<Problem>> {
        let target: PgTarget = self.job.target.clone();
        let listed = read_back(self.store(), object, self.identity(), move |dump| {
            pg_restore_stream(&target, &RestoreMode::List, dump).map(drop)
        })
        .await?;
        Ok(listed
            .err()
            .map(|damage| Problem::new(&object.key, damage))
            .into_iter()
            .collect())
    }

    /// The drill: the stored dump's objects proven against the index before pg_restore reads
    /// a byte of them (spooled still encrypted; the schema decrypted into memory), then
    /// restored into a scratch database and its row counts compared with the manifest's.
    async fn drill(
        &self,
        objects: DumpObjects<'_>,
        manifest: &BackupManifest,
    ) -> Result<Vec<Problem>> {
        let fetched = ProvenDump::fetch(
            self.store(),
            objects,
            self.identity(),
            &self.spool_dir(),
            manifest,
        )
        .await?;
        let dump = match fetched {
            Ok(dump) => dump,
            Err(problem) => return Ok(vec![problem]),
        };
        let first_key = objects.all()[0].key.clone();
        let records = self.job.state_dir.as_ref().map(|dir| {
            CopyRecords::new(
                &dir.join("restores"),
                self.job.environment.as_deref(),
                &self.job.target,
            )
        });
        let drill = Drill::prepare(&self.job.target, &manifest.id, records.as_ref()).await?;
        // A kill here leaves the scratch database and role for `restore --cleanup`.
        vigia_core::failpoint::hit("verify.drill")?;
        let problems = drill
            .run(dump, self.identity(), manifest, &first_key, DRILL_JOBS)
            .await;
        drill.finish().await;
        problems
    }

    /// `state-dir/spool`, or the system's temporary folder without a state dir.
    fn spool_dir(&self) -> PathBuf {
        self.job
            .state_dir
            .as_ref()
            .map_or_else(std::env::temp_dir, |dir| dir.join("spool"))
    }

    async fn read_small(
        &self,
        object: &SealedObject,
    ) -> Result<std::result::Result<Vec<u8>, Problem>> {
        read_small(self.store(), object, self.identity()).await
    }

    /// `extra.age` (a tar whose files must match the manifest's list), or any other object
    /// the index names (read back to the end).
    async fn read_other(
        &self,
        object: &SealedObject,
        manifest: &BackupManifest,
    ) -> Result<Option<Problem>> {
        let content = match self.read_small(object).await? {
            Ok(content) => content,
            Err(problem) => return Ok(Some(problem)),
        };
        if object.key != extra_key(&manifest.id) {
            return Ok(None);
        }
        Ok(match extra_entries(&content) {
            Ok(entries) if entries == manifest.extra => None,
            Ok(_) => Some(Problem::new(
                &object.key,
                "its files differ from the manifest's list",
            )),
            Err(e) => Some(Problem::new(
                &object.key,
                format!("not a readable tar: {e}"),
            )),
        })
    }

    /// Every filestore object decrypts to content whose sha1 is the one the manifest gives.
    async fn read_files(
        &self,
        index: &BackupIndex,
        manifest: &BackupManifest,
    ) -> Result<Vec<Problem>> {
        let expected: HashMap<&str, &str> = manifest
            .filestore
            .iter()
            .map(|f| (f.object.as_str(), f.sha1.as_str()))
            .collect();
        let mut problems: Vec<Problem> = manifest
            .filestore
            .iter()
            .filter(|f| !index.objects.iter().any(|o| o.key == f.object))
            .map(|f| {
                Problem::new(
                    &f.object,
                    format!(
                        "the manifest lists it for {}, the index does not",
                        f.store_fname
                    ),
                )
            })
            .collect();
        let reads = index
            .objects
            .iter()
            .filter(|o| o.key.starts_with("objects/"))
            .map(|object| {
                let sha1 = expected.get(object.key.as_str()).map(|s| (*s).to_owned());
                self.read_file(object, sha1)
            });
        let mut reads = futures::stream::iter(reads).buffer_unordered(self.job.concurrency.max(1));
        while let Some(result) = reads.next().await {
            self.job.cancel.check()?;
            problems.extend(result?);
        }
        Ok(problems)
    }

    async fn read_file(
        &self,
        object: &SealedObject,
        expected_sha1: Option<String>,
    ) -> Result<Option<Problem>> {
        let Some(expected_sha1) = expected_sha1 else {
            return Ok(Some(Problem::new(
                &object.key,
                "the index lists it but the manifest names no file for it",
            )));
        };
        let sha1 = read_back(self.store(), object, self.identity(), |content| {
            let mut hasher = Sha1::new();
            io::copy(content, &mut HashWriter(&mut hasher))?;
            Ok(hex::encode(hasher.finalize()))
        })
        .await?;
        Ok(match sha1 {
            Err(damage) => Some(Problem::new(&object.key, damage)),
            Ok(sha1) if sha1 != expected_sha1 => Some(Problem::new(
                &object.key,
                format!("the file inside has sha1 {sha1}, the manifest says {expected_sha1}"),
            )),
            Ok(_) => None,
        })
    }

    /// `keys/name-key.age` decrypts to the configured name key: the store alone, with the
    /// identity, is enough to recover everything.
    async fn check_name_key_copy(&self) -> Result<Vec<Problem>> {
        match self.store().head(NAME_KEY_KEY).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Ok(vec![Problem::new(NAME_KEY_KEY, "missing from the store")]);
            }
            Err(e) => return Err(e.into()),
        }
        let mut reader =
            match crate::seal::open_sealed(self.store(), NAME_KEY_KEY, self.identity()).await {
                Ok(reader) => reader,
                Err(e) if e.kind() == ErrorKind::Crypto => {
                    return Ok(vec![Problem::new(NAME_KEY_KEY, e.message())]);
                }
                Err(e) => return Err(e),
            };
        let text = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            reader.read_to_string(&mut out).map(|_| out)
        })
        .await
        .map_err(|e| Error::internal(format!("the reading task failed: {e}")))?;
        let problem = match text {
            Err(e) => format!("cannot read it back: {e}"),
            Ok(text) if text.trim_end() == self.job.access.name_key.to_hex().as_str() => {
                return Ok(Vec::new());
            }
            Ok(_) => "it does not hold the configured name key".to_owned(),
        };
        Ok(vec![Problem::new(NAME_KEY_KEY, problem)])
    }
}

/// Every object the index names exists with its size, and the index names a manifest and the
/// dump's objects for its format. (The index's own mac was checked when the catalog was read.)
pub fn quick_problems<S: std::hash::BuildHasher>(
    index: &BackupIndex,
    listing: &HashMap<String, u64, S>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(problem) = DumpObjects::of(index) {
        problems.push(problem);
    }
    let manifest = manifest_key(&index.id);
    if !index.objects.iter().any(|o| o.key == manifest) {
        problems.push(Problem::new(&manifest, "the index does not list it"));
    }
    for object in &index.objects {
        match listing.get(&object.key) {
            None => problems.push(Problem::new(&object.key, "missing from the store")),
            Some(&size) if size != object.size_bytes => problems.push(Problem::new(
                &object.key,
                format!(
                    "size: {size} bytes stored, the index says {}",
                    object.size_bytes
                ),
            )),
            Some(_) => {}
        }
    }
    problems
}

/// `io::Write` into a hasher, for `io::copy`.
struct HashWriter<'h>(&'h mut Sha1);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
