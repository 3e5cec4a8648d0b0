//! Releases on disk (`[deploy] root`): `root/releases/<ref>/` holds one each, and
//! `root/current` is a link to `releases/<ref>`, replaced whole (a new link renamed over it)
//! so that it always names a release. A ref is `[A-Za-z0-9._-]{1,64}` (not `.`, `..` or starting with
//! `-`): it names a folder and goes into commands, so nothing else is taken. A fetched
//! release is made in `root/.fetching/` and renamed into place whole; old ones are pruned.

use std::path::{Path, PathBuf};

use vigia_core::process::shell_quote;
use vigia_core::{Config, Error, Result};

/// A release's name, checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ReleaseRef(String);

impl ReleaseRef {
    pub fn parse(text: &str) -> Result<Self> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if text.is_empty()
            || text.len() > 64
            || !text.bytes().all(allowed)
            || text == "."
            || text == ".."
            || text.starts_with('-')
        {
            return Err(Error::invalid_input(format!(
                "`{}` is not a release: use 1 to 64 of A-Z a-z 0-9 . _ - (a tag, a commit, a \
                 date), not starting with - (a fetch command would read it as an option)",
                text.escape_default()
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// A release that is an image reference (compose): `[registry/]name[:tag][@digest]`.
    pub fn image(text: &str) -> Result<Self> {
        crate::compose::env_file::check_image(text)?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReleaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The releases under `[deploy] root`.
#[derive(Debug, Clone)]
pub struct Releases {
    root: PathBuf,
    addons: Vec<PathBuf>,
}

impl Releases {
    /// From `[deploy]`; None without it.
    pub fn from_config(config: &Config) -> Option<Self> {
        config.deploy.as_ref().map(|d| Self {
            root: d.root.clone(),
            addons: d.addons.clone(),
        })
    }

    pub fn new(root: PathBuf, addons: Vec<PathBuf>) -> Self {
        Self { root, addons }
    }

    fn link(&self) -> PathBuf {
        self.root.join("current")
    }

    /// `root/releases/<ref>`.
    pub fn dir(&self, release: &ReleaseRef) -> PathBuf {
        self.root.join("releases").join(release.as_str())
    }

    /// Whether the release is there: a real folder, not a link to one.
    pub fn exists(&self, release: &ReleaseRef) -> bool {
        std::fs::symlink_metadata(self.dir(release)).is_ok_and(|m| m.is_dir())
    }

    /// The release's addons folders (`[deploy] addons`), those that exist.
    pub fn addons_paths(&self, release: &ReleaseRef) -> Vec<PathBuf> {
        let dir = self.dir(release);
        self.addons
            .iter()
            .map(|a| dir.join(a))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// The release `current` links to; None when there is no link yet. A link that names
    /// anything but `releases/<ref>` of an existing release is an error saying what it is.
    pub fn current(&self) -> Result<Option<ReleaseRef>> {
        let link = self.link();
        let target = match std::fs::read_link(&link) {
            Ok(target) => target,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read the link", &link, e)),
        };
        let release = target
            .strip_prefix("releases")
            .ok()
            .and_then(|rest| rest.to_str())
            .and_then(|name| ReleaseRef::parse(name).ok())
            .filter(|r| self.exists(r))
            .ok_or_else(|| {
                Error::config(format!(
                    "{} links to {}, not to releases/<ref> of a release here: {}",
                    link.display(),
                    target.display(),
                    self.link_hint("<ref>")
                ))
                .with_key("deploy.root")
            })?;
        Ok(Some(release))
    }

    /// What makes `current` by hand.
    pub fn link_hint(&self, release: &str) -> String {
        format!(
            "ln -sfn releases/{release} {}",
            shell_quote(&self.link().to_string_lossy())
        )
    }

    /// Points `current` at `release`: a new link made beside it and renamed over it, so
    /// that `current` never names nothing, then the folder synced.
    pub fn switch(&self, release: &ReleaseRef) -> Result<()> {
        if !self.exists(release) {
            return Err(Error::invalid_input(format!(
                "release {release} is not in {}",
                self.root.join("releases").display()
            )));
        }
        let temp = self
            .root
            .join(format!(".current.vigia-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        let target = Path::new("releases").join(release.as_str());
        std::os::unix::fs::symlink(&target, &temp).map_err(|e| Error::io("link", &temp, e))?;
        let link = self.link();
        if let Err(e) = std::fs::rename(&temp, &link) {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::io("replace", &link, e));
        }
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", &self.root, e))
    }
}

impl Releases {
    /// Where a fetch fills release `release` before it is renamed into place: outside
    /// `releases/`, so that a half-fetched release is never one; same file system.
    pub fn fetching_dir(&self, release: &ReleaseRef, id: &str) -> PathBuf {
        self.root
            .join(".fetching")
            .join(format!("{}-{id}", release.as_str()))
    }

    /// A fetched folder becomes release `release`: it must be a real folder (not a link),
    /// and the release must not exist (a rename never replaces one).
    pub fn adopt(&self, fetched: &Path, release: &ReleaseRef) -> Result<()> {
        if !std::fs::symlink_metadata(fetched).is_ok_and(|m| m.is_dir()) {
            return Err(Error::invalid_input(format!(
                "the fetch command made no folder at {} (or a link): [deploy] fetch-command \
                 must fill {{dir}}",
                fetched.display()
            ))
            .with_key("deploy.fetch-command"));
        }
        let dir = self.dir(release);
        let releases = self.root.join("releases");
        std::fs::create_dir_all(&releases).map_err(|e| Error::io("create", &releases, e))?;
        if std::fs::symlink_metadata(&dir).is_ok() {
            return Err(Error::invalid_input(format!(
                "{} appeared while the release was fetched: nothing replaced",
                dir.display()
            )));
        }
        std::fs::rename(fetched, &dir).map_err(|e| Error::io("rename into place", &dir, e))?;
        std::fs::File::open(&releases)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", &releases, e))
    }

    /// Removes the oldest releases (by the time their folder last changed) beyond `keep`,
    /// never one in `protect`; only real folders named as releases are counted or removed
    /// (`remove_dir_all` does not follow links inside). Returns the removed ones.
    pub fn prune(&self, keep: usize, protect: &[&ReleaseRef]) -> Result<Vec<ReleaseRef>> {
        let releases = self.root.join("releases");
        let mut found: Vec<(std::time::SystemTime, ReleaseRef)> = Vec::new();
        for entry in std::fs::read_dir(&releases)
            .map_err(|e| Error::io("read", &releases, e))?
            .flatten()
        {
            let Some(release) = entry
                .file_name()
                .to_str()
                .and_then(|n| ReleaseRef::parse(n).ok())
            else {
                continue;
            };
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                found.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), release));
            }
        }
        found.sort_by(|a, b| b.cmp(a));
        let mut kept = found.iter().filter(|(_, r)| protect.contains(&r)).count();
        let mut removed = Vec::new();
        for (_, release) in found {
            if protect.contains(&&release) {
                continue;
            }
            if kept < keep {
                kept += 1;
                continue;
            }
            let dir = self.dir(&release);
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
            removed.push(release);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn releases(root: &Path, refs: &[&str]) -> Releases {
        for r in refs {
            std::fs::create_dir_all(root.join("releases").join(r).join("addons")).unwrap();
        }
        Releases::new(root.to_path_buf(), vec![PathBuf::from("addons")])
    }

    #[test]
    fn refs_name_a_folder_and_nothing_else() {
        for good in ["v1", "2026.11.29-1", "a1b2c3d", "release_19.0"] {
            ReleaseRef::parse(good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "v 1",
            "v1;rm",
            "$(x)",
            "--upload-pack=x",
            "-v1",
            &"a".repeat(65),
        ] {
            assert!(ReleaseRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_current_previous_or_what_links_point_at() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let names = ["r1", "r2", "r3", "r4", "r5"];
        let r = releases(root.path(), &[]);
        for (i, name) in names.iter().enumerate() {
            let dir = root.path().join("releases").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            // A link inside a release is removed, never followed.
            std::os::unix::fs::symlink(outside.path(), dir.join("shared")).unwrap();
            let when = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_000_000 + 1000 * i as u64);
            std::fs::File::open(&dir)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        // A link named like a release is neither counted nor removed.
        std::os::unix::fs::symlink(outside.path(), root.path().join("releases/r9")).unwrap();
        let refs: Vec<ReleaseRef> = names
            .iter()
            .map(|n| ReleaseRef::parse(n).unwrap())
            .collect();
        // r1 is current (the oldest), r2 the previous one: kept whatever their age.
        let removed = r.prune(3, &[&refs[0], &refs[1]]).unwrap();
        assert_eq!(removed, [refs[3].clone(), refs[2].clone()]);
        for kept in ["r1", "r2", "r5", "r9"] {
            assert!(root.path().join("releases").join(kept).exists(), "{kept}");
        }
        assert!(outside.path().join("precious").exists());
    }

    #[test]
    fn a_fetched_folder_is_adopted_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let r = releases(root.path(), &["v1"]);
        let v2 = ReleaseRef::parse("v2").unwrap();
        let fetched = r.fetching_dir(&v2, "1");
        let err = r.adopt(&fetched, &v2).unwrap_err();
        assert!(err.message().contains("made no folder"), "{err}");
        std::fs::create_dir_all(fetched.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(root.path().join("releases/v1"), &fetched).unwrap();
        assert!(r.adopt(&fetched, &v2).is_err(), "a link is not adopted");
        std::fs::remove_file(&fetched).unwrap();
        std::fs::create_dir(&fetched).unwrap();
        r.adopt(&fetched, &v2).unwrap();
        assert!(r.exists(&v2) && !fetched.exists());
        let v1 = ReleaseRef::parse("v1").unwrap();
        std::fs::create_dir(&fetched).unwrap();
        assert!(
            r.adopt(&fetched, &v1).is_err(),
            "an existing release is kept"
        );
    }

    #[test]
    fn switching_replaces_the_link_whole() {
        let root = tempfile::tempdir().unwrap();
        let r = releases(root.path(), &["v1", "v2"]);
        assert_eq!(r.current().unwrap(), None);
        let (v1, v2) = (
            ReleaseRef::parse("v1").unwrap(),
            ReleaseRef::parse("v2").unwrap(),
        );
        r.switch(&v1).unwrap();
        assert_eq!(r.current().unwrap(), Some(v1.clone()));
        r.switch(&v2).unwrap();
        assert_eq!(r.current().unwrap(), Some(v2));
        assert_eq!(
            std::fs::read_link(root.path().join("current")).unwrap(),
            Path::new("releases/v2")
        );
        assert_eq!(r.addons_paths(&v1), [r.dir(&v1).join("addons")]);
        let missing = ReleaseRef::parse("v3").unwrap();
        assert!(r.switch(&missing).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn a_current_link_pointing_elsewhere_is_refused_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let r = releases(root.path(), &["v1"]);
        std::os::unix::fs::symlink("/etc", root.path().join("current")).unwrap();
        let err = r.current().unwrap_err();
        assert!(err.message().contains("ln -sfn releases/<ref>"), "{err}");
        // A release that is a link to a folder elsewhere is not a release.
        std::os::unix::fs::symlink("/etc", root.path().join("releases/v9")).unwrap();
        assert!(!r.exists(&ReleaseRef::parse("v9").unwrap()));
    }
}
