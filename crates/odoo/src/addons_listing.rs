//! Addon hashes of a container image, from what a one-off printed inside it: `sha256sum` of
//! every regular file under each addons path (`find -type f`, `__pycache__` and `.pyc` left
//! out), a line `VIGIA-MANIFESTS`, then each module's `__manifest__.py` as `\0<path>\0<text>`.
//! Folded with [`crate::addons::fold`], so an image and a release folder of the same code
//! get the same hashes. The output is the image's: read as untrusted (sizes capped, a name
//! `sha256sum` had to escape refused as on disk).

use std::collections::BTreeMap;

use crate::addons::fold;

/// A manifest larger than this is left out (a dict literal is a few KiB).
const MAX_MANIFEST: usize = 1 << 20;
pub const MANIFESTS_MARK: &str = "VIGIA-MANIFESTS";
pub const MISSING_MARK: &str = "VIGIA-MISSING ";

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
    let roots: Vec<&str> = paths.iter().map(|p| p.trim_end_matches('/')).collect();
    let mut problems = Vec::new();
    // (root index, module) -> files; modules refused for a name sha256sum escaped.
    let mut files: BTreeMap<(usize, String), Listing> = BTreeMap::new();
    let mut refused: Vec<(usize, String)> = Vec::new();
    for line in String::from_utf8_lossy(listing).lines() {
        if let Some(path) = line.strip_prefix(MISSING_MARK) {
            problems.push(format!("addons path {path}: not in the image"));
            continue;
        }
        let escaped = line.starts_with('\\');
        let Some((hash, path)) = line.trim_start_matches('\\').split_once("  ") else {
            continue;
        };
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
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if hex {
            files
                .entry((root, module))
                .or_default()
                .push((file.as_bytes().to_vec(), hash.to_ascii_lowercase()));
        }
    }
    let texts = manifest_texts(&roots, manifests, &mut problems);
    let mut out = ImageAddons {
        problems,
        ..ImageAddons::default()
    };
    for ((root, module), listing) in files {
        let is_module = listing.iter().any(|(f, _)| f == b"__manifest__.py");
        if !is_module || refused.contains(&(root, module.clone())) {
            continue;
        }
        // BTreeMap order: root 0 first, so the first path that has a module wins.
        if out.hashes.contains_key(&module) {
            continue;
        }
        if let Some(text) = texts.get(&(root, module.clone())) {
            out.manifests.insert(module.clone(), text.clone());
        }
        out.hashes.insert(module, fold(listing));
    }
    out
}

/// `(root index, module, path inside the module)` of a listed path.
fn locate<'p>(roots: &[&str], path: &'p str) -> Option<(usize, String, &'p str)> {
    roots.iter().enumerate().find_map(|(i, root)| {
        let rest = path.strip_prefix(root)?.strip_prefix('/')?;
        let (module, file) = rest.split_once('/')?;
        (!module.is_empty() && !file.is_empty()).then(|| (i, module.to_owned(), file))
    })
}

fn manifest_texts(
    roots: &[&str],
    section: &[u8],
    problems: &mut Vec<String>,
) -> BTreeMap<(usize, String), String> {
    let mut texts = BTreeMap::new();
    let mut parts = section.split(|b| *b == 0).skip(1);
    while let (Some(path), Some(text)) = (parts.next(), parts.next()) {
        let path = String::from_utf8_lossy(path);
        let Some((root, module, "__manifest__.py")) = locate(roots, &path) else {
            continue;
        };
        if text.len() > MAX_MANIFEST {
            problems.push(format!("{path}: larger than 1 MiB, not read"));
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
    }
}
