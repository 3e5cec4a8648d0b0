//! The filestore restored into a fresh folder (`NewFolder`: nothing written through a link):
//! every object decrypted, its sha1 checked against its name, written under a temporary name
//! and renamed; the folder takes the live one's owner and mode, so that Odoo can read and
//! write it after a swap.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use sha1::{Digest, Sha1};
use vigia_core::ports::store::ObjectStore;
use vigia_core::{Error, ErrorKind, Result};

use vigia_backup::Identity;
use vigia_backup::format::SealedObject;
use vigia_backup::format::{BackupIndex, BackupManifest, FilestoreEntry};
use vigia_backup::read_back;
use vigia_odoo::filestore::{NewFolder, file_path};

/// Files restored at once.
const CONCURRENCY: usize = 4;

/// Restores every file of `manifest` into the new folder `dir` (made here, refused when
/// anything is there); `live` is the live filestore folder whose owner and mode it takes.
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
    let folder = NewFolder::create(dir)?;
    futures::stream::iter(&manifest.filestore)
        .map(|entry| {
            let object = objects.get(entry.object.as_str()).copied();
            restore_file(store, identity, entry, object, &folder)
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    folder.settle(live)
}

async fn restore_file(
    store: &dyn ObjectStore,
    identity: &Identity,
    entry: &FilestoreEntry,
    object: Option<&SealedObject>,
    folder: &NewFolder,
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
    // The manifest is authenticated, but the name key is on every backup host: its names are
    // checked again before they name a path.
    file_path(folder.path(), &entry.store_fname)?;
    let new = folder.create_file(Path::new(&entry.store_fname))?;
    let mut file = new
        .file
        .try_clone()
        .map_err(|e| Error::io("open", folder.path(), e))?;
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
    .await;
    let fail = |problem: String| {
        Error::new(
            ErrorKind::Integrity,
            format!("{} ({}): {problem}", entry.object, entry.store_fname),
        )
        .with_object(&entry.object)
    };
    match sha1 {
        Ok(Ok(sha1)) if sha1 == entry.sha1 => new
            .commit()
            .map_err(|e| Error::io("rename", &folder.path().join(&entry.store_fname), e)),
        Ok(Ok(sha1)) => {
            new.discard();
            Err(fail(format!(
                "the file inside has sha1 {sha1}, its name says {}",
                entry.sha1
            )))
        }
        Ok(Err(damage)) => {
            new.discard();
            Err(fail(damage))
        }
        Err(e) => {
            new.discard();
            Err(e)
        }
    }
}
