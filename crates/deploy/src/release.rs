//! What a release holds: each module's hash (vigia-odoo's one algorithm) and manifest
//! version, from its addons folders (`[deploy] addons`), the first folder that has a module
//! winning as in Odoo; or, for an image, from what its one-off listed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use vigia_odoo::addons::addon_hashes;
use vigia_odoo::addons_listing::ImageAddons;
use vigia_odoo::modules::manifest_version;

/// A manifest larger than this is not read (a dict literal is a few KiB).
const MAX_MANIFEST: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseModules {
    /// Module -> hex sha256 of its files.
    pub hashes: BTreeMap<String, String>,
    /// Module -> its manifest's `version` as written (None: it names none).
    pub versions: BTreeMap<String, Option<String>>,
    /// What could not be read (a module left out of both maps).
    pub problems: Vec<String>,
}

impl ReleaseModules {
    /// Reads the modules under `addons_paths`. Blocking: call it off the async threads.
    pub fn read(addons_paths: &[PathBuf]) -> Self {
        let (hashes, mut problems) = addon_hashes(addons_paths);
        let mut versions = BTreeMap::new();
        for module in hashes.keys() {
            let Some(manifest) = addons_paths
                .iter()
                .map(|p| p.join(module).join("__manifest__.py"))
                .find(|m| m.is_file())
            else {
                continue;
            };
            match read_manifest(&manifest) {
                Ok(text) => {
                    versions.insert(module.clone(), manifest_version(&text));
                }
                Err(e) => problems.push(format!("{}: {e}", manifest.display())),
            }
        }
        Self::versioned(hashes, versions, problems)
    }

    /// A module whose manifest was not read is left out of both maps.
    fn versioned(
        hashes: BTreeMap<String, String>,
        versions: BTreeMap<String, Option<String>>,
        problems: Vec<String>,
    ) -> Self {
        let hashes = hashes
            .into_iter()
            .filter(|(m, _)| versions.contains_key(m))
            .collect();
        Self {
            hashes,
            versions,
            problems,
        }
    }
}

impl From<ImageAddons> for ReleaseModules {
    /// An image's modules, as its one-off listed them; a module whose manifest was not
    /// read is left out of both maps, as from a folder.
    fn from(image: ImageAddons) -> Self {
        let versions: BTreeMap<String, Option<String>> = image
            .manifests
            .iter()
            .map(|(module, text)| (module.clone(), manifest_version(text)))
            .collect();
        Self::versioned(image.hashes, versions, image.problems)
    }
}

fn read_manifest(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_MANIFEST)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_read_for_hashes_and_versions_the_first_path_winning() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("addons"), root.path().join("oca"));
        for (dir, version) in [(&first, "'version': '1.2'"), (&second, "'version': '9.9'")] {
            std::fs::create_dir_all(dir.join("sale_cr")).unwrap();
            std::fs::write(
                dir.join("sale_cr/__manifest__.py"),
                format!("{{'name': 'x', {version}}}"),
            )
            .unwrap();
        }
        std::fs::create_dir_all(second.join("pos_cr")).unwrap();
        std::fs::write(second.join("pos_cr/__manifest__.py"), "{'name': 'pos'}").unwrap();
        let modules = ReleaseModules::read(&[first, second]);
        assert_eq!(modules.versions["sale_cr"].as_deref(), Some("1.2"));
        assert_eq!(modules.versions["pos_cr"], None);
        assert_eq!(
            modules.hashes.keys().collect::<Vec<_>>(),
            ["pos_cr", "sale_cr"]
        );
        assert!(modules.problems.is_empty(), "{:?}", modules.problems);
    }
}
