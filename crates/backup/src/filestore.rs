//! The filestore, incrementally: every referenced file is re-hashed (Odoo names it by its
//! sha1, so a damaged file is caught here, before it is backed up), and uploaded, sealed, only
//! when its object is not in the store yet. One LIST per run, not a HEAD per file.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use sha1::{Digest, Sha1};
use vigia_core::ports::store::ObjectStore;
use vigia_core::task::blocking;
use vigia_core::{Error, ErrorKind, Result};

use crate::format::SealedObject;
use crate::format::{FilestoreEntry, FilestoreProblem, NameKey, name_some, object_key};
use crate::keys::Recipients;
use crate::seal::put_sealed;
use vigia_odoo::filestore::{self as layout, CheckedReader, file_path};

/// Files hashed and uploaded at once.
const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilestoreReport {
    pub files: u64,
    pub new_files: u64,
    /// Bytes uploaded (sealed) for new files.
    pub new_bytes: u64,
    #[serde(skip)]
    pub entries: Vec<FilestoreEntry>,
    /// Every object the entries need, once each: new ones and those reused from earlier backups.
    #[serde(skip)]
    pub objects: Vec<SealedObject>,
    /// Files skipped with `--allow-missing-files`.
    pub problems: Vec<FilestoreProblem>,
    /// How long the filestore pass took (listing, re-hashing, uploading), beside the dump.
    pub duration_ms: u64,
}

#[derive(Debug)]
pub struct FilestoreBackup<'a> {
    pub store: &'a dyn ObjectStore,
    /// `<data-dir>/filestore/<database>`.
    pub dir: &'a Path,
    pub name_key: &'a NameKey,
    pub recipients: &'a Recipients,
    /// Back up what is there instead of failing on missing or damaged files.
    pub allow_missing: bool,
}

impl FilestoreBackup<'_> {
    /// Backs up the files `refs` (`ir_attachment.store_fname` values) name. `known` holds the
    /// objects earlier backups' indexes list (with their sha256): those still in the store are
    /// reused; anything else in `objects/` (left by a run that died) is uploaded again.
    pub async fn run(
        &self,
        refs: &[String],
        known: &HashMap<String, SealedObject>,
    ) -> Result<FilestoreReport> {
        let timer = std::time::Instant::now();
        let existing: HashSet<String> = self
            .store
            .list("objects/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        let hashed: Vec<Hashed> = stream::iter(refs.iter().cloned())
            .map(|store_fname| self.hash(store_fname))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut report = FilestoreReport::default();
        let mut good = Vec::new();
        for h in hashed {
            match h {
                Hashed::Ok(entry) => good.push(entry),
                Hashed::Problem(p) => report.problems.push(p),
            }
        }
        if !report.problems.is_empty() && !self.allow_missing {
            return Err(problems_error(self.dir, &report.problems));
        }
        // Odoo may reference one file from several attachments: one object each.
        let mut seen = HashSet::new();
        let mut to_upload = Vec::new();
        for entry in &good {
            if !seen.insert(entry.object.clone()) {
                continue;
            }
            match known
                .get(&entry.object)
                .filter(|_| existing.contains(&entry.object))
            {
                Some(reused) => report.objects.push(reused.clone()),
                None => to_upload.push(entry),
            }
        }
        let uploaded: Vec<SealedObject> = stream::iter(to_upload)
            .map(|entry| self.upload(entry))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        report.files = good.len() as u64;
        report.new_files = uploaded.len() as u64;
        report.new_bytes = uploaded.iter().map(|o| o.size_bytes).sum();
        report.objects.extend(uploaded);
        report.objects.sort_by(|a, b| a.key.cmp(&b.key));
        report.entries = good;
        report.duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    async fn hash(&self, store_fname: String) -> Result<Hashed> {
        file_path(self.dir, &store_fname)?;
        let (dir, name_key) = (self.dir.to_path_buf(), self.name_key.clone());
        blocking("hashing", move || hash_file(&dir, store_fname, &name_key)).await
    }

    async fn upload(&self, entry: &FilestoreEntry) -> Result<SealedObject> {
        let dir = self.dir.to_path_buf();
        let (name, sha1, size) = (
            entry.store_fname.clone(),
            entry.sha1.clone(),
            entry.size_bytes,
        );
        let object = put_sealed(self.store, &entry.object, self.recipients, move || {
            let file = layout::open(&dir, &name)
                .map_err(|e| std::io::Error::other(e.message().to_owned()))?
                .ok_or_else(|| {
                    std::io::Error::other(format!(
                        "filestore file {name} disappeared while it was backed up; run the \
                         backup again"
                    ))
                })?;
            Ok(Box::new(CheckedReader::new(file, &name, &sha1, size)) as Box<dyn Read>)
        })
        .await?;
        vigia_core::failpoint::hit("backup.filestore")?;
        Ok(object)
    }
}

enum Hashed {
    Ok(FilestoreEntry),
    Problem(FilestoreProblem),
}

fn hash_file(dir: &Path, store_fname: String, name_key: &NameKey) -> Result<Hashed> {
    let path = dir.join(&store_fname);
    let Some(mut file) = layout::open(dir, &store_fname)? else {
        return Ok(Hashed::Problem(FilestoreProblem::Missing { store_fname }));
    };
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", &path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha1 = hex::encode(hasher.finalize());
    let expected = &store_fname[3..];
    if sha1 != expected {
        return Ok(Hashed::Problem(FilestoreProblem::Damaged {
            store_fname,
            actual_sha1: sha1,
        }));
    }
    Ok(Hashed::Ok(FilestoreEntry {
        object: object_key(&name_key.object_name(&sha1)),
        store_fname,
        sha1,
        size_bytes: size,
    }))
}

fn problems_error(dir: &Path, problems: &[FilestoreProblem]) -> Error {
    let named: Vec<String> = problems
        .iter()
        .map(|p| match p {
            FilestoreProblem::Missing { store_fname } => format!("{store_fname} (missing)"),
            FilestoreProblem::Damaged {
                store_fname,
                actual_sha1,
            } => {
                format!("{store_fname} (damaged: its content's sha1 is {actual_sha1})")
            }
        })
        .collect();
    Error::new(
        ErrorKind::Integrity,
        format!(
            "{} referenced filestore file(s) in {} cannot be backed up: {}; restore them from an \
             older backup, or pass --allow-missing-files to back up the rest",
            problems.len(),
            dir.display(),
            name_some(&named)
        ),
    )
    .with_file(dir)
}
