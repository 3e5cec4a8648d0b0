//! Conditional writes on the local store. A directory has no compare-and-swap, so the check
//! and the rename happen under an exclusive OS lock on `<root>/.conditional.lock`: every
//! conditional writer on the machine (and on NFS clients with working locks) takes it.

use std::fs::File;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use vigia_core::ports::store::{SMALL_OBJECT_MAX, WriteCondition};

/// What a conditional write found.
pub(super) enum Outcome {
    /// Written: the new ETag and when.
    Written(String, Option<jiff::Timestamp>),
    /// The condition did not hold; nothing was written.
    Refused,
}

/// The local store's ETag: a digest of the bytes (like S3's for a single-part object).
pub(super) fn etag_of(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..16])
}

/// Reads the file at `path` with its ETag and modification time, from one open file.
pub(super) fn read_with_etag(path: &Path) -> std::io::Result<(Vec<u8>, String, std::fs::Metadata)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(IoKind::NotFound, "not a file"));
    }
    let mut data = Vec::new();
    // Bounded even if the file grows after the stat.
    file.take(SMALL_OBJECT_MAX + 1).read_to_end(&mut data)?;
    if meta.len() > SMALL_OBJECT_MAX || data.len() as u64 > SMALL_OBJECT_MAX {
        return Err(std::io::Error::new(IoKind::FileTooLarge, "too large"));
    }
    let etag = etag_of(&data);
    Ok((data, etag, meta))
}

/// Writes `data` to `path` through `temp` if `condition` holds, under the store's
/// conditional-write lock. `path`'s folder exists.
pub(super) fn put_if(
    root: &Path,
    temp: &Path,
    path: &Path,
    data: &[u8],
    condition: &WriteCondition,
) -> std::io::Result<Outcome> {
    let guard = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".conditional.lock"))?;
    guard.lock()?;
    let holds = match condition {
        WriteCondition::Absent => match std::fs::symlink_metadata(path) {
            Ok(_) => false,
            Err(e) if e.kind() == IoKind::NotFound => true,
            Err(e) => return Err(e),
        },
        WriteCondition::Matches(expected) => match read_with_etag(path) {
            Ok((_, etag, _)) => etag == *expected,
            Err(e) if e.kind() == IoKind::NotFound => false,
            Err(e) => return Err(e),
        },
    };
    if !holds {
        return Ok(Outcome::Refused);
    }
    let written = write_and_rename(temp, path, data);
    if written.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    let modified = written?;
    Ok(Outcome::Written(etag_of(data), modified))
}

fn write_and_rename(
    temp: &Path,
    path: &Path,
    data: &[u8],
) -> std::io::Result<Option<jiff::Timestamp>> {
    let mut file = File::options().write(true).create_new(true).open(temp)?;
    file.write_all(data)?;
    file.sync_all()?;
    let modified = file
        .metadata()?
        .modified()
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok());
    std::fs::rename(temp, path)?;
    let parent = path.parent().expect("an object has a folder");
    File::open(parent)?.sync_all()?;
    Ok(modified)
}
