//! After a successful backup: textfile metrics for node_exporter's textfile collector, and a
//! GET of the heartbeat URL (a dead man's switch that alerts when backups stop).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use vigia_core::{Error, Result};

/// The file node_exporter's textfile collector reads, in `state-dir`.
pub const BACKUP_METRICS_FILE: &str = "vigia-backup.prom";

/// Writes the backup metrics atomically (temp file, then rename): a scrape never sees half.
pub fn write_backup_metrics(
    state_dir: &Path,
    finished_at: Timestamp,
    size_bytes: u64,
    duration_ms: u64,
) -> Result<()> {
    std::fs::create_dir_all(state_dir).map_err(|e| Error::io("create", state_dir, e))?;
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
    let path = state_dir.join(BACKUP_METRICS_FILE);
    let temp = state_dir.join(format!(".{BACKUP_METRICS_FILE}.tmp"));
    std::fs::write(&temp, text).map_err(|e| Error::io("write", &temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| Error::io("rename", &path, e))
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
}
