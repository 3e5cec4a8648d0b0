//! The entries a manifest lists: filestore files (and the problems found with them) and the
//! files of `extra.age`; and the check every reader of a manifest makes on its filestore names.

use serde::{Deserialize, Serialize};
use vigia_odoo::filestore::is_odoo_name;

/// How many problem files an error message names.
const NAMED: usize = 10;

/// One file of the backup, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilestoreEntry {
    /// `ab/ab12...`, as `ir_attachment.store_fname` says.
    pub store_fname: String,
    pub sha1: String,
    /// `objects/<name>`.
    pub object: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum FilestoreProblem {
    Missing {
        store_fname: String,
    },
    /// The content's sha1 is not the one in its name: the file was damaged after Odoo wrote it.
    Damaged {
        store_fname: String,
        actual_sha1: String,
    },
}

/// One file in the bundle, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraEntry {
    pub name: String,
    pub size_bytes: u64,
    /// sha256 of the file's content, hex.
    pub sha256: String,
}

/// What is wrong with the filestore entries a manifest gives, naming each bad one: a name
/// not of Odoo's form (it could name a path outside the restored folder), or a sha1 other
/// than the one its name says. None when every entry is sound.
pub(crate) fn entries_problem(entries: &[FilestoreEntry]) -> Option<String> {
    let bad: Vec<String> = entries.iter().filter_map(entry_problem).collect();
    if bad.is_empty() {
        return None;
    }
    Some(format!(
        "{} filestore entries are refused: {}",
        bad.len(),
        name_some(&bad)
    ))
}

fn entry_problem(entry: &FilestoreEntry) -> Option<String> {
    let (name, object) = (&entry.store_fname, &entry.object);
    if !is_odoo_name(name) {
        return Some(format!(
            "`{name}` ({object}): not of Odoo's form `xx/<sha1>`"
        ));
    }
    (entry.sha1 != name[3..]).then(|| {
        format!(
            "`{name}` ({object}): its sha1 is {}, its name says {}",
            entry.sha1,
            &name[3..]
        )
    })
}

/// The first `NAMED` of `items`, joined, and how many more there are.
pub(crate) fn name_some(items: &[String]) -> String {
    let named = items[..items.len().min(NAMED)].join(", ");
    match items.len().saturating_sub(NAMED) {
        0 => named,
        more => format!("{named} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

    fn entry(store_fname: &str) -> FilestoreEntry {
        FilestoreEntry {
            store_fname: store_fname.to_owned(),
            sha1: SHA1.to_owned(),
            object: "objects/o".to_owned(),
            size_bytes: 0,
        }
    }

    #[test]
    fn an_entry_is_sound_only_with_odoo_s_name_for_its_own_sha1() {
        assert_eq!(entries_problem(&[entry(&format!("da/{SHA1}"))]), None);
        let upper = format!("da/{}", SHA1.to_uppercase());
        let other = format!("00/00{}", &SHA1[2..]);
        for bad in [
            "/tmp/x/..",
            "../../../etc/x",
            &format!("db/{SHA1}"),
            &format!("da/{SHA1}/.."),
            &format!("./da/{SHA1}"),
            &upper,
            &other,
        ] {
            let problem = entries_problem(&[entry(bad)]).unwrap_or_default();
            assert!(problem.contains(&format!("`{bad}`")), "{bad}: {problem}");
        }
    }

    #[test]
    fn a_manifest_s_bad_entries_are_named_ten_at_most() {
        let entries: Vec<FilestoreEntry> = (0..12).map(|i| entry(&format!("../{i}"))).collect();
        let problem = entries_problem(&entries).unwrap();
        assert!(
            problem.starts_with("12 filestore entries are refused: `../0`"),
            "{problem}"
        );
        assert!(problem.ends_with("and 2 more"), "{problem}");
    }
}
