//! After a successful backup or verification: textfile metrics for node_exporter's textfile collector, and a
//! GET of the heartbeat URL (a dead man's switch that alerts when backups stop).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use vigia_core::{Error, Result};

use crate::format::VerifyLevel;

/// The file node_exporter's textfile collector reads, in `state-dir`.
pub const BACKUP_METRICS_FILE: &str = "vigia-backup.prom";

/// Writes the backup metrics atomically (temp file, then rename): a scrape never sees half.
pub fn write_backup_metrics(
    state_dir: &Path,
    finished_at: Timestamp,
    size_bytes: u64,
    duration_ms: u64,
) -> Result<()> {
    let text = format!(
        "# HELP vigia_backup_last_success_timestamp_seconds When the last backup finished successfully.\n\
         # TYPE vigia_backup_last_success_timestamp_seconds gauge\n\
         vigia_backup_last_success_timestamp_seconds {}\n\
         # HELP vigia_backup_size_bytes Bytes the last backup references (what a restore reads).\n\
         # TYPE vigia_backup_size_bytes gauge\n\
         vigia_backup_size_bytes {size_bytes}\n\
         # HELP vigia_backup_duration_seconds How long the last backup took.\n\
         # TYPE vigia_backup_duration_seconds gauge\n\
         vigia_backup_duration_seconds {:.3}\n",
        finished_at.as_second(),
        duration_ms as f64 / 1000.0,
    );
    write_atomically(state_dir, BACKUP_METRICS_FILE, &text)
}

/// The file with `vigia_backup_last_verified_timestamp_seconds{level}`, in `state-dir`.
pub const VERIFY_METRICS_FILE: &str = "vigia-verify.prom";
const VERIFIED: &str = "vigia_backup_last_verified_timestamp_seconds";

/// Records that a verification at `level` passed at `at`, keeping the other levels' times.
pub fn write_verify_metrics(state_dir: &Path, level: VerifyLevel, at: Timestamp) -> Result<()> {
    let path = state_dir.join(VERIFY_METRICS_FILE);
    let mut times: BTreeMap<String, i64> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(VERIFIED)?.strip_prefix("{level=\"")?;
            let (level, value) = rest.split_once("\"} ")?;
            Some((level.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    times.insert(level.as_str().to_owned(), at.as_second());
    let mut text = format!(
        "# HELP {VERIFIED} When a verification at this level last passed.\n# TYPE {VERIFIED} gauge\n"
    );
    for (level, at) in times {
        let _ = writeln!(text, "{VERIFIED}{{level=\"{level}\"}} {at}");
    }
    write_atomically(state_dir, VERIFY_METRICS_FILE, &text)
}

fn write_atomically(state_dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(state_dir).map_err(|e| Error::io("create", state_dir, e))?;
    let path = state_dir.join(name);
    vigia_core::disk::write_durably(&path, text.as_bytes())
        .map_err(|e| Error::io("write", &path, e))
}

/// GETs `url`; the error (for a warning, not a failed backup) says what went wrong.
pub async fn ping_heartbeat(url: &str) -> std::result::Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("heartbeat GET failed: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("heartbeat GET answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_classic_prometheus_text() {
        let dir = tempfile::tempdir().unwrap();
        let at: Timestamp = "2026-11-28T02:15:30Z".parse().unwrap();
        write_backup_metrics(dir.path(), at, 1234, 2500).unwrap();
        let text = std::fs::read_to_string(dir.path().join(BACKUP_METRICS_FILE)).unwrap();
        assert!(text.contains(&format!(
            "vigia_backup_last_success_timestamp_seconds {}\n",
            at.as_second()
        )));
        assert!(text.contains("vigia_backup_size_bytes 1234\n"));
        assert!(text.contains("vigia_backup_duration_seconds 2.500\n"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    /// Regression (issue 10 item 8): the temporary file had a fixed name and was written
    /// through whatever was there, a link included.
    #[test]
    fn metrics_are_never_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let planted = dir.path().join(format!(".{BACKUP_METRICS_FILE}.tmp"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let at: Timestamp = "2026-11-28T02:15:30Z".parse().unwrap();
        write_backup_metrics(dir.path(), at, 1234, 2500).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }
}
