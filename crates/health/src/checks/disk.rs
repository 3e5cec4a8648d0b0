//! `disk:<mount>`: free space and inodes of each filesystem vigia's paths live on (data-dir
//! with the filestore, a local store, state-dir with the restore spool, `disk-paths`). A path
//! not made yet is measured at its nearest existing ancestor.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::config::StoreKind;
use vigia_core::disk::{FsUsage, usage};
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error};

use super::{result, unknown};
use crate::names::DISK;

const GIB: u64 = 1 << 30;

pub(super) fn checks(config: &Config) -> Vec<Arc<dyn Check>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    paths.extend(config.odoo.data_dir.clone());
    if config.backup.store == Some(StoreKind::Local) {
        paths.extend(config.backup.path.clone());
    }
    paths.push(config.state_dir.clone());
    paths.extend(config.health.disk_paths.iter().cloned());
    // One result per filesystem (device), named after its shortest mount point: a bind
    // mount of a folder is the same filesystem as its source.
    let mut by_device: BTreeMap<u64, (PathBuf, Vec<PathBuf>)> = BTreeMap::new();
    for path in paths {
        let existing = nearest_existing(&path);
        let device = std::fs::metadata(&existing).map_or(0, |m| m.dev());
        let mount = mount_point(&existing);
        let entry = by_device
            .entry(device)
            .or_insert_with(|| (mount.clone(), Vec::new()));
        if mount.as_os_str().len() < entry.0.as_os_str().len() {
            entry.0 = mount;
        }
        entry.1.push(path);
    }
    by_device
        .into_values()
        .map(|(mount, paths)| {
            Arc::new(Disk {
                name: format!("{DISK}{}", mount.display()),
                mount,
                paths,
            }) as Arc<dyn Check>
        })
        .collect()
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// The highest ancestor on the same device: where the filesystem is mounted.
fn mount_point(path: &Path) -> PathBuf {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let here = dev(&path);
    let mut mount = path.clone();
    for parent in path.ancestors().skip(1) {
        if dev(parent) != here {
            break;
        }
        mount = parent.to_path_buf();
    }
    mount
}

struct Disk {
    name: String,
    mount: PathBuf,
    /// The configured paths on it, for the evidence.
    paths: Vec<PathBuf>,
}

#[async_trait]
impl Check for Disk {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self) -> CheckResult {
        // statvfs on a hung network mount never returns: off the runtime's threads.
        let mount = self.mount.clone();
        let measured = vigia_core::task::blocking("disk", move || {
            usage(&mount).map_err(|e| Error::io("measure", &mount, e))
        })
        .await;
        match measured {
            Ok(u) => {
                let (status, summary) = judge(&u);
                let paths: Vec<String> =
                    self.paths.iter().map(|p| p.display().to_string()).collect();
                result(
                    &self.name,
                    status,
                    summary,
                    json!({
                        "paths": paths,
                        "total_bytes": u.total_bytes,
                        "available_bytes": u.available_bytes,
                        "total_inodes": u.total_inodes,
                        "available_inodes": u.available_inodes,
                    }),
                )
            }
            Err(e) => unknown(&self.name, &e),
        }
    }
}

/// Free <= 10 GiB or <= 10% warning, <= 5 GiB or <= 5% critical; free inodes <= 10% / 5%
/// (the filestore is many small files).
fn judge(u: &FsUsage) -> (CheckStatus, String) {
    let free = percent(u.available_bytes, u.total_bytes);
    let inodes = (u.total_inodes > 0).then(|| percent(u.available_inodes, u.total_inodes));
    let space = if u.available_bytes <= 5 * GIB || free <= 5.0 {
        CheckStatus::Critical
    } else if u.available_bytes <= 10 * GIB || free <= 10.0 {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    };
    let files = match inodes {
        Some(i) if i <= 5.0 => CheckStatus::Critical,
        Some(i) if i <= 10.0 => CheckStatus::Warning,
        _ => CheckStatus::Ok,
    };
    let summary = format!(
        "{:.1} GiB free ({free:.1}%){}",
        u.available_bytes as f64 / GIB as f64,
        inodes.map_or(String::new(), |i| format!(", {i:.1}% of inodes free"))
    );
    (space.max(files), summary)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    part as f64 * 100.0 / whole as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(total_gib: u64, free_gib: u64, inodes_free_percent: u64) -> FsUsage {
        FsUsage {
            total_bytes: total_gib * GIB,
            available_bytes: free_gib * GIB,
            total_inodes: 100,
            available_inodes: inodes_free_percent,
        }
    }

    #[test]
    fn space_and_inodes_each_can_fail_the_filesystem() {
        assert_eq!(judge(&fs(500, 200, 50)).0, CheckStatus::Ok);
        assert_eq!(judge(&fs(500, 40, 50)).0, CheckStatus::Warning);
        assert_eq!(judge(&fs(60, 9, 50)).0, CheckStatus::Warning);
        assert_eq!(judge(&fs(500, 5, 50)).0, CheckStatus::Critical);
        assert_eq!(judge(&fs(2000, 90, 50)).0, CheckStatus::Critical);
        assert_eq!(judge(&fs(500, 200, 8)).0, CheckStatus::Warning);
        assert_eq!(judge(&fs(500, 200, 3)).0, CheckStatus::Critical);
    }

    #[test]
    fn a_path_not_made_yet_is_measured_where_it_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let later = dir.path().join("state/spool");
        assert_eq!(nearest_existing(&later), dir.path());
        let mount = mount_point(dir.path());
        assert!(dir.path().canonicalize().unwrap().starts_with(&mount));
    }
}
