//! A deploy's plan, made before anything is touched (`vigia deploy --dry-run` prints it):
//! from and to, the modules whose code changed, whether the upgrade runs, the steps in
//! order, what undoes each part, and the exact commands. A downgrade is refused here: Odoo
//! cannot make it.

use serde::Serialize;
use vigia_core::process::shell_quote;
use vigia_core::{Error, Result};
use vigia_pg::quote_ident;
use vigia_runtime::releases::ReleaseRef;

use crate::changes::{ModuleChanges, downgrades, module_changes};
use crate::release::ReleaseModules;

/// What a plan is made from: read by the planner, or given by a test.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The deploy's id (the backup id form).
    pub id: &'a str,
    pub from: &'a ReleaseRef,
    pub to: &'a ReleaseRef,
    pub from_modules: &'a ReleaseModules,
    pub to_modules: &'a ReleaseModules,
    /// `vigia.addon_hashes` in the database; None: never recorded.
    pub applied: Option<&'a std::collections::BTreeMap<String, String>>,
    /// Installed modules and their `latest_version`.
    pub installed: &'a std::collections::BTreeMap<String, String>,
    /// The database's Odoo series (`19.0`).
    pub serie: &'a str,
    pub database: &'a str,
    /// `[odoo] upgrade-command` ({database}, {modules}, {release}).
    pub upgrade_command: &'a str,
    /// The new release's folder.
    /// What `{release}` becomes: the release's folder, or its image.
    pub release_place: &'a str,
    /// `[backup]` is set: a verified backup is taken first.
    pub backup: bool,
}

/// The `data` of `vigia deploy --dry-run --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployPlan {
    pub id: String,
    pub from: String,
    pub to: String,
    /// `to` is the current release: the deploy does nothing.
    pub nothing_to_do: bool,
    pub changes: ModuleChanges,
    /// The copy made before the upgrade, what a rollback after it swaps back in.
    pub copy_database: Option<String>,
    /// The upgrade, exactly as it runs in the new release's folder.
    pub upgrade_command: Option<String>,
    pub steps: Vec<String>,
    /// What undoes the deploy at each stage.
    pub compensations: Vec<String>,
    /// Warnings and assumptions (hashes taken as applied, modules left out).
    pub notes: Vec<String>,
    /// The new release's addon hashes, recorded in the database after its upgrade.
    #[serde(skip)]
    pub hashes: std::collections::BTreeMap<String, String>,
}

/// The plan for `input`; a downgrade is refused (`invalid_input`, 11), naming each module.
pub fn plan(input: &PlanInput<'_>) -> Result<DeployPlan> {
    let found = downgrades(&input.to_modules.versions, input.installed, input.serie)?;
    if !found.is_empty() {
        let list: Vec<String> = found
            .iter()
            .map(|d| format!("{} {} -> {}", d.module, d.installed, d.release))
            .collect();
        return Err(Error::invalid_input(format!(
            "release {} would downgrade {} (the database has the newer version, and Odoo \
             cannot downgrade a module): deploy a release whose manifests are at least those",
            input.to,
            list.join(", ")
        )));
    }
    let installed = input.installed.keys().cloned().collect();
    let changes = module_changes(
        &input.to_modules.hashes,
        input.applied,
        &input.from_modules.hashes,
        &installed,
    );
    let notes = notes(input, &changes);
    let nothing_to_do = input.from == input.to;
    let mut plan = DeployPlan {
        id: input.id.to_owned(),
        from: input.from.to_string(),
        to: input.to.to_string(),
        nothing_to_do,
        changes,
        copy_database: None,
        upgrade_command: None,
        steps: Vec::new(),
        compensations: Vec::new(),
        notes,
        hashes: input.to_modules.hashes.clone(),
    };
    if nothing_to_do {
        plan.notes.push(format!(
            "{} is the current release: nothing to do",
            input.to
        ));
        return Ok(plan);
    }
    plan.steps.push(format!(
        "pre-flight: release {} is there; the gate's checks as they are now",
        input.to
    ));
    if input.backup {
        plan.steps
            .push("backup, verified quick (waits up to 15 min for a running one)".to_owned());
    }
    let switch_back = format!("switch current back to {} and restart Odoo", input.from);
    if plan.changes.upgrades() {
        let copy = format!("vigia_predeploy_{}", input.id);
        let command = fill_upgrade(input, &plan.changes.upgrade);
        plan.steps.extend([
            "stop Odoo".to_owned(),
            format!(
                "no other Odoo connected, then copy the database: CREATE DATABASE {} \
                 TEMPLATE {} (STRATEGY FILE_COPY on PostgreSQL 15+)",
                quote_ident(&copy),
                quote_ident(input.database)
            ),
            format!("upgrade in {}: {command}", input.release_place),
            "check that no module is left to upgrade, install or remove; record the addon \
             hashes"
                .to_owned(),
        ]);
        plan.compensations.extend([
            format!("before the upgrade: {switch_back}"),
            format!(
                "after the upgrade: stop Odoo, swap {copy} in for {} (the upgraded one kept \
                 aside), then {switch_back}; not if e-invoices were made since the copy",
                input.database
            ),
        ]);
        plan.copy_database = Some(copy);
        plan.upgrade_command = Some(command);
    } else {
        plan.compensations.push(switch_back);
    }
    plan.steps.extend([
        format!("switch current to {}", input.to),
        "start Odoo (restart it when no upgrade stopped it)".to_owned(),
        "gate: the internal checks, then the public ones once the maintenance page is off"
            .to_owned(),
        "record the deploy in the audit log".to_owned(),
    ]);
    Ok(plan)
}

/// What the plan assumes or leaves out.
fn notes(input: &PlanInput<'_>, changes: &ModuleChanges) -> Vec<String> {
    let mut notes: Vec<String> = input.to_modules.problems.clone();
    if changes.assumed_applied {
        notes.push(
            "the database records no addon hashes (vigia.addon_hashes): the current release's \
             are taken as applied"
                .to_owned(),
        );
    }
    if !changes.not_installed.is_empty() {
        notes.push(format!(
            "not installed, so not upgraded (install them from Odoo): {}",
            changes.not_installed.join(", ")
        ));
    }
    if !changes.missing.is_empty() {
        notes.push(format!(
            "installed but not in release {}: {}",
            input.to,
            changes.missing.join(", ")
        ));
    }
    notes
}

/// `[odoo] upgrade-command` with its words filled in, each quoted for `sh`.
fn fill_upgrade(input: &PlanInput<'_>, modules: &[String]) -> String {
    upgrade_line(
        input.upgrade_command,
        input.database,
        modules,
        input.release_place,
    )
}

/// `template` (`[odoo] upgrade-command`) for `database`, `modules` and the release's place.
pub(crate) fn upgrade_line(
    template: &str,
    database: &str,
    modules: &[String],
    release_place: &str,
) -> String {
    template
        .replace("{database}", &shell_quote(database))
        .replace("{modules}", &shell_quote(&modules.join(",")))
        .replace("{release}", &shell_quote(release_place))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    struct Fixture {
        from: ReleaseRef,
        to: ReleaseRef,
        from_modules: ReleaseModules,
        to_modules: ReleaseModules,
        installed: BTreeMap<String, String>,
        dir: PathBuf,
    }

    fn modules(pairs: &[(&str, &str, &str)]) -> ReleaseModules {
        ReleaseModules {
            hashes: pairs
                .iter()
                .map(|(m, h, _)| ((*m).to_owned(), (*h).to_owned()))
                .collect(),
            versions: pairs
                .iter()
                .map(|(m, _, v)| ((*m).to_owned(), Some((*v).to_owned())))
                .collect(),
            problems: Vec::new(),
        }
    }

    fn fixture(to: &[(&str, &str, &str)]) -> Fixture {
        Fixture {
            from: ReleaseRef::parse("v1").unwrap(),
            to: ReleaseRef::parse("v2").unwrap(),
            from_modules: modules(&[("sale_cr", "a1", "1.0"), ("l10n_cr_einvoice", "b1", "2.0")]),
            to_modules: modules(to),
            installed: [
                ("sale_cr".to_owned(), "19.0.1.0".to_owned()),
                ("l10n_cr_einvoice".to_owned(), "19.0.2.0".to_owned()),
            ]
            .into(),
            dir: PathBuf::from("/srv/odoo/releases/v2"),
        }
    }

    fn input(f: &Fixture) -> PlanInput<'_> {
        PlanInput {
            id: "20261129T120000Z",
            from: &f.from,
            to: &f.to,
            from_modules: &f.from_modules,
            to_modules: &f.to_modules,
            applied: None,
            installed: &f.installed,
            serie: "19.0",
            database: "odoo",
            upgrade_command: "{release}/odoo-bin -d {database} -u {modules} --stop-after-init",
            release_place: f.dir.to_str().unwrap(),
            backup: true,
        }
    }

    #[test]
    fn a_changed_module_plans_a_copy_and_the_exact_upgrade() {
        let f = fixture(&[("sale_cr", "a1", "1.0"), ("l10n_cr_einvoice", "b2", "2.1")]);
        let plan = plan(&input(&f)).unwrap();
        assert_eq!(plan.changes.upgrade, ["l10n_cr_einvoice"]);
        assert_eq!(
            plan.upgrade_command.as_deref(),
            Some("/srv/odoo/releases/v2/odoo-bin -d odoo -u l10n_cr_einvoice --stop-after-init")
        );
        assert_eq!(
            plan.copy_database.as_deref(),
            Some("vigia_predeploy_20261129T120000Z")
        );
        assert!(
            plan.steps
                .iter()
                .any(|s| s.contains("TEMPLATE \"odoo\" (STRATEGY FILE_COPY"))
        );
        assert!(plan.steps[1].starts_with("backup"));
        assert_eq!(plan.compensations.len(), 2);
        assert!(
            plan.notes[0].contains("taken as applied"),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn unchanged_code_plans_only_a_switch() {
        let f = fixture(&[("sale_cr", "a1", "1.0"), ("l10n_cr_einvoice", "b1", "2.0")]);
        let plan = plan(&input(&f)).unwrap();
        assert!(!plan.changes.upgrades());
        assert_eq!(plan.upgrade_command, None);
        assert!(!plan.steps.iter().any(|s| s.contains("stop Odoo")));
        assert_eq!(
            plan.compensations,
            ["switch current back to v1 and restart Odoo"]
        );
    }

    #[test]
    fn the_current_release_is_nothing_to_do_and_a_downgrade_is_refused() {
        let f = fixture(&[("sale_cr", "a1", "1.0"), ("l10n_cr_einvoice", "b1", "2.0")]);
        let mut same = input(&f);
        same.to = &f.from;
        let plan = plan(&same).unwrap();
        assert!(plan.nothing_to_do && plan.steps.is_empty());

        let f = fixture(&[("sale_cr", "a2", "0.9"), ("l10n_cr_einvoice", "b1", "2.0")]);
        let err = super::plan(&input(&f)).unwrap_err();
        assert_eq!(err.kind(), vigia_core::ErrorKind::InvalidInput);
        assert!(
            err.message().contains("sale_cr 19.0.1.0 -> 19.0.0.9"),
            "{err}"
        );
    }

    #[test]
    fn words_from_the_release_are_quoted_in_the_command() {
        let f = fixture(&[("sale_cr", "a1", "1.0"), ("l10n_cr_einvoice", "b2", "2.0")]);
        let mut odd = input(&f);
        let dir = PathBuf::from("/srv/my odoo/releases/v2");
        odd.release_place = dir.to_str().unwrap();
        odd.database = "odoo prod";
        let plan = plan(&odd).unwrap();
        assert_eq!(
            plan.upgrade_command.as_deref(),
            Some(
                "'/srv/my odoo/releases/v2'/odoo-bin -d 'odoo prod' -u l10n_cr_einvoice --stop-after-init"
            )
        );
    }
}
