//! Releases on disk (`[deploy] root`): `root/releases/<ref>/` holds one each, and
//! `root/current` is a link to `releases/<ref>`, replaced whole (a new link renamed over it)
//! so that it always names a release. A ref is `[A-Za-z0-9._-]{1,64}` (not `.` or `..`): it
//! names a folder and goes into commands, so nothing else is taken.

use std::path::{Path, PathBuf};

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
        {
            return Err(Error::invalid_input(format!(
                "`{}` is not a release: use 1 to 64 of A-Z a-z 0-9 . _ - (a tag, a commit, a date)",
                text.escape_default()
            )));
        }
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

/// `text` as one word for `sh`.
pub fn shell_quote(text: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-');
    if !text.is_empty() && text.bytes().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
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
            &"a".repeat(65),
        ] {
            assert!(ReleaseRef::parse(bad).is_err(), "{bad}");
        }
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

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("/srv/odoo/releases/v1"),
            "/srv/odoo/releases/v1"
        );
        assert_eq!(shell_quote("/srv/my odoo"), "'/srv/my odoo'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
