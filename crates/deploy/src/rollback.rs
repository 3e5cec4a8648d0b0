//! Undoing a deploy, from what it reached. Before the upgrade: the switch back and a
//! restart. After it (the schema may have moved, even partly): the maintenance page up, the
//! pre-deploy copy swapped back in through restore's journaled swap (the upgraded database
//! kept aside and recorded for `restore --cleanup`), the filestore checked for every file
//! the copy references, and only then the old release switched in and started, so that old
//! code never runs on an upgraded schema: a swap that fails is undone and leaves the new
//! release current with Odoo stopped behind the maintenance page. E-invoices made since the
//! copy stop it before anything is touched (Hacienda has their claves: losing them is worse
//! than the failed deploy), unless `--accept-einvoice-loss`: the new release then stays if
//! its gate passes, else it is stopped. `vigia rollback` does the same from the journal
//! alone, for a deploy that was killed, or the last one that succeeded, or one whose
//! rollback was refused.

use std::sync::Arc;
use std::time::Instant;

use vigia_backup::{CopyKind, CopyRecords};
use vigia_core::ports::database::Database as _;
use vigia_core::ports::runtime::{Service, ServiceState};
use vigia_core::{Error, ErrorKind, Result};
use vigia_pg::PgAdmin;
use vigia_restore::SwapIn;

use crate::executor::{DeployJob, LAST, Reached, Steps};
use crate::gate::Stage;
use crate::journal::{self, Header, Journal, Recorded};
use crate::report::{DeployReport, REFUSED, RollbackReport, outcome_of};

/// How a rollback after an upgrade ended, when nothing failed.
enum Back {
    Done {
        swapped_back: bool,
        /// Files the swapped-in copy references that the filestore lacks.
        missing: Option<String>,
    },
    /// The e-invoice guard said no: nothing touched, and it may be run again.
    Refused(Error),
}

impl DeployJob {
    pub(crate) async fn rollback(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &Reached,
        accept_einvoice_loss: bool,
    ) -> RollbackReport {
        let undone = if reached.upgrade_started {
            Box::pin(self.rollback_upgrade(header, steps, reached, accept_einvoice_loss)).await
        } else {
            self.rollback_switch(header, steps, reached)
                .await
                .map(|()| Back::Done {
                    swapped_back: false,
                    missing: None,
                })
        };
        let failed = |e: Error, refused| RollbackReport {
            ok: false,
            swapped_back: false,
            refused,
            steps: Vec::new(),
            detail: Some(e.to_string()),
            kind: Some(e.kind()),
        };
        match undone {
            Ok(Back::Done {
                swapped_back,
                missing,
            }) => RollbackReport {
                ok: true,
                swapped_back,
                refused: false,
                steps: Vec::new(),
                detail: missing,
                kind: None,
            },
            Ok(Back::Refused(e)) => failed(e, true),
            Err(e) => failed(e, false),
        }
    }

    async fn rollback_switch(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &Reached,
    ) -> Result<()> {
        let runtime = &self.planner.runtime;
        if reached.switched {
            steps
                .run("rollback.switch", runtime.switch(&header.from, &header.id))
                .await?;
        }
        if reached.switched || reached.stopped {
            steps
                .run("rollback.start", async {
                    runtime.restart(Service::Odoo).await.map(drop)
                })
                .await?;
            self.gate_back(steps, reached).await?;
        }
        Ok(())
    }

    /// The gate after a rollback: internal checks, the maintenance page off, public ones.
    async fn gate_back(&self, steps: &mut Steps, reached: &Reached) -> Result<()> {
        steps
            .run(
                "rollback.gate",
                self.gate.pass(Stage::Internal, &reached.baseline, None),
            )
            .await?;
        steps
            .run("rollback.public_gate", async {
                self.maintenance.off()?;
                self.gate.pass(Stage::Public, &reached.baseline, None).await
            })
            .await
    }

    async fn rollback_upgrade(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &Reached,
        accept_einvoice_loss: bool,
    ) -> Result<Back> {
        let runtime = &self.planner.runtime;
        if reached.swapped {
            // A rollback killed after its swap: the old schema is back already.
            self.record_aside(&self.upgraded_aside(&header.id));
            return self.old_release_back(header, steps, reached).await;
        }
        let copy = header
            .copy_database
            .as_deref()
            .ok_or_else(|| Error::internal("an upgrade without a copy"))?;
        let since = reached.copied_at.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "deploy {}'s journal has an upgrade but not the time of its copy: \
                     nothing rolled back; see state-dir/deploys/{}",
                    header.id, header.id
                ),
            )
        })?;
        // Before anything stops: the copy is there, and no e-invoice would be lost.
        if !PgAdmin::connect(&self.planner.target)
            .await?
            .exists(copy)
            .await?
        {
            return Err(Error::invalid_input(format!(
                "the pre-deploy copy {copy} is gone: nothing rolled back"
            )));
        }
        if !accept_einvoice_loss
            && let Some(refusal) = steps
                .run(
                    "rollback.einvoice_guard",
                    self.einvoice_guard(header, copy, &since),
                )
                .await?
        {
            return Ok(Back::Refused(
                self.keep_new_release(refusal, header, reached).await,
            ));
        }
        steps
            .run("rollback.stop", async {
                self.maintenance
                    .on(&format!("vigia rollback of {}", header.id))?;
                runtime.stop(Service::Odoo).await.map(drop)
            })
            .await?;
        if !accept_einvoice_loss {
            // Again, now that nothing can make one: one made in between keeps the release
            // that matches the upgraded schema.
            if let Some(refusal) = self.einvoice_guard(header, copy, &since).await? {
                return Ok(Back::Refused(
                    self.keep_new_release(refusal, header, reached).await,
                ));
            }
        }
        let aside = self.upgraded_aside(&header.id);
        steps
            .run("rollback.swap", async {
                SwapIn::from_config(&self.config, copy, &aside, Arc::clone(runtime))?
                    .run()
                    .await
            })
            .await?;
        self.record_aside(&aside);
        self.old_release_back(header, steps, reached).await
    }

    /// After a refusal: the release that matches the upgraded schema stays when its gate
    /// passes (the maintenance page then comes off); else Odoo is stopped behind the page.
    /// The refusal comes back saying which.
    async fn keep_new_release(&self, refusal: Error, header: &Header, reached: &Reached) -> Error {
        let runtime = &self.planner.runtime;
        // `switched` says the switch began, not that it ended: what `current` names decides.
        let current = runtime.current_release().await.ok().flatten();
        if !reached.switched || current.as_deref() != Some(header.to.as_str()) {
            // Stopped for an upgrade that never switched: the new code is not current, and
            // the old one must not start on what the upgrade may have changed.
            let _ = runtime.stop(Service::Odoo).await;
            return noted(
                &refusal,
                "Odoo is stopped behind the maintenance page: the upgrade did not finish",
            );
        }
        let kept = async {
            if runtime.status(Service::Odoo).await? != ServiceState::Running {
                runtime.start(Service::Odoo).await?;
            }
            self.gate
                .pass(Stage::Internal, &reached.baseline, None)
                .await?;
            self.maintenance.off()?;
            self.gate.pass(Stage::Public, &reached.baseline, None).await
        };
        match kept.await {
            Ok(()) => noted(&refusal, "the new release passes its gate and stays"),
            Err(e) => {
                let _ = self.maintenance.on("vigia rollback (refused)");
                let _ = runtime.stop(Service::Odoo).await;
                noted(
                    &refusal,
                    &format!(
                        "the new release fails its gate too ({e}), so Odoo is stopped behind the \
                     maintenance page"
                    ),
                )
            }
        }
    }

    /// The upgraded database kept aside, recorded for `vigia restore --cleanup`.
    fn record_aside(&self, aside: &str) {
        let records = CopyRecords::new(
            &self.state_dir.join("restores"),
            self.config.environment.as_deref(),
            &self.planner.target,
        );
        if let Err(e) = records.write(CopyKind::Aside, aside, None, None) {
            tracing::warn!("{aside} is kept aside but not recorded for restore --cleanup: {e}");
        }
    }

    /// The old schema is back: now the old release may run.
    async fn old_release_back(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &Reached,
    ) -> Result<Back> {
        let runtime = &self.planner.runtime;
        // A warning only: the old schema is back, and the way back must go on.
        let missing = steps
            .run("rollback.files", async {
                Ok(self
                    .missing_files()
                    .await
                    .unwrap_or_else(|e| Some(format!("the filestore could not be checked: {e}"))))
            })
            .await?;
        steps
            .run("rollback.switch", runtime.switch(&header.from, &header.id))
            .await?;
        steps
            .run("rollback.start", async {
                runtime.start(Service::Odoo).await.map(drop)
            })
            .await?;
        self.gate_back(steps, reached).await?;
        Ok(Back::Done {
            swapped_back: true,
            missing,
        })
    }

    /// The files the swapped-in copy references that are not in the filestore (the upgrade
    /// may have let Odoo's garbage collector remove them), as a warning; None: all there, or
    /// no `[odoo] data-dir` to look in.
    async fn missing_files(&self) -> Result<Option<String>> {
        let Some(dir) = self.config.odoo.filestore_dir() else {
            return Ok(None);
        };
        let client = self.planner.target.connect(&self.planner.database).await?;
        let refs = vigia_odoo::schema::filestore_refs(&client)
            .await?
            .unwrap_or_default();
        // Opened as a backup reads them: never through a link; a name not of Odoo's form, or
        // a link, counts as missing.
        let folder = dir.clone();
        let missing: Vec<String> = vigia_core::task::blocking("filestore", move || {
            Ok(refs
                .into_iter()
                .filter(|name| {
                    !(vigia_odoo::filestore::is_odoo_name(name)
                        && matches!(vigia_odoo::filestore::open(&folder, name), Ok(Some(_))))
                })
                .collect())
        })
        .await?;
        if missing.is_empty() {
            return Ok(None);
        }
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        Ok(Some(format!(
            "the database swapped back references {} file(s) missing from {} (restore them \
             from the last backup): {}{}",
            missing.len(),
            dir.display(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        )))
    }

    /// The refusal when e-invoices were made since the copy, naming them; None: none were.
    async fn einvoice_guard(
        &self,
        header: &Header,
        copy: &str,
        since: &str,
    ) -> Result<Option<Error>> {
        let client = self.planner.target.connect(&header.database).await?;
        Ok(vigia_odoo::einvoice::created_after(&client, since)
            .await?
            .map(|documents| {
                Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "e-invoices were made since the pre-deploy copy {copy}, so it was not \
                     swapped back (the release that matches the upgraded database stays): \
                     {documents}. Fix forward, or `vigia rollback --accept-einvoice-loss` once \
                     Hacienda's copies are safe"
                    ),
                )
            }))
    }

    /// `vigia rollback`: the deploy that started last, undone from its journal alone,
    /// whether it was killed midway, succeeded, had its rollback refused or failed; one that
    /// was refused or rolled back has nothing to undo.
    pub async fn rollback_last(&self, accept_einvoice_loss: bool) -> Result<DeployReport> {
        let _stack = self.stack_lock("vigia rollback".to_owned()).await?;
        // A Ctrl-C waits for the rollback to end.
        let _signals = vigia_core::signals::DeferredSignals::defer(&self.cancel)?;
        let (path, recorded) = self.newest_journal()?;
        let header = recorded.header.clone();
        self.trust(&header)?;
        // A one-off a killed vigia left (an upgrade) must not go on writing, whatever follows.
        self.planner.runtime.end_one_offs().await?;
        let mut reached = match recorded.outcome.as_deref() {
            // Killed, refused by the guard, or a rollback that failed: again from the journal.
            None | Some(REFUSED | "failed") => reached_from(&recorded),
            Some("deployed") => Reached {
                switched: true,
                upgrade_started: header.copy_database.is_some(),
                copied_at: recorded.notes.get("copied_at").cloned(),
                baseline: baseline_of(&recorded),
                ..Reached::default()
            },
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "the last deploy, {}, already ended ({other}): nothing to roll back",
                    header.id
                )));
            }
        };
        self.planner
            .source
            .check_from(&header.id, &header.from)
            .await?;
        if recorded.outcome.as_deref() == Some("deployed") {
            self.live_unchanged(&header, &recorded).await?;
        }
        let started = Instant::now();
        let mut steps = Steps {
            journal: Journal::append(&path)?,
            done: Vec::new(),
            cancel: None,
            finished: std::collections::BTreeSet::new(),
        };
        // Alerts silenced while the swap back takes Odoo down (none without an upgrade).
        reached.silence = self.silence(&header).unwrap_or_else(|e| {
            tracing::warn!("alerts are not silenced during the rollback: {e}");
            None
        });
        let rollback =
            Box::pin(self.rollback(&header, &mut steps, &reached, accept_einvoice_loss)).await;
        if let Some(silence) = reached.silence.take()
            && let Err(e) = silence.end()
        {
            tracing::warn!("the rollback's alert silence: {e}");
        }
        let mut report = DeployReport {
            id: header.id.clone(),
            from: header.from.clone(),
            to: header.to.clone(),
            upgraded: header.upgrade.clone(),
            outcome: outcome_of(&rollback).to_owned(),
            error: (!rollback.ok).then(|| {
                (
                    rollback.kind.unwrap_or(ErrorKind::CheckFailed),
                    rollback.detail.clone().unwrap_or_default(),
                )
            }),
            rollback: Some(rollback),
            steps: Vec::new(),
            warnings: Vec::new(),
        };
        self.finish(&header, &mut steps, &mut report, started)?;
        let alerted = self.announce(&report).await;
        report.warnings.extend(alerted);
        Ok(report)
    }

    /// A journal is state-dir's, which anyone who can write there could change: it must be
    /// this config's database, and a copy must be the one this deploy's id names.
    pub(crate) fn trust(&self, header: &Header) -> Result<()> {
        let bad = |what: String| {
            Err(Error::new(
                ErrorKind::Integrity,
                format!("deploy {}'s journal {what}: nothing rolled back", header.id),
            ))
        };
        if header.database != self.planner.database {
            return bad(format!(
                "names database {}, not this config's {}",
                header.database, self.planner.database
            ));
        }
        if let Some(copy) = &header.copy_database
            && *copy != format!("vigia_predeploy_{}", header.id)
        {
            return bad(format!("names a copy that is not this deploy's ({copy})"));
        }
        Ok(())
    }

    /// A successful deploy's database must still be the one it left (not since replaced by
    /// a restore): its oid was noted at the end.
    async fn live_unchanged(&self, header: &Header, recorded: &Recorded) -> Result<()> {
        let Some(noted) = recorded.notes.get("live_oid") else {
            return Ok(());
        };
        let now = PgAdmin::connect(&self.planner.target)
            .await?
            .oid_of(&header.database)
            .await?
            .map(|oid| oid.to_string());
        if now.as_deref() != Some(noted.as_str()) {
            return Err(Error::invalid_input(format!(
                "database {} is not the one deploy {} left (restored since?): nothing rolled \
                 back",
                header.database, header.id
            )));
        }
        Ok(())
    }

    /// The journal of the deploy that started last (`deploys/last` names it).
    pub(crate) fn newest_journal(&self) -> Result<(std::path::PathBuf, Recorded)> {
        let last = self.deploys_dir.join(LAST);
        let id = match std::fs::read_to_string(&last) {
            Ok(id) => id.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid_input("no deploy to roll back"));
            }
            Err(e) => return Err(Error::io("read", &last, e)),
        };
        // The id names a folder: it must be one.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{} does not hold a deploy id", last.display()),
            ));
        }
        let path = Journal::path(&self.deploys_dir, &id);
        let recorded = journal::read(&path)?;
        if recorded.header.id != id {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{} is not deploy {id}'s journal", path.display()),
            ));
        }
        Ok((path, recorded))
    }
}

/// What a killed deploy (or a refused rollback) had reached, from its journal.
pub(crate) fn reached_from(recorded: &Recorded) -> Reached {
    Reached {
        baseline: baseline_of(recorded),
        stopped: recorded.started("stop"),
        maintenance: recorded.started("stop") && !recorded.done("public_gate"),
        copied_at: recorded.notes.get("copied_at").cloned(),
        upgrade_started: recorded.started("upgrade"),
        switched: recorded.started("switch"),
        // A rollback killed after its swap: the copy is in place already.
        swapped: recorded.done("rollback.swap"),
        silence: None,
    }
}

/// The checks that failed before the deploy, as its journal noted them.
fn baseline_of(recorded: &Recorded) -> std::collections::BTreeSet<String> {
    recorded
        .notes
        .get("baseline")
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `error` with what was done after it.
fn noted(error: &Error, note: &str) -> Error {
    Error::new(error.kind(), format!("{}; {note}", error.message()))
}
