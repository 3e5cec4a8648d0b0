//! In-flight multipart uploads, one small file each in a folder of `state-dir`: a run that
//! dies leaves its entries, and the next run of the same store (under its lock) aborts those
//! uploads. Some S3 servers (s3s-fs among them) cannot list unfinished uploads, so vigia
//! remembers. Several stores (production, staging) may share a state dir and a bucket: an
//! entry names its store and writer, and a run aborts only its own store's dead writers'.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigia_core::process::ProcessIdentity;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEntry {
    /// The full key (with the store's prefix).
    pub key: String,
    pub upload_id: String,
    /// The store's location (bucket and prefix); entries of older vigias have none
    /// and are never aborted.
    #[serde(default)]
    pub store: String,
    /// The writer: host, pid, boot and pid namespace, start time.
    #[serde(flatten)]
    pub writer: ProcessIdentity,
}

impl UploadEntry {
    /// An upload of `store`'s, started now by this process.
    pub fn new(store: String, key: String, upload_id: String) -> Self {
        Self {
            key,
            upload_id,
            store,
            writer: ProcessIdentity::current(),
        }
    }

    /// Whether it is `store`'s and its writer is provably gone (see `ProcessIdentity`).
    pub fn is_dead_write_of(&self, store: &str) -> bool {
        self.store == store && self.writer.is_gone()
    }
}

#[derive(Debug, Clone)]
pub struct UploadJournal {
    dir: PathBuf,
}

impl UploadJournal {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, upload_id: &str) -> PathBuf {
        let digest = hex::encode(Sha256::digest(upload_id.as_bytes()));
        self.dir.join(format!("{}.json", &digest[..32]))
    }

    /// Records an upload before its first part is sent.
    pub fn record(&self, entry: &UploadEntry) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let text = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        std::fs::write(self.path(&entry.upload_id), text)
    }

    /// Forgets a completed or aborted upload.
    pub fn forget(&self, upload_id: &str) {
        let _ = std::fs::remove_file(self.path(upload_id));
    }

    /// Every recorded upload; unreadable entries are skipped (and logged).
    pub fn entries(&self) -> Vec<UploadEntry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                serde_json::from_str(&text)
                    .inspect_err(|err| {
                        tracing::warn!(
                            "skipping upload journal entry {}: {err}",
                            e.path().display()
                        );
                    })
                    .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lists_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let journal = UploadJournal::new(&dir.path().join("s3-uploads"));
        assert!(journal.entries().is_empty());
        let entry = UploadEntry::new(
            "s3://bucket/prod/".into(),
            "prod/backups/x/dump.age".into(),
            "abc/def+1".into(),
        );
        journal.record(&entry).unwrap();
        assert_eq!(journal.entries(), [entry]);
        journal.forget("abc/def+1");
        assert!(journal.entries().is_empty());
    }
}
