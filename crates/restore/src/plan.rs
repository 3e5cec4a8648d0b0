//! A restore's plan, made before anything is touched and from nothing but its inputs: the
//! source, the database the copy is made in, where the live one goes when the copy replaces
//! it, and the steps. Every refusal that needs no server is here (the flag combinations, the
//! production rules, names PostgreSQL cannot hold), so `restore --dry-run` and unit tests see
//! exactly what a run would do.

use std::path::PathBuf;

use serde::Serialize;
use vigia_backup::format::{BackupId, db_names};
use vigia_core::config::{RuntimeKind, check_database_name};
use vigia_core::{Error, Result};

/// What a restore reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreSource {
    Backup(BackupId),
    /// A zip made by Odoo's database manager: `dump.sql`, `filestore/`, `manifest.json`.
    OdooZip(PathBuf),
}

/// What a plan is made from: the request's flags and the environment's facts.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is a flag of the command"
)]
pub struct PlanInput<'a> {
    pub source: &'a RestoreSource,
    /// `--target-db`: restore beside the live database, into this new one.
    pub target_db: Option<&'a str>,
    pub confirm: Option<&'a str>,
    pub accept_einvoice_loss: bool,
    pub force_sessions: bool,
    pub neutralize: bool,
    pub trust_zip: bool,
    /// The environment says `production = true`.
    pub production: bool,
    pub live_db: &'a str,
    pub runtime: RuntimeKind,
    /// An Odoo zip has no id of its own: the copy's name takes this one (time and random).
    pub zip_id: &'a BackupId,
}

/// The plan of one restore (`vigia restore --dry-run --json`: `{"plan": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    pub source: RestoreSource,
    pub live_database: String,
    /// The new database the copy is made in; it must not exist.
    pub copy: String,
    /// Where the live database goes when the copy replaces it; null: restored beside it,
    /// the live database untouched.
    pub aside: Option<String>,
    pub neutralize: bool,
    /// The live database's e-invoice documents newer than the source refuse the swap.
    pub einvoice_guard: bool,
    /// `[runtime] kind`: whether vigia stops and starts Odoo around the swap.
    pub runtime: RuntimeKind,
    /// What the restore will do, in order, for a person.
    pub steps: Vec<String>,
}

impl RestorePlan {
    /// The plan for `input`, or the refusal that says why there is none.
    pub fn new(input: &PlanInput<'_>) -> Result<Self> {
        refuse_flags(input)?;
        let (copy, aside) = if let Some(target) = input.target_db {
            (target.to_owned(), None)
        } else {
            if input.production && input.confirm != Some(input.live_db) {
                return Err(Error::invalid_input(format!(
                    "this environment is production: replacing database {0} needs --confirm \
                     {0} (or restore beside it with --target-db NAME)",
                    input.live_db
                )));
            }
            let suffix = match input.source {
                RestoreSource::Backup(id) => db_names::id_part(id),
                RestoreSource::OdooZip(_) => format!("zip_{}", db_names::id_part(input.zip_id)),
            };
            (
                db_names::restore_copy(&suffix),
                Some(db_names::set_aside(input.live_db, &suffix)),
            )
        };
        for name in std::iter::once(&copy).chain(aside.as_ref()) {
            check_database_name(name)
                .map_err(|e| Error::invalid_input(format!("cannot restore into {name}: {e}")))?;
        }
        let mut plan = Self {
            source: input.source.clone(),
            live_database: input.live_db.to_owned(),
            copy,
            aside,
            neutralize: input.neutralize,
            einvoice_guard: input.target_db.is_none() && !input.accept_einvoice_loss,
            runtime: input.runtime,
            steps: Vec::new(),
        };
        plan.steps = plan.describe(input);
        Ok(plan)
    }

    /// True when the copy replaces the live database.
    pub fn swaps(&self) -> bool {
        self.aside.is_some()
    }

    fn describe(&self, input: &PlanInput<'_>) -> Vec<String> {
        let (copy, live) = (&self.copy, &self.live_database);
        // With runtime none vigia cannot stop Odoo: a connected Odoo refuses the restore
        // before the copy is made, and again before the swap.
        let refuse_sessions =
            self.swaps() && self.runtime == RuntimeKind::None && !input.force_sessions;
        let mut steps = Vec::new();
        if refuse_sessions {
            steps.push(format!(
                "refuse while other sessions are connected to {live} (runtime none: vigia \
                 cannot stop Odoo)"
            ));
        }
        match &self.source {
            RestoreSource::Backup(id) => {
                steps.push(format!(
                    "check that every object of backup {id} is in the store and its manifest \
                     is authentic"
                ));
                if self.einvoice_guard {
                    steps.push(format!(
                        "refuse if {live} holds e-invoice documents created after the backup"
                    ));
                }
                steps.push("decrypt the dump to the spool folder, checking its sha256".into());
                steps.push(format!(
                    "create database {copy} and restore the dump and the filestore into it"
                ));
                steps.push(format!(
                    "ANALYZE {copy} and compare its row counts with the manifest's"
                ));
            }
            RestoreSource::OdooZip(zip) => {
                steps.push(format!(
                    "read {}'s manifest and check its Odoo series",
                    zip.display()
                ));
                steps.push(format!(
                    "create database {copy} and import dump.sql ({}) and the filestore into it",
                    if input.trust_zip {
                        "with the configured role's rights"
                    } else {
                        "as a throwaway role"
                    }
                ));
                steps.push(format!("ANALYZE {copy}"));
                if self.einvoice_guard {
                    steps.push(format!(
                        "refuse if {live} holds e-invoice documents newer than the newest in \
                         {copy} (which is kept for --cleanup)"
                    ));
                }
            }
        }
        if self.neutralize {
            steps.push(format!(
                "neutralize {copy}: Hacienda sandbox, no automatic submission, credentials, \
                 certificate, crons and mail servers off"
            ));
        }
        let Some(aside) = &self.aside else {
            steps.push(format!("leave {copy} beside {live}, which is not touched"));
            return steps;
        };
        steps.push(match self.runtime {
            RuntimeKind::None if refuse_sessions => {
                format!("check again that no other session is connected to {live}")
            }
            RuntimeKind::None => format!("end the other sessions on {live}"),
            _ => "stop Odoo".to_owned(),
        });
        steps.push(format!(
            "journal the swap, then rename {live} to {aside} and {copy} to {live} (undone from \
             the journal on any failure)"
        ));
        steps.push(match self.runtime {
            RuntimeKind::None => format!("compare {live}'s row counts with the copy's"),
            _ => format!(
                "compare {live}'s row counts with the copy's, start Odoo and wait for \
                 /web/health"
            ),
        });
        steps.push(format!(
            "keep {aside} until `vigia restore --cleanup --apply`"
        ));
        steps
    }
}

/// Flags that do not go together, or not in this environment.
fn refuse_flags(input: &PlanInput<'_>) -> Result<()> {
    if input.target_db.is_some()
        && (input.confirm.is_some() || input.accept_einvoice_loss || input.force_sessions)
    {
        return Err(Error::invalid_input(
            "--confirm, --accept-einvoice-loss and --force-sessions go with replacing the live \
             database, not with --target-db (which never touches it)",
        ));
    }
    if input.trust_zip && !matches!(input.source, RestoreSource::OdooZip(_)) {
        return Err(Error::invalid_input(
            "--trust-zip goes with --from-odoo-zip: a vigia backup's dump is proven by its \
             index before it is restored",
        ));
    }
    if input.neutralize && input.production {
        return Err(Error::invalid_input(
            "--neutralize is refused in a production environment (it says production = \
             true): restore under the environment the copy is for, e.g. --env staging",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use vigia_core::ErrorKind;

    use super::*;

    fn id() -> BackupId {
        "20261128T021530Z-k3f9".parse().unwrap()
    }

    fn input<'a>(source: &'a RestoreSource, zip_id: &'a BackupId) -> PlanInput<'a> {
        PlanInput {
            source,
            target_db: None,
            confirm: None,
            accept_einvoice_loss: false,
            force_sessions: false,
            neutralize: false,
            trust_zip: false,
            production: false,
            live_db: "odoo",
            runtime: RuntimeKind::Local,
            zip_id,
        }
    }

    fn refusal(input: &PlanInput<'_>) -> String {
        let e = RestorePlan::new(input).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        e.message().to_owned()
    }

    #[test]
    fn a_swap_restores_into_a_copy_and_sets_the_live_database_aside() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let plan = RestorePlan::new(&input(&source, &zip_id)).unwrap();
        assert_eq!(plan.copy, "vigia_restore_20261128t021530z_k3f9");
        assert_eq!(
            plan.aside.as_deref(),
            Some("odoo_pre_restore_20261128t021530z_k3f9")
        );
        assert!(plan.swaps() && plan.einvoice_guard);
        insta::assert_json_snapshot!(plan);
    }

    #[test]
    fn beside_the_live_database_nothing_is_set_aside_or_guarded() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let plan = RestorePlan::new(&PlanInput {
            target_db: Some("odoo_staging"),
            neutralize: true,
            ..input(&source, &zip_id)
        })
        .unwrap();
        assert_eq!((plan.copy.as_str(), plan.aside), ("odoo_staging", None));
        assert!(!plan.einvoice_guard);
        assert!(plan.steps.last().unwrap().contains("not touched"));
    }

    #[test]
    fn a_zip_copy_is_named_after_the_id_it_is_given() {
        let source = RestoreSource::OdooZip("/tmp/odoo.zip".into());
        let zip_id = id();
        let plan = RestorePlan::new(&input(&source, &zip_id)).unwrap();
        assert_eq!(plan.copy, "vigia_restore_zip_20261128t021530z_k3f9");
    }

    #[test]
    fn flags_of_a_swap_are_refused_beside_the_live_database() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        for (confirm, accept, force) in [
            (Some("odoo"), false, false),
            (None, true, false),
            (None, false, true),
        ] {
            let message = refusal(&PlanInput {
                target_db: Some("copy"),
                confirm,
                accept_einvoice_loss: accept,
                force_sessions: force,
                ..input(&source, &zip_id)
            });
            assert!(message.contains("not with --target-db"), "{message}");
        }
    }

    #[test]
    fn trust_zip_goes_only_with_a_zip() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let message = refusal(&PlanInput {
            trust_zip: true,
            ..input(&source, &zip_id)
        });
        assert!(message.contains("--trust-zip goes with --from-odoo-zip"));
    }

    #[test]
    fn production_refuses_neutralize_and_a_swap_without_confirm() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let production = PlanInput {
            production: true,
            ..input(&source, &zip_id)
        };
        let message = refusal(&PlanInput {
            neutralize: true,
            target_db: Some("copy"),
            ..production.clone()
        });
        assert!(message.contains("--neutralize is refused in a production environment"));
        assert!(refusal(&production).contains("needs --confirm odoo"));
        assert!(
            refusal(&PlanInput {
                confirm: Some("other"),
                ..production.clone()
            })
            .contains("needs --confirm odoo")
        );
        RestorePlan::new(&PlanInput {
            confirm: Some("odoo"),
            ..production
        })
        .unwrap();
    }

    #[test]
    fn a_name_postgres_cannot_hold_is_refused_before_anything_happens() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let long = "x".repeat(60);
        let message = refusal(&PlanInput {
            live_db: &long,
            ..input(&source, &zip_id)
        });
        assert!(message.contains("cannot restore into"), "{message}");
        let message = refusal(&PlanInput {
            target_db: Some("bad\"name"),
            ..input(&source, &zip_id)
        });
        assert!(message.contains("cannot restore into"), "{message}");
    }

    #[test]
    fn runtime_none_refuses_sessions_unless_forced() {
        let (source, zip_id) = (RestoreSource::Backup(id()), id());
        let none = PlanInput {
            runtime: RuntimeKind::None,
            ..input(&source, &zip_id)
        };
        let plan = RestorePlan::new(&none).unwrap();
        assert!(
            plan.steps
                .iter()
                .any(|s| s.starts_with("refuse while other sessions"))
        );
        let forced = RestorePlan::new(&PlanInput {
            force_sessions: true,
            ..none
        })
        .unwrap();
        assert!(
            forced
                .steps
                .iter()
                .any(|s| s.starts_with("end the other sessions"))
        );
    }
}
