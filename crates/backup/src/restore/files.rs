//! The filestore restored into a fresh folder: every object decrypted, its sha1 checked
//! against its name, written under a temporary name and renamed; the folder takes the live
//! one's owner and mode, so that Odoo can read and write it after a swap.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use sha1::{Digest, Sha1};
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, ErrorKind, Result};

use crate::filestore::FilestoreEntry;
use crate::format::{BackupIndex, BackupManifest};
use crate::keys::Identity;
use crate::seal::{SealedObject, read_back};

/// Files restored at once.
const CONCURRENCY: usize = 4;

/// Restores every file of `manifest` under `dir` (which must not exist yet); `live` is the
/// live filestore folder whose owner and mode the new one takes, when it exists.
pub async fn restore_files(
    store: &dyn ObjectStore,
    identity: &Identity,
    manifest: &BackupManifest,
    index: &BackupIndex,
    dir: &Path,
    live: Option<&Path>,
) -> Result<()> {
    let objects: HashMap<&str, &SealedObject> =
        index.objects.iter().map(|o| (o.key.as_str(), o)).collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    futures::stream::iter(&manifest.filestore)
        .map(|entry| {
            let object = objects.get(entry.object.as_str()).copied();
            restore_file(store, identity, entry, object, dir)
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    settle(dir, live)
}

/// A restored folder made ready to swap in: owned like the live folder (when there is one)
/// with its mode, and on disk.
pub fn settle(dir: &Path, live: Option<&Path>) -> Result<()> {
    if let Some(live) = live
        && let Ok(meta) = std::fs::metadata(live)
    {
        like_live(dir, meta.uid(), meta.gid(), meta.permissions().mode())?;
    }
    // One sync of the filesystem instead of an fsync per file: nothing is swapped in before
    // every file is on disk.
    vigia_core::disk::sync_filesystem(dir).map_err(|e| Error::io("sync", dir, e))
}

async fn restore_file(
    store: &dyn ObjectStore,
    identity: &Identity,
    entry: &FilestoreEntry,
    object: Option<&SealedObject>,
    dir: &Path,
) -> Result<()> {
    let object = object.ok_or_else(|| {
        Error::new(
            ErrorKind::Integrity,
            format!(
                "{} ({}): the manifest lists it, the index does not",
                entry.object, entry.store_fname
            ),
        )
        .with_object(&entry.object)
    })?;
    let path = dir.join(&entry.store_fname);
    let parent = path.parent().expect("store_fname is xx/sha1").to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("create", &parent, e))?;
    let temp = path.with_extension("vigia-partial");
    let mut file = std::fs::File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
    // `read_back` checks the stored bytes' size and sha256 against the index.
    let sha1 = read_back(store, object, identity, move |content| {
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = content.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await?;
    let fail = |problem: String| {
        let _ = std::fs::remove_file(&temp);
        Error::new(
            ErrorKind::Integrity,
            format!("{} ({}): {problem}", entry.object, entry.store_fname),
        )
        .with_object(&entry.object)
    };
    match sha1 {
        Err(damage) => return Err(fail(damage)),
        Ok(sha1) if sha1 != entry.sha1 => {
            return Err(fail(format!(
                "the file inside has sha1 {sha1}, its name says {}",
                entry.sha1
            )));
        }
        Ok(_) => {}
    }
    std::fs::rename(&temp, &path).map_err(|e| Error::io("rename", &temp, e))
}

/// The restored folder (and everything in it) owned like the live one, with its mode.
fn like_live(dir: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        std::os::unix::fs::lchown(&current, Some(uid), Some(gid))
            .map_err(|e| Error::io("chown", &current, e))?;
        if current.is_dir() {
            for entry in std::fs::read_dir(&current).map_err(|e| Error::io("read", &current, e))? {
                stack.push(entry.map_err(|e| Error::io("read", &current, e))?.path());
            }
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| Error::io("chmod", dir, e))
}
