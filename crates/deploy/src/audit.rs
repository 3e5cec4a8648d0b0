//! The audit log, `state-dir/deploys/audit.jsonl`: one line per deploy that started (who,
//! from, to, what was upgraded, how it ended, how long it took), appended and synced;
//! `vigia deploy history` reads it back.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vigia_core::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    pub id: String,
    pub performer: String,
    pub from: String,
    pub to: String,
    pub upgraded: Vec<String>,
    pub outcome: String,
    pub duration_ms: u64,
    pub at: jiff::Timestamp,
}

pub fn path(deploys_dir: &Path) -> std::path::PathBuf {
    deploys_dir.join("audit.jsonl")
}

/// Appends `line`, synced.
pub fn append(deploys_dir: &Path, line: &AuditLine) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(deploys_dir).map_err(|e| Error::io("create", deploys_dir, e))?;
    let path = path(deploys_dir);
    let mut text = serde_json::to_string(line).map_err(|e| Error::internal(e.to_string()))?;
    text.push('\n');
    std::fs::File::options()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_data()))
        .map_err(|e| Error::io("append to", &path, e))
}

/// Every deploy recorded, oldest first; lines that do not parse are skipped with a warning
/// (a line cut short by a kill).
pub fn history(deploys_dir: &Path) -> Result<Vec<AuditLine>> {
    let path = path(deploys_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            serde_json::from_str(line)
                .inspect_err(|e| {
                    tracing::warn!("{}: line {} skipped: {e}", path.display(), n + 1);
                })
                .ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(history(dir.path()).unwrap().is_empty());
        let line = |id: &str, outcome: &str| AuditLine {
            id: id.into(),
            performer: "root@erp".into(),
            from: "v1".into(),
            to: "v2".into(),
            upgraded: vec!["sale_cr".into()],
            outcome: outcome.into(),
            duration_ms: 1200,
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        append(dir.path(), &line("a", "deployed")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(path(dir.path()))
            .unwrap()
            .write_all(b"{\"id\":\"cut\n")
            .unwrap();
        append(dir.path(), &line("b", "rolled_back")).unwrap();
        let read = history(dir.path()).unwrap();
        assert_eq!(read, [line("a", "deployed"), line("b", "rolled_back")]);
    }
}
