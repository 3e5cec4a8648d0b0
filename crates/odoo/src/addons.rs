//! Addon hashes: which code ran against a backed-up database (the manifest), and which code a
//! database was upgraded with (a deploy's plan compares them). One algorithm, so that a
//! release folder and a container image listed with `sha256sum` agree: per module (a folder
//! holding `__manifest__.py`), the sha256 of the lines `<hex sha256 of file>  <path relative
//! to the module>\n` sorted by path bytes, for its regular files (links inside a module are
//! not followed; a module folder that is a link is), `__pycache__` and `.pyc` left out.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
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
            // A module folder may be a link (OCA repositories often are laid out so); inside
            // it, links are not followed.
            if !dir.is_dir() || !dir.join("__manifest__.py").is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if hashes.contains_key(&name) {
                // The first path that has a module wins, as in Odoo.
                continue;
            }
            match module_hash(&dir) {
                Ok(hash) => {
                    hashes.insert(name, hash);
                }
                Err(e) => problems.push(format!("addon {}: {e}", dir.display())),
            }
        }
    }
    (hashes, problems)
}

/// The hash of one module folder.
pub fn module_hash(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    let mut listing = Vec::with_capacity(files.len());
    let mut buf = vec![0u8; 64 * 1024];
    for relative in files {
        let mut file = std::fs::File::open(dir.join(std::ffi::OsStr::from_bytes(&relative)))?;
        let mut hasher = Sha256::new();
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        listing.push((relative, hex::encode(hasher.finalize())));
    }
    Ok(fold(listing))
}

/// The module hash of `(path relative to the module, hex sha256 of the file)` pairs, in any
/// order: what a `sha256sum` listing of the module's files folds into.
pub fn fold(mut listing: Vec<(Vec<u8>, String)>) -> String {
    listing.sort();
    let mut hasher = Sha256::new();
    for (path, file_hash) in listing {
        hasher.update(file_hash.as_bytes());
        hasher.update(b"  ");
        hasher.update(&path);
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// The module's regular files, as paths relative to `root` in bytes. A name holding a
/// newline or a backslash is refused: `sha256sum` escapes those, so the two would disagree.
fn collect(root: &Path, dir: &Path, out: &mut Vec<Vec<u8>>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if name != "__pycache__" {
                collect(root, &path, out)?;
            }
        } else if kind.is_file() && !name.as_bytes().ends_with(b".pyc") {
            let relative = path
                .strip_prefix(root)
                .expect("walked under the root")
                .as_os_str()
                .as_bytes()
                .to_vec();
            if relative.iter().any(|b| matches!(b, b'\n' | b'\\')) {
                return Err(std::io::Error::other(format!(
                    "{}: a file name with a newline or a backslash",
                    path.display()
                )));
            }
            out.push(relative);
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

    /// The listing a container image gives (`sha256sum` of the files, sorted by path bytes)
    /// folds into the same hash as the folder read here.
    #[test]
    fn a_sha256sum_listing_agrees_with_the_folder() {
        let root = tempfile::tempdir().unwrap();
        module(root.path(), "sale_cr", "print('hola')\n");
        let dir = root.path().join("sale_cr");
        std::fs::create_dir_all(dir.join("static/src")).unwrap();
        std::fs::write(dir.join("static/src/Z.js"), "z").unwrap();
        std::fs::write(dir.join("static/src/a b.js"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("linked.py")).unwrap();
        let script = "find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sed 's|^\\./||' \
                      | LC_ALL=C sort | tr '\\n' '\\0' | xargs -0 sha256sum | sha256sum";
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success());
        let shell = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            shell.split_whitespace().next().unwrap(),
            module_hash(&dir).unwrap()
        );
    }

    #[test]
    fn a_file_name_sha256sum_would_escape_is_refused() {
        let root = tempfile::tempdir().unwrap();
        module(root.path(), "odd", "x");
        std::fs::write(root.path().join("odd/a\\b.py"), "x").unwrap();
        let (hashes, problems) = addon_hashes(&[root.path().to_path_buf()]);
        assert!(hashes.is_empty());
        assert!(problems[0].contains("backslash"), "{problems:?}");
    }
}
