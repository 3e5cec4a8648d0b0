//! The local directory store: objects are files under the root, written to a temporary name,
//! fsynced, then renamed into place, so a crash never leaves a partial object visible.

use std::io::ErrorKind as IoKind;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use vigia_core::ports::store::{
    ObjectMeta, ObjectReader, ObjectStore, SMALL_OBJECT_MAX, StoreError, WriteCondition, too_large,
    validate_key,
};
use vigia_core::process::{ProcessIdentity, pid_is_gone};

use super::local_conditional::{self, Outcome};
use super::upload_failpoint;

/// Temporary files live here, on the same file system as the objects (rename is atomic), and
/// outside the key space (keys cannot start with a dot).
const PARTIAL_DIR: &str = ".partial";
const WRITE_BUFFER: usize = 256 * 1024;
/// A temporary file from another host untouched this long belongs to a put that died.
const DEAD_WRITE_IDLE: std::time::Duration = std::time::Duration::from_hours(24);
/// The `backup.upload` fail point fires once a put has written this much: mid-stream.
const UPLOAD_FAILPOINT_AT: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root`, created if missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root.join(PARTIAL_DIR)).map_err(|e| StoreError::Backend {
            store: format!("local directory {}", root.display()),
            action: "create",
            key: PARTIAL_DIR.into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// A fresh temporary file name, `<machine>-<pid>-<start>-<random>.tmp`: enough for
    /// `clean_dead_writes` to tell that its writer is gone from this machine.
    fn temp_path(&self) -> PathBuf {
        let me = ProcessIdentity::current();
        self.root.join(PARTIAL_DIR).join(format!(
            "{}-{}-{}-{}.tmp",
            me.machine_token(),
            me.pid,
            me.start_ticks,
            hex::encode(vigia_core::random_bytes::<6>())
        ))
    }

    /// Makes the folders above `path` durably, off the async threads.
    async fn make_parents(&self, path: &Path) -> std::io::Result<()> {
        let parent = path.parent().expect("a key has a parent under the root");
        let (root, dir) = (self.root.clone(), parent.to_path_buf());
        tokio::task::spawn_blocking(move || create_dirs_durably(&root, &dir))
            .await
            .map_err(std::io::Error::other)?
    }

    fn fail(&self, action: &'static str, key: &str, err: &std::io::Error) -> StoreError {
        StoreError::backend(
            self.location(),
            action,
            key,
            err.to_string(),
            err.kind() == IoKind::NotFound,
        )
    }

    async fn write_temp(
        &self,
        key: &str,
        temp: &Path,
        mut body: ObjectReader,
    ) -> Result<u64, StoreError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .await
            .map_err(|e| self.fail("put", key, &e))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut buf = vec![0u8; WRITE_BUFFER];
        let mut size = 0u64;
        loop {
            let n = body
                .read(&mut buf)
                .await
                .map_err(|source| StoreError::Source {
                    key: key.to_owned(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buf[..n])
                .await
                .map_err(|e| self.fail("put", key, &e))?;
            let before = size;
            size += n as u64;
            if before < UPLOAD_FAILPOINT_AT && size >= UPLOAD_FAILPOINT_AT {
                writer
                    .flush()
                    .await
                    .map_err(|e| self.fail("put", key, &e))?;
                upload_failpoint(key)?;
            }
        }
        writer
            .flush()
            .await
            .map_err(|e| self.fail("put", key, &e))?;
        writer
            .get_mut()
            .sync_all()
            .await
            .map_err(|e| self.fail("put", key, &e))?;
        Ok(size)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    async fn put(&self, key: &str, body: ObjectReader) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        let temp = self.temp_path();
        let size = match self.write_temp(key, &temp, body).await {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
        };
        let parent = path.parent().expect("a key has a parent under the root");
        let placed = async {
            self.make_parents(&path).await?;
            tokio::fs::rename(&temp, &path).await?;
            // The rename is durable only once the directory is.
            tokio::fs::File::open(parent).await?.sync_all().await
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(self.fail("put", key, &e));
        }
        Ok(ObjectMeta {
            key: key.to_owned(),
            size_bytes: size,
            modified: None,
            etag: None,
        })
    }

    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        self.make_parents(&path)
            .await
            .map_err(|e| self.fail("put", key, &e))?;
        let (root, temp, target) = (self.root.clone(), self.temp_path(), path);
        let size = data.len() as u64;
        let outcome = tokio::task::spawn_blocking(move || {
            local_conditional::put_if(&root, &temp, &target, &data, &condition)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.fail("put", key, &e))?;
        match outcome {
            Outcome::Written(etag, modified) => Ok(ObjectMeta {
                key: key.to_owned(),
                size_bytes: size,
                modified,
                etag: Some(etag),
            }),
            Outcome::Refused => Err(StoreError::ConditionFailed {
                store: self.location(),
                key: key.to_owned(),
            }),
        }
    }

    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError> {
        let path = self.path_of(key)?;
        let read = tokio::task::spawn_blocking(move || local_conditional::read_with_etag(&path))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        let (data, etag, meta) = read.map_err(|e| {
            if e.kind() == IoKind::FileTooLarge {
                too_large(self.location(), key, SMALL_OBJECT_MAX + 1)
            } else {
                self.fail("get", key, &e)
            }
        })?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size_bytes: data.len() as u64,
            modified: modified(&meta),
            etag: Some(etag),
        };
        Ok((data, meta))
    }

    /// Temporary files of puts whose process is gone from this host (or, from another host
    /// sharing the directory, untouched for a day).
    async fn clean_dead_writes(&self) -> Result<u64, StoreError> {
        let dir = self.root.join(PARTIAL_DIR);
        let removed = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut removed = 0;
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == IoKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let idle = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_dead_write(&name) || idle > DEAD_WRITE_IDLE {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| {
            StoreError::backend(self.location(), "clean", PARTIAL_DIR, e.to_string(), false)
        })?;
        removed.map_err(|e| self.fail("clean", PARTIAL_DIR, &e))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError> {
        let path = self.path_of(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.fail("get", key, &e))?;
        match range {
            None => Ok(Box::pin(file)),
            Some(range) => {
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(|e| self.fail("get", key, &e))?;
                Ok(Box::pin(file.take(range.end.saturating_sub(range.start))))
            }
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| self.fail("head", key, &e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound {
                store: self.location(),
                key: key.to_owned(),
            });
        }
        Ok(ObjectMeta {
            key: key.to_owned(),
            size_bytes: meta.len(),
            modified: modified(&meta),
            etag: None,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let walked = tokio::task::spawn_blocking(move || walk(&root, &prefix))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        walked.map_err(|e| self.fail("list", "", &e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
            Err(e) => return Err(self.fail("delete", key, &e)),
        }
        // Tidy the directories the key leaves empty; a failure here loses nothing. The lock
        // folders stay: a conditional write or a reader may be about to rename into them.
        if key.starts_with("locks/") {
            return Ok(());
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root) {
            if tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

/// Every file under `root` whose key starts with `prefix`, sorted. Only the directory that the
/// prefix names is walked, not the whole store.
fn walk(root: &Path, prefix: &str) -> std::io::Result<Vec<ObjectMeta>> {
    let start_dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
    let mut out = Vec::new();
    let mut stack = vec![root.join(start_dir)];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == IoKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file() {
                let key = path
                    .strip_prefix(root)
                    .expect("walked under the root")
                    .to_string_lossy()
                    .into_owned();
                if key.starts_with(prefix) {
                    let meta = entry.metadata()?;
                    out.push(ObjectMeta {
                        key,
                        size_bytes: meta.len(),
                        modified: modified(&meta),
                        etag: None,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn modified(meta: &std::fs::Metadata) -> Option<jiff::Timestamp> {
    meta.modified()
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
}

/// `<machine>-<pid>-<start>-<random>.tmp` written on this machine (same host, boot and pid
/// namespace) by a process that is gone: its pid is free or started at another time.
fn is_dead_write(name: &str) -> bool {
    let mut parts = name.split('-');
    let (Some(machine), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    machine == ProcessIdentity::current().machine_token() && pid_is_gone(pid, start)
}

/// Makes `dir` (under `root`) and every missing folder above it, fsyncing each folder that
/// gains a new entry: a new folder's name is durable only once its parent is, and an object
/// in a folder whose name was lost is lost with it.
fn create_dirs_durably(root: &Path, dir: &Path) -> std::io::Result<()> {
    let relative = dir.strip_prefix(root).map_err(std::io::Error::other)?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match std::fs::create_dir(&current) {
            Ok(()) => std::fs::File::open(&parent)?.sync_all()?,
            Err(e) if e.kind() == IoKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
