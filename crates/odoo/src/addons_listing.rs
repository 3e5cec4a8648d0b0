//! Addon hashes of a container image, from what a one-off printed inside it: per module
//! folder, `sha256sum` of its regular files (`find -H -type f`, `__pycache__` and `.pyc` left
//! out; `VIGIA-FAILED <dir>` when that failed), a line `VIGIA-MANIFESTS`, then each module's
//! `__manifest__.py` as `\0<path>\0<text>`. Folded with [`crate::addons::fold`], so an
//! image and a release folder of the same code get the same hashes. The output is the
//! image's: read as untrusted bytes (a name `sha256sum` had to escape refused as on disk, a
//! manifest's text used only when its sha256 is the one listed).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::addons::fold;

/// A manifest larger than this is left out (a dict literal is a few KiB).
const MAX_MANIFEST: usize = 1 << 20;
pub const MANIFESTS_MARK: &str = "VIGIA-MANIFESTS";
pub const MISSING_MARK: &str = "VIGIA-MISSING ";
pub const FAILED_MARK: &str = "VIGIA-FAILED ";

/// One module's files: (path inside it, hex sha256).
type Listing = Vec<(Vec<u8>, String)>;

/// What the listing says: module -> hash and module -> manifest text, the first addons path
/// that has a module winning as in Odoo; and what could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImageAddons {
    pub hashes: BTreeMap<String, String>,
    pub manifests: BTreeMap<String, String>,
    pub problems: Vec<String>,
}

/// Reads `output`, printed for `paths` (absolute, as given to the one-off).
pub fn parse(paths: &[String], output: &[u8]) -> ImageAddons {
    let mark = format!("\n{MANIFESTS_MARK}\n");
    let (listing, manifests) = match find(output, mark.as_bytes()) {
        Some(at) => (&output[..=at], &output[at + mark.len()..]),
        None => (output, &b""[..]),
    };
    let roots: Vec<&[u8]> = paths
        .iter()
        .map(|p| p.trim_end_matches('/').as_bytes())
        .collect();
    let mut problems = Vec::new();
    let mut files: BTreeMap<(usize, String), Listing> = BTreeMap::new();
    // Modules left out: a name sha256sum escaped, a file it could not read.
    let mut refused: Vec<(usize, String)> = Vec::new();
    for line in listing.split(|b| *b == b'\n') {
        if let Some(path) = line.strip_prefix(MISSING_MARK.as_bytes()) {
            let path = String::from_utf8_lossy(path);
            problems.push(format!("addons path {path}: not in the image"));
            continue;
        }
        if let Some(dir) = line.strip_prefix(FAILED_MARK.as_bytes()) {
            let mut with_file = dir.to_vec();
            with_file.extend(b"/x");
            if let Some((root, module, _)) = locate(&roots, &with_file) {
                problems.push(format!("addon {module}: a file could not be read"));
                refused.push((root, module));
            }
            continue;
        }
        let escaped = line.first() == Some(&b'\\');
        let body = if escaped { &line[1..] } else { line };
        if body.len() < 67 || &body[64..66] != b"  " {
            continue;
        }
        let (hash, path) = (&body[..64], &body[66..]);
        if !hash.iter().all(u8::is_ascii_hexdigit) {
            continue;
        }
        let Some((root, module, file)) = locate(&roots, path) else {
            continue;
        };
        if escaped {
            problems.push(format!(
                "addon {module}: a file name with a newline or a backslash"
            ));
            refused.push((root, module));
            continue;
        }
        let hash = String::from_utf8_lossy(hash).to_ascii_lowercase();
        files
            .entry((root, module))
            .or_default()
            .push((file.to_vec(), hash));
    }
    let texts = manifest_texts(&roots, manifests, &mut problems);
    let mut out = ImageAddons {
        problems,
        ..ImageAddons::default()
    };
    for ((root, module), listing) in files {
        let Some(manifest_hash) = listing
            .iter()
            .find(|(f, _)| f == b"__manifest__.py")
            .map(|(_, h)| h.clone())
        else {
            continue;
        };
        if refused.contains(&(root, module.clone())) {
            continue;
        }
        // BTreeMap order: root 0 first, so the first path that has a module wins.
        if out.hashes.contains_key(&module) {
            continue;
        }
        // The manifest's text counts only when it is the file the listing hashed.
        match texts.get(&(root, module.clone())) {
            Some(text) if hex::encode(Sha256::digest(text.as_bytes())) == manifest_hash => {
                out.manifests.insert(module.clone(), text.clone());
            }
            Some(_) => out.problems.push(format!(
                "addon {module}: its manifest's text is not the file listed"
            )),
            None => {}
        }
        out.hashes.insert(module, fold(listing));
    }
    out
}

/// `(root index, module, path inside the module)` of a listed path.
fn locate<'p>(roots: &[&[u8]], path: &'p [u8]) -> Option<(usize, String, &'p [u8])> {
    roots.iter().enumerate().find_map(|(i, root)| {
        let rest = path.strip_prefix(*root)?.strip_prefix(b"/")?;
        let slash = rest.iter().position(|b| *b == b'/')?;
        let (module, file) = (&rest[..slash], &rest[slash + 1..]);
        let module = std::str::from_utf8(module).ok()?;
        (!module.is_empty() && !file.is_empty()).then(|| (i, module.to_owned(), file))
    })
}

fn manifest_texts(
    roots: &[&[u8]],
    section: &[u8],
    problems: &mut Vec<String>,
) -> BTreeMap<(usize, String), String> {
    let mut texts = BTreeMap::new();
    let mut parts = section.split(|b| *b == 0).skip(1);
    while let (Some(path), Some(text)) = (parts.next(), parts.next()) {
        let Some((root, module, b"__manifest__.py")) = locate(roots, path) else {
            continue;
        };
        if text.len() > MAX_MANIFEST {
            problems.push(format!(
                "addon {module}: a manifest larger than 1 MiB, not read"
            ));
            continue;
        }
        texts.insert((root, module), String::from_utf8_lossy(text).into_owned());
    }
    texts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::addons::addon_hashes;

    /// What the one-off prints, made here with the host's find and sha256sum.
    fn listing_of(paths: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in paths {
            let listed = Command::new("sh")
                .args([
                    "-c",
                    "[ -d \"$1\" ] || { printf 'VIGIA-MISSING %s\\n' \"$1\"; exit 0; }; find \"$1\" \
                     -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -exec sha256sum {} +",
                    "sh",
                    p,
                ])
                .output()
                .unwrap();
            out.extend(listed.stdout);
        }
        out.extend(format!("{MANIFESTS_MARK}\n").as_bytes());
        for p in paths {
            let Ok(entries) = std::fs::read_dir(p) else {
                continue;
            };
            for e in entries.flatten() {
                let m = e.path().join("__manifest__.py");
                if let Ok(text) = std::fs::read(&m) {
                    out.push(0);
                    out.extend(m.to_string_lossy().as_bytes());
                    out.push(0);
                    out.extend(text);
                }
            }
        }
        out
    }

    #[test]
    fn an_image_listing_folds_to_the_same_hashes_as_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("addons"), dir.path().join("oca"));
        for (root, module, code) in [
            (&a, "l10n_cr_einvoice", "x = 1"),
            (&a, "sale_cr", "y = 2"),
            (&b, "sale_cr", "shadowed = True"),
            (&b, "web_cr", "z = 3"),
        ] {
            let m = root.join(module);
            std::fs::create_dir_all(m.join("models/__pycache__")).unwrap();
            std::fs::write(
                m.join("__manifest__.py"),
                format!("{{'version': '{module}'}}"),
            )
            .unwrap();
            std::fs::write(m.join("models/x.py"), code).unwrap();
            std::fs::write(m.join("models/__pycache__/x.pyc"), "bytecode").unwrap();
            std::fs::write(m.join("models/with space.py"), code).unwrap();
        }
        std::fs::create_dir_all(a.join("not_a_module")).unwrap();
        std::fs::write(a.join("not_a_module/x.py"), "").unwrap();
        let paths = vec![
            a.to_string_lossy().into_owned(),
            format!("{}/", b.display()),
            dir.path().join("missing").to_string_lossy().into_owned(),
        ];
        let image = parse(&paths, &listing_of(&paths));
        let (on_disk, _) = addon_hashes(&[a.clone(), b.clone()]);
        assert_eq!(image.hashes, on_disk);
        assert_eq!(image.hashes.len(), 3);
        let first = image.hashes.clone();
        assert_eq!(
            image.manifests["sale_cr"], "{'version': 'sale_cr'}",
            "first path wins"
        );
        assert_eq!(image.problems.len(), 1, "{:?}", image.problems);

        // A file name sha256sum escapes: the module is left out, as on disk (the next
        // path's sale_cr then wins).
        std::fs::write(a.join("sale_cr/odd\\name.py"), "").unwrap();
        let image = parse(&paths, &listing_of(&paths));
        let (on_disk, _) = addon_hashes(&[a.clone(), b.clone()]);
        assert_eq!(image.hashes, on_disk);
        assert_ne!(image.hashes["sale_cr"], first["sale_cr"]);
        assert_eq!(image.manifests["sale_cr"], "{'version': 'sale_cr'}");
        assert!(image.problems.iter().any(|p| p.contains("backslash")));
    }

    #[test]
    fn hostile_output_is_read_without_harm() {
        let paths = vec!["/addons".to_owned()];
        let odd = b"garbage\n\\\n  \nnot-hex  /addons/m/__manifest__.py\n\
                    VIGIA-MANIFESTS\n\0/etc/passwd\0root\0/addons/m/__manifest__.py";
        let parsed = parse(&paths, odd);
        assert!(parsed.hashes.is_empty(), "{parsed:?}");
        assert!(parsed.manifests.is_empty());

        // A manifest whose text is not the file the listing hashed is not read.
        let real = "{'version': '1.0'}";
        let listed = format!(
            "{}  /addons/m/__manifest__.py\n\n{MANIFESTS_MARK}\n",
            hex::encode(Sha256::digest(real))
        );
        for (text, read) in [(real, true), ("{'version': '9.0'}", false)] {
            let mut output = listed.clone().into_bytes();
            output.extend(format!("\0/addons/m/__manifest__.py\0{text}").as_bytes());
            let parsed = parse(&paths, &output);
            assert!(parsed.hashes.contains_key("m"));
            assert_eq!(parsed.manifests.contains_key("m"), read, "{text}");
        }
        // A module whose find failed is left out.
        let failed = listed.replacen('\n', &format!("\n{FAILED_MARK}/addons/m\n"), 1);
        assert!(parse(&paths, failed.as_bytes()).hashes.is_empty());
    }
}
