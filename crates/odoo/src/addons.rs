//! Addon hashes for the manifest: which code ran against the backed-up database. Each module
//! folder (one holding `__manifest__.py`) under `[odoo] addons-paths` gets the sha256 of its
//! files (relative path and content, in path order; `__pycache__` and `.pyc` left out).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Module name -> hex sha256, and the problems met (unreadable paths: warnings, not failures).
pub fn addon_hashes(paths: &[PathBuf]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut hashes = BTreeMap::new();
    let mut problems = Vec::new();
    for root in paths {
        let modules = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!("addons path {}: {e}", root.display()));
                continue;
            }
        };
        for entry in modules.flatten() {
            let dir = entry.path();
            if !dir.join("__manifest__.py").is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            match hash_module(&dir) {
                // The first path that has a module wins, as in Odoo.
                Ok(hash) => {
                    hashes.entry(name).or_insert(hash);
                }
                Err(e) => problems.push(format!("addon {}: {e}", dir.display())),
            }
        }
    }
    (hashes, problems)
}

fn hash_module(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for relative in files {
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        let mut file = std::fs::File::open(dir.join(&relative))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if name != "__pycache__" {
                collect(root, &path, out)?;
            }
        } else if kind.is_file() && !name.ends_with(".pyc") {
            let relative = path.strip_prefix(root).expect("walked under the root");
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(root: &Path, name: &str, code: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("models/__pycache__")).unwrap();
        std::fs::write(dir.join("__manifest__.py"), "{'name': 'x'}").unwrap();
        std::fs::write(dir.join("models/invoice.py"), code).unwrap();
        std::fs::write(dir.join("models/__pycache__/invoice.cpython-312.pyc"), code).unwrap();
    }

    #[test]
    fn hashes_change_with_code_not_with_bytecode() {
        let root = tempfile::tempdir().unwrap();
        module(root.path(), "l10n_cr_einvoice", "x = 1");
        std::fs::create_dir_all(root.path().join("not_a_module")).unwrap();
        let missing = root.path().join("missing");
        let paths = [root.path().to_path_buf(), missing];
        let (first, problems) = addon_hashes(&paths);
        assert_eq!(first.keys().collect::<Vec<_>>(), ["l10n_cr_einvoice"]);
        assert_eq!(problems.len(), 1, "{problems:?}");

        let pyc = root
            .path()
            .join("l10n_cr_einvoice/models/__pycache__/invoice.cpython-312.pyc");
        std::fs::write(pyc, "other bytecode").unwrap();
        assert_eq!(addon_hashes(&paths).0, first);
        std::fs::write(
            root.path().join("l10n_cr_einvoice/models/invoice.py"),
            "x = 2",
        )
        .unwrap();
        assert_ne!(addon_hashes(&paths).0, first);
    }
}
