//! What deploying a release changes in the database (DOMAIN.md 2): the installed modules
//! whose code changed get `-u` (click-odoo-update's rule: an unchanged hash needs no
//! upgrade, and so no database rollback), changed modules that are not installed are listed
//! (a deploy installs nothing), and a module whose version went down is refused: Odoo
//! cannot downgrade.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vigia_core::Result;
use vigia_odoo::modules::{adapt_version, compare_versions};

/// The modules a deploy upgrades, and what it only reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModuleChanges {
    /// Installed modules whose hash differs from the applied one: `-u` these.
    pub upgrade: Vec<String>,
    /// Modules whose hash changed (or that are new) but are not installed.
    pub not_installed: Vec<String>,
    /// Installed modules the new release no longer has.
    pub missing: Vec<String>,
    /// No hashes were recorded in the database: the current release's were taken as
    /// applied (what runs now is assumed upgraded).
    pub assumed_applied: bool,
}

impl ModuleChanges {
    /// Whether the deploy runs an upgrade (and so copies the database first).
    pub fn upgrades(&self) -> bool {
        !self.upgrade.is_empty()
    }
}

/// The changes from `applied` (the hashes the database was upgraded with; None: never
/// recorded, so `current`'s are taken) to `target`, for the `installed` modules.
pub fn module_changes(
    target: &BTreeMap<String, String>,
    applied: Option<&BTreeMap<String, String>>,
    current: &BTreeMap<String, String>,
    installed: &BTreeSet<String>,
) -> ModuleChanges {
    let (applied, assumed_applied) = match applied {
        Some(applied) => (applied, false),
        None => (current, true),
    };
    let mut changes = ModuleChanges {
        assumed_applied,
        ..ModuleChanges::default()
    };
    for (module, hash) in target {
        if applied.get(module) == Some(hash) {
            continue;
        }
        if installed.contains(module) {
            changes.upgrade.push(module.clone());
        } else {
            changes.not_installed.push(module.clone());
        }
    }
    // Odoo's own modules live outside the release: only those the releases carried (as the
    // recorded hashes, else the running release, say).
    changes.missing = installed
        .iter()
        .filter(|m| applied.contains_key(*m) && !target.contains_key(*m))
        .cloned()
        .collect();
    changes
}

/// A module whose new version is below the one the database has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downgrade {
    pub module: String,
    /// In the database (`ir_module_module.latest_version`).
    pub installed: String,
    /// In the release's manifest, adapted (`19.0.` prefixed when missing).
    pub release: String,
}

/// The installed modules whose manifest version in the release (`versions`, as written;
/// a module without one is `1.0`, as Odoo takes it) is below the database's.
pub fn downgrades(
    versions: &BTreeMap<String, Option<String>>,
    installed: &BTreeMap<String, String>,
    serie: &str,
) -> Result<Vec<Downgrade>> {
    let mut found = Vec::new();
    for (module, version) in versions {
        let Some(in_db) = installed.get(module).filter(|v| !v.is_empty()) else {
            continue;
        };
        let release = adapt_version(version.as_deref().unwrap_or("1.0"), serie);
        if compare_versions(&release, in_db)? == Ordering::Less {
            found.push(Downgrade {
                module: module.clone(),
                installed: in_db.clone(),
                release,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn only_installed_modules_whose_code_changed_are_upgraded() {
        let current = map(&[("sale_cr", "a1"), ("l10n_cr_einvoice", "b1"), ("old", "c1")]);
        let target = map(&[
            ("sale_cr", "a1"),
            ("l10n_cr_einvoice", "b2"),
            ("pos_cr", "d1"),
        ]);
        let applied = map(&[("sale_cr", "a1"), ("l10n_cr_einvoice", "b1"), ("old", "c1")]);
        let installed = set(&["sale_cr", "l10n_cr_einvoice", "old", "base"]);
        let changes = module_changes(&target, Some(&applied), &current, &installed);
        assert_eq!(changes.upgrade, ["l10n_cr_einvoice"]);
        assert_eq!(changes.not_installed, ["pos_cr"]);
        assert_eq!(
            changes.missing,
            ["old"],
            "base is Odoo's, not the release's"
        );
        assert!(changes.upgrades() && !changes.assumed_applied);

        // The same code again: nothing to upgrade.
        let none = module_changes(&current, Some(&applied), &current, &installed);
        assert!(!none.upgrades(), "{none:?}");
    }

    #[test]
    fn without_recorded_hashes_the_current_release_is_taken_as_applied() {
        let current = map(&[("sale_cr", "a1")]);
        let target = map(&[("sale_cr", "a2")]);
        let changes = module_changes(&target, None, &current, &set(&["sale_cr"]));
        assert!(changes.assumed_applied);
        assert_eq!(changes.upgrade, ["sale_cr"]);
        // An upgrade recorded hashes that differ from the running code (a failed deploy
        // left them): the recorded ones decide.
        let applied = map(&[("sale_cr", "a2")]);
        let changes = module_changes(&target, Some(&applied), &current, &set(&["sale_cr"]));
        assert!(!changes.upgrades());
    }

    #[test]
    fn a_version_below_the_databases_is_a_downgrade() {
        let installed = map(&[
            ("sale_cr", "19.0.1.10"),
            ("pos_cr", "19.0.2.0"),
            ("new", ""),
        ]);
        let versions: BTreeMap<String, Option<String>> = [
            ("sale_cr".to_owned(), Some("1.9".to_owned())),
            ("pos_cr".to_owned(), Some("19.0.2.0".to_owned())),
            ("new".to_owned(), None),
            ("absent".to_owned(), Some("0.1".to_owned())),
        ]
        .into();
        let found = downgrades(&versions, &installed, "19.0").unwrap();
        assert_eq!(
            found,
            [Downgrade {
                module: "sale_cr".into(),
                installed: "19.0.1.10".into(),
                release: "19.0.1.9".into(),
            }]
        );
        let unversioned: BTreeMap<String, Option<String>> = [("pos_cr".to_owned(), None)].into();
        assert_eq!(
            downgrades(&unversioned, &installed, "19.0").unwrap()[0].release,
            "19.0.1.0",
            "no version is Odoo's 1.0"
        );
    }
}
