//! Reading Odoo's filestore, which Odoo's user owns: files are opened relative to the
//! filestore folder without following a link (neither the `xx` folder nor the file may be
//! one), and what is uploaded is checked against the sha1 its name gives while it streams,
//! so a file rewritten between hashing and upload fails the backup instead of storing bytes
//! that do not match their name.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use sha1::{Digest, Sha1};
use vigia_core::{Error, ErrorKind, Result};

/// Opens `dir/<store_fname>` (an Odoo name `xx/<sha1>`, already checked) for reading; None
/// when it does not exist.
pub fn open(dir: &Path, store_fname: &str) -> Result<Option<File>> {
    let (folder, name) = store_fname
        .split_once('/')
        .expect("an Odoo name has one folder");
    let path = dir.join(store_fname);
    let no_link = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let opened = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(|root| rustix::fs::openat(&root, folder, no_link | OFlags::DIRECTORY, Mode::empty()))
    .and_then(|sub| rustix::fs::openat(&sub, name, no_link | OFlags::NONBLOCK, Mode::empty()));
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        // O_NOFOLLOW on a link: ELOOP for the file, ENOTDIR for a folder that is one.
        Err(Errno::LOOP | Errno::NOTDIR) => return Err(link_error(store_fname)),
        Err(e) => return Err(Error::io("open", &path, e.into())),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!("filestore entry {store_fname} is not a regular file; refusing to read it"),
        ));
    }
    Ok(Some(file))
}

fn link_error(store_fname: &str) -> Error {
    Error::new(
        ErrorKind::Integrity,
        format!(
            "filestore file {store_fname} is a symbolic link or lies in a linked folder: vigia \
             never follows links in the filestore, which Odoo's user can write; replace it \
             with the file itself"
        ),
    )
}

/// Streams a filestore file and fails at its end unless its bytes are the `size` bytes
/// whose sha1 is `sha1`: what was hashed is what is uploaded.
#[derive(Debug)]
pub struct CheckedReader {
    file: File,
    store_fname: String,
    sha1: String,
    size: u64,
    hasher: Sha1,
    read: u64,
}

impl CheckedReader {
    pub fn new(file: File, store_fname: &str, sha1: &str, size: u64) -> Self {
        Self {
            file,
            store_fname: store_fname.to_owned(),
            sha1: sha1.to_owned(),
            size,
            hasher: Sha1::new(),
            read: 0,
        }
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 || self.read > self.size {
            let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if self.read != self.size || actual != self.sha1 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "filestore file {} changed while it was backed up (it is no longer the \
                         file its name names); run the backup again",
                        self.store_fname
                    ),
                ));
            }
        }
        Ok(n)
    }
}
