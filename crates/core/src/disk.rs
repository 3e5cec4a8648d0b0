//! Free space, checked before work that needs it (a restore's spool, database and filestore),
//! and writes that must survive a crash.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes available to this user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    usage(path).map(|u| u.available_bytes)
}

/// The size and what is left of the filesystem holding `path`, as this user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub total_inodes: u64,
    pub available_inodes: u64,
}

#[allow(unsafe_code)]
pub fn usage(path: &Path) -> std::io::Result<FsUsage> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    // SAFETY: statvfs(3) writes into the zeroed struct we own; the path is NUL-terminated.
    let (result, stat) = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c_path.as_ptr(), &raw mut stat), stat)
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(FsUsage {
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        available_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total_inodes: stat.f_files,
        available_inodes: stat.f_favail,
    })
}

/// Flushes the filesystem holding `path` to disk (syncfs(2)): one call for many new files.
#[allow(unsafe_code)]
pub fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    let dir = std::fs::File::open(path)?;
    // SAFETY: syncfs(2) on a file descriptor we own for the duration of the call.
    let result = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content, never a
/// mix: a new temporary file beside it (a random name, created exclusively: never through
/// something planted there), fsynced, renamed over it, then the folder fsynced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", hex::encode(crate::random_bytes::<8>())));
    let temp = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// An exclusive OS lock on `path` (created, never through a link planted at its name),
/// waited for up to `wait`; None when another process still holds it then. The kernel drops
/// it when its holder dies. Blocking: call it off the async threads.
pub fn lock_exclusive(
    path: &Path,
    wait: std::time::Duration,
) -> crate::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |action: &str, e| crate::Error::io(action, path, e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("create", dir, e))?;
    }
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io("open", e))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lock_is_exclusive_and_a_link_at_its_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.lock");
        let held = super::lock_exclusive(&path, std::time::Duration::ZERO).unwrap();
        assert!(held.is_some());
        let second = super::lock_exclusive(&path, std::time::Duration::from_millis(200)).unwrap();
        assert!(second.is_none(), "held by the first");
        drop(held);
        assert!(
            super::lock_exclusive(&path, std::time::Duration::ZERO)
                .unwrap()
                .is_some()
        );
        let link = dir.path().join("link.lock");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(super::lock_exclusive(&link, std::time::Duration::ZERO).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn the_temp_dir_has_some_free_space() {
        assert!(super::free_bytes(&std::env::temp_dir()).unwrap() > 0);
        assert!(super::free_bytes(std::path::Path::new("/no/such/dir")).is_err());
    }
}

/// At most the last `max_lines` lines of the file at `path`, reading at most its last
/// `max_bytes` bytes whatever its size (a log can be gigabytes). A first line cut by the
/// window is dropped; invalid UTF-8 is replaced.
pub fn tail_lines(path: &Path, max_bytes: u64, max_lines: usize) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let start = size.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max_bytes).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let keep = lines.len().saturating_sub(max_lines);
    Ok(lines[keep..].iter().map(|l| (*l).to_owned()).collect())
}

#[cfg(test)]
mod tail_tests {
    use super::*;

    #[test]
    fn the_tail_reads_a_bounded_window_and_drops_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odoo.log");
        let text = (0..1000)
            .map(|i| format!("line {i:04}"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        std::fs::write(&path, &text).unwrap();
        let tail = tail_lines(&path, 25, 100).unwrap();
        // 25 bytes hold 2 whole lines of 10 bytes and a cut one.
        assert_eq!(tail, ["line 0998", "line 0999"]);
        assert_eq!(tail_lines(&path, 1 << 20, 3).unwrap().len(), 3);
        assert_eq!(tail_lines(&path, 1 << 20, 5000).unwrap().len(), 1000);
    }
}
