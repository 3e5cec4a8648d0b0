//! A restore's new filestore folder, made in `<data-dir>/filestore`, which Odoo's user owns
//! and may plant links in. The folder is made with one `mkdir` (which never follows a link),
//! opened without following links and checked to be vigia's own, private (0700) while it is
//! filled; every later step is relative to that open folder (`mkdirat`, `openat` with
//! `O_NOFOLLOW | O_EXCL`, `renameat`, `fchownat` without following), so nothing is written
//! or chowned outside it, whatever appears in the root meanwhile.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid};
use vigia_core::{Error, ErrorKind, Result};

#[derive(Debug)]
pub struct NewFolder {
    path: PathBuf,
    dir: OwnedFd,
}

/// A file being written under a temporary name in its folder; `commit` gives it its name.
#[derive(Debug)]
pub struct NewFile {
    parent: OwnedFd,
    temp: String,
    name: String,
    pub file: File,
}

impl NewFolder {
    /// Makes `path` (its parent must exist); refuses when anything, a link included, is there.
    /// The parent (the filestore root) is opened once and must not be a link itself: Odoo's
    /// user, who may own the data dir, could otherwise swap it for one.
    pub fn create(path: &Path) -> Result<Self> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::internal(format!("{} has no parent", path.display())));
        };
        let root = open_dir(rustix::fs::CWD, parent).map_err(|e| {
            if std::fs::symlink_metadata(parent).is_ok_and(|m| m.file_type().is_symlink()) {
                return Error::invalid_input(format!(
                    "{} is a link; vigia restores only into a real filestore folder",
                    parent.display()
                ));
            }
            Error::io("open", parent, e)
        })?;
        match rustix::fs::mkdirat(&root, name, Mode::RWXU) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(already_exists(path)),
            Err(e) => return Err(Error::io("create", path, e.into())),
        }
        let dir = open_dir(&root, Path::new(name)).map_err(|e| Error::io("open", path, e))?;
        let stat = rustix::fs::fstat(&dir).map_err(|e| Error::io("stat", path, e.into()))?;
        // Replaced between mkdir and open by another folder (someone else's, or an old one of
        // ours moved in by Odoo's user): not the one just made.
        if stat.st_uid != vigia_core::process::effective_uid()
            || FileType::from_raw_mode(stat.st_mode) != FileType::Directory
            || stat.st_mode & 0o7777 != 0o700
            || !is_empty(&dir).map_err(|e| Error::io("read", path, e))?
        {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{} was replaced while vigia made it (by Odoo's user?); nothing was written \
                     there",
                    path.display()
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the file `relative` (plain components only, e.g. `ab/ab12...`), making its
    /// folders; it is written under a temporary name until [`NewFile::commit`].
    pub fn create_file(&self, relative: &Path) -> Result<NewFile> {
        let full = self.path.join(relative);
        let mut names: Vec<String> = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => names.push(name.to_string_lossy().into_owned()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::Integrity,
                        format!("{} is not a plain relative path", relative.display()),
                    ));
                }
            }
        }
        let name = names
            .pop()
            .ok_or_else(|| Error::internal("an empty file name"))?;
        let mut parent =
            rustix::io::dup(&self.dir).map_err(|e| Error::io("open", &full, e.into()))?;
        for folder in &names {
            // Readable by Odoo's user once the private top folder is opened up by `settle`.
            match rustix::fs::mkdirat(&parent, folder.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::io("create", &full, e.into())),
            }
            parent =
                open_dir(&parent, Path::new(folder)).map_err(|e| Error::io("open", &full, e))?;
        }
        let temp = format!("{name}.vigia-partial");
        let fd = rustix::fs::openat(
            &parent,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| Error::io("create", &full, e.into()))?;
        Ok(NewFile {
            parent,
            temp,
            name,
            file: File::from(fd),
        })
    }

    /// Ready to swap in: every entry owned like the live folder (when there is one), the
    /// folder given its mode, and everything on disk (one syncfs instead of an fsync per file).
    pub fn settle(&self, live: Option<&Path>) -> Result<()> {
        // The live folder lends its owner and mode only when it is a real folder, not a link.
        if let Some(live) = live
            && let Ok(meta) = std::fs::symlink_metadata(live)
            && meta.is_dir()
        {
            use std::os::unix::fs::MetadataExt;
            let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
            chown_tree(&self.dir, uid, gid).map_err(|e| Error::io("chown", &self.path, e))?;
            rustix::fs::fchown(&self.dir, Some(uid), Some(gid))
                .map_err(|e| Error::io("chown", &self.path, e.into()))?;
            rustix::fs::fchmod(&self.dir, Mode::from_raw_mode(meta.mode() & 0o7777))
                .map_err(|e| Error::io("chmod", &self.path, e.into()))?;
        } else {
            // No live folder to copy: Odoo's usual 0755 instead of the private 0700.
            rustix::fs::fchmod(&self.dir, Mode::from_raw_mode(0o755))
                .map_err(|e| Error::io("chmod", &self.path, e.into()))?;
        }
        rustix::fs::syncfs(&self.dir).map_err(|e| Error::io("sync", &self.path, e.into()))
    }
}

impl NewFile {
    /// Gives the written file its name (never replacing one).
    pub fn commit(self) -> io::Result<()> {
        rustix::fs::renameat_with(
            &self.parent,
            self.temp.as_str(),
            &self.parent,
            self.name.as_str(),
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(io::Error::from)
    }

    /// Removes the temporary file (a failed check).
    pub fn discard(self) {
        let _ = rustix::fs::unlinkat(&self.parent, self.temp.as_str(), AtFlags::empty());
    }
}

/// Every entry under `dir` owned by `uid:gid`, links included but never followed.
fn chown_tree(dir: &OwnedFd, uid: Uid, gid: Gid) -> io::Result<()> {
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => {
                let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(stat.st_mode)
            }
            known => known,
        };
        if kind == FileType::Directory {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            chown_tree(&sub, uid, gid)?;
        }
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

fn is_empty(dir: &OwnedFd) -> io::Result<bool> {
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_owned();
        if name.as_c_str() != c"." && name.as_c_str() != c".." {
            return Ok(false);
        }
    }
    Ok(true)
}

fn open_dir(at: impl std::os::fd::AsFd, path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

fn already_exists(path: &Path) -> Error {
    Error::invalid_input(format!(
        "{} already exists; a restore never overwrites: choose another --target-db or move it \
         away",
        path.display()
    ))
}
