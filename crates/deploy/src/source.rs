//! Where a deploy's releases come from: folders under `[deploy] root` (the local runtime) or
//! container images named in the compose `.env` (the compose runtime). One interface for
//! what a deploy asks: parse a ref, is it there, fetch it, which modules it holds (the same
//! hashes either way), where `{release}` points, and what a rollback returns to.

use std::sync::Arc;
use std::time::Duration;

use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::Runtime;
use vigia_core::process::shell_quote;
use vigia_core::task::blocking;
use vigia_core::{Config, Error, ErrorKind, Result};
use vigia_odoo::addons_listing::{self, FAILED_MARK, MANIFESTS_MARK, MISSING_MARK};
use vigia_runtime::ComposeRuntime;
use vigia_runtime::releases::{ReleaseRef, Releases};

pub use crate::prepare::Fetch;
use crate::release::ReleaseModules;

/// Listing the addons of an image (a one-off that hashes every file).
const LIST_LIMIT: Duration = Duration::from_mins(10);

#[derive(Debug)]
pub enum Source {
    /// `root/releases/<ref>/`, `root/current` the one that runs.
    Folders(Releases),
    /// Image references; the compose `.env`'s release variable the one that runs.
    Images(Arc<ComposeRuntime>),
}

impl Source {
    /// The source a config's runtime deploys from, and that runtime.
    pub fn from_config(config: &Config) -> Result<(Self, Arc<dyn Runtime>)> {
        if config.runtime.kind == RuntimeKind::Compose {
            if config
                .deploy
                .as_ref()
                .is_some_and(|d| d.build_command.is_some())
            {
                return Err(Error::config(
                    "under compose a release is an image: build it in [deploy] fetch-command \
                     ({ref} is the image to make), not build-command",
                )
                .with_key("deploy.build-command"));
            }
            let compose = Arc::new(ComposeRuntime::from_config(config)?);
            return Ok((Self::Images(compose.clone()), compose));
        }
        let releases = Releases::from_config(config).ok_or_else(|| {
            Error::config("a deploy needs [deploy] root (where releases/<ref>/ and current are)")
                .with_key("deploy.root")
        })?;
        Ok((Self::Folders(releases), vigia_runtime::from_config(config)?))
    }

    pub fn parse(&self, text: &str) -> Result<ReleaseRef> {
        match self {
            Self::Folders(_) => ReleaseRef::parse(text),
            Self::Images(_) => ReleaseRef::image(text),
        }
    }

    pub async fn exists(&self, release: &ReleaseRef) -> Result<bool> {
        match self {
            Self::Folders(releases) => Ok(releases.exists(release)),
            Self::Images(compose) => Ok(compose.image_id(release.as_str()).await?.is_some()),
        }
    }

    /// What `{release}` in the upgrade command becomes: the folder, or the image.
    pub fn place(&self, release: &ReleaseRef) -> String {
        match self {
            Self::Folders(releases) => releases.dir(release).to_string_lossy().into_owned(),
            Self::Images(_) => release.as_str().to_owned(),
        }
    }

    /// What to do about a release that is not there.
    pub fn missing_hint(&self, release: &ReleaseRef) -> String {
        match self {
            Self::Folders(releases) => format!("make {} first", releases.dir(release).display()),
            Self::Images(_) => format!(
                "build or pull {release} on this engine first, or set [deploy] fetch-command"
            ),
        }
    }

    /// How to mark the release that runs when none is.
    pub fn mark_hint(&self) -> String {
        match self {
            Self::Folders(releases) => format!("`{}`", releases.link_hint("<ref>")),
            Self::Images(compose) => format!(
                "a line `<variable>=<image>` in {}",
                compose.dir().join(".env").display()
            ),
        }
    }

    /// The modules `release` holds.
    pub async fn modules(&self, release: &ReleaseRef) -> Result<ReleaseModules> {
        match self {
            Self::Folders(releases) => {
                let paths = releases.addons_paths(release);
                blocking("reading a release", move || {
                    Ok(ReleaseModules::read(&paths))
                })
                .await
            }
            Self::Images(compose) => {
                let paths = compose.image_addons.clone();
                if paths.is_empty() {
                    return Err(Error::config(
                        "a deploy under compose reads the addons inside the image: set \
                         [runtime] image-addons (e.g. [\"/mnt/extra-addons\"])",
                    )
                    .with_key("runtime.image-addons"));
                }
                let script = listing_script(&paths);
                let out = compose
                    .run_captured(&script, release.as_str(), LIST_LIMIT)
                    .await?;
                Ok(addons_listing::parse(&paths, &out.stdout).into())
            }
        }
    }

    /// What a rollback returns to: for an image, the running one tagged for this deploy
    /// (`vigia-rollback/<service>:<id>`: a tag that cannot have moved since); a folder is
    /// itself.
    pub async fn pin(&self, from: &str, id: &str) -> Result<String> {
        match self {
            Self::Folders(_) => Ok(from.to_owned()),
            Self::Images(compose) => compose.pin_running(id).await,
        }
    }

    /// Before a rollback or a resume acts on a journal (state-dir is not trusted): the
    /// release it returns to is what this deploy pinned, and it is still on the engine (a
    /// rollback must never start an image from elsewhere).
    pub async fn check_from(&self, id: &str, from: &str) -> Result<()> {
        let Self::Images(compose) = self else {
            return ReleaseRef::parse(from).map(drop);
        };
        let pinned = compose.pin_tag(id).await?;
        if from != pinned {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "deploy {id}'s journal returns to {from}, not to the image it pinned ({pinned}): not acted on"
                ),
            ));
        }
        if compose.image_id(from).await?.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{from}, the image deploy {id} would return to, is no longer on the engine (removed by an image prune?): nothing was touched; switch [runtime] release-variable by hand"
                ),
            ));
        }
        Ok(())
    }

    /// Makes `release` when it is not there, before anything stops: a folder with
    /// `fetch-command` (if set); an image with `fetch-command` ({ref}: the image to make, run
    /// in `[deploy] root`), else pulled.
    pub async fn fetch(&self, release: &ReleaseRef, how: &Fetch<'_>) -> Result<()> {
        match self {
            Self::Folders(releases) => match how.command {
                Some(command) if !releases.exists(release) => {
                    crate::prepare::fetch(releases, release, command, how).await
                }
                _ => Ok(()),
            },
            Self::Images(compose) => {
                if compose.image_id(release.as_str()).await?.is_some() {
                    return Ok(());
                }
                match how.command {
                    Some(command) => crate::prepare::make_image(release, command, how).await?,
                    None => compose.pull(release.as_str()).await?,
                }
                if compose.image_id(release.as_str()).await?.is_none() {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("the fetch ran but image {release} is still not on the engine"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The one-off that lists an image's addons (vigia-odoo's addons_listing reads it): per
/// module folder (a link to one followed, as on disk), its regular files' sha256, then the
/// manifests. A find or sha256sum that fails marks the module, which is then left out.
fn listing_script(paths: &[String]) -> String {
    let quoted: Vec<String> = paths
        .iter()
        .map(|p| shell_quote(p.trim_end_matches('/')))
        .collect();
    let paths = quoted.join(" ");
    format!(
        "for p in {paths}; do [ -d \"$p\" ] || {{ printf '{MISSING_MARK}%s\\n' \"$p\"; continue; }}; \
         for d in \"$p\"/*/; do d=\"${{d%/}}\"; [ -f \"$d/__manifest__.py\" ] || continue; \
         find -H \"$d\" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -exec sha256sum {{}} + \
         || printf '{FAILED_MARK}%s\\n' \"$d\"; done; done; printf '\\n{MANIFESTS_MARK}\\n'; \
         for p in {paths}; do for m in \"$p\"/*/__manifest__.py; do [ -f \"$m\" ] || continue; \
         printf '\\0%s\\0' \"$m\"; cat \"$m\"; done; done"
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use vigia_odoo::addons::addon_hashes;

    /// The one-off's script run here, on folders: what it lists folds to what the folder
    /// algorithm computes, links to modules and to addons paths and trailing slashes alike.
    #[test]
    fn the_listing_script_agrees_with_the_folder_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, elsewhere) = (
            dir.path().join("addons"),
            dir.path().join("oca-real"),
            dir.path().join("elsewhere"),
        );
        for (root, module, code) in [
            (&a, "l10n_cr_einvoice", "x = 1"),
            (&b, "sale_cr", "y = 2"),
            (&elsewhere, "linked_mod", "z = 3"),
        ] {
            let m = root.join(module);
            std::fs::create_dir_all(m.join("models/__pycache__")).unwrap();
            std::fs::write(
                m.join("__manifest__.py"),
                format!("{{'version': '1.{code}'}}"),
            )
            .unwrap();
            std::fs::write(m.join("models/x.py"), code).unwrap();
            std::fs::write(m.join("models/__pycache__/x.pyc"), "bytecode").unwrap();
        }
        std::os::unix::fs::symlink(elsewhere.join("linked_mod"), a.join("linked_mod")).unwrap();
        let b_link = dir.path().join("oca");
        std::os::unix::fs::symlink(&b, &b_link).unwrap();
        let paths = vec![
            format!("{}/", a.display()),
            b_link.to_string_lossy().into_owned(),
            dir.path().join("missing").to_string_lossy().into_owned(),
        ];
        let out = std::process::Command::new("sh")
            .args(["-c", &listing_script(&paths)])
            .output()
            .unwrap();
        let listed: ReleaseModules = addons_listing::parse(&paths, &out.stdout).into();
        let folders: Vec<PathBuf> = vec![a.clone(), b_link.clone()];
        let on_disk = ReleaseModules::read(&folders);
        assert_eq!(listed.hashes, on_disk.hashes);
        assert_eq!(listed.versions, on_disk.versions);
        assert_eq!(addon_hashes(&folders).0.len(), 3);
        assert_eq!(listed.problems.len(), 1, "{:?}", listed.problems);
    }
}
