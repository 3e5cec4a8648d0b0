//! Undoing a deploy, from what it reached: before the upgrade, the switch back and a
//! restart; after it (the schema may have moved, even partly), Odoo stopped and the
//! pre-deploy copy swapped back in with the old release through restore's journaled swap
//! (the upgraded database kept aside), unless e-invoices were made since the copy: Hacienda
//! has their claves, so losing them is worse than the failed deploy, and Odoo stays stopped
//! (old code never runs on an upgraded schema). `vigia rollback` does the same from the
//! journal alone, for a deploy that was killed or the last one that succeeded.

use std::sync::Arc;
use std::time::Instant;

use vigia_core::ports::runtime::Service;
use vigia_core::{Error, ErrorKind, Result};
use vigia_restore::SwapIn;

use crate::executor::{DeployJob, LAST, Reached, Steps};
use crate::journal::{self, Header, Journal, Recorded};
use crate::report::{DeployReport, RollbackReport};

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
                .map(|()| false)
        };
        match undone {
            Ok(swapped_back) => RollbackReport {
                ok: true,
                swapped_back,
                steps: Vec::new(),
                detail: None,
                kind: None,
            },
            Err(e) => RollbackReport {
                ok: false,
                swapped_back: false,
                steps: Vec::new(),
                detail: Some(e.to_string()),
                kind: Some(e.kind()),
            },
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
                .run("rollback.switch", runtime.switch(&header.from))
                .await?;
        }
        if reached.switched || reached.stopped {
            steps
                .run("rollback.start", async {
                    runtime.stop(Service::Odoo).await?;
                    runtime.start(Service::Odoo).await.map(drop)
                })
                .await?;
        }
        if reached.switched {
            steps
                .run("rollback.gate", self.gate.pass(&reached.baseline))
                .await?;
        }
        Ok(())
    }

    async fn rollback_upgrade(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &Reached,
        accept_einvoice_loss: bool,
    ) -> Result<bool> {
        let runtime = &self.planner.runtime;
        steps
            .run("rollback.stop", async {
                runtime.stop(Service::Odoo).await.map(drop)
            })
            .await?;
        let copy = header
            .copy_database
            .as_deref()
            .ok_or_else(|| Error::internal("an upgrade without a copy"))?;
        let Some(since) = reached.copied_at.clone() else {
            // Killed before the copy was done: the live database was not touched yet.
            return self
                .rollback_switch(header, steps, reached)
                .await
                .map(|()| false);
        };
        let made = steps
            .run("rollback.einvoice_guard", async {
                let client = self.planner.target.connect(&header.database).await?;
                vigia_odoo::einvoice::created_after(&client, &since).await
            })
            .await?;
        if let Some(documents) = made.filter(|_| !accept_einvoice_loss) {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!(
                    "e-invoices were made since the pre-deploy copy {copy}, so it was not \
                     swapped back and Odoo is stopped (the old code must not run on the \
                     upgraded database): {documents}. Fix forward, or roll back with \
                     --accept-einvoice-loss once Hacienda's copies are safe"
                ),
            ));
        }
        if reached.switched {
            steps
                .run("rollback.switch", runtime.switch(&header.from))
                .await?;
        }
        let aside = self.upgraded_aside(&header.id);
        steps
            .run("rollback.swap", async {
                SwapIn::from_config(&self.config, copy, &aside, Arc::clone(runtime))?
                    .run()
                    .await
            })
            .await?;
        steps
            .run("rollback.gate", self.gate.pass(&reached.baseline))
            .await?;
        Ok(true)
    }

    /// `vigia rollback`: the newest deploy undone from its journal alone, whether it was
    /// killed midway or succeeded (the last one only); one that already ended otherwise
    /// has nothing to undo.
    pub async fn rollback_last(&self, accept_einvoice_loss: bool) -> Result<DeployReport> {
        let (path, recorded) = self.newest_journal()?;
        let header = recorded.header.clone();
        let reached = match recorded.outcome.as_deref() {
            None => reached_from(&recorded),
            Some("deployed") => Reached {
                switched: true,
                upgrade_started: header.copy_database.is_some(),
                copied_at: recorded.notes.get("copied_at").cloned(),
                ..Reached::default()
            },
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "the last deploy, {}, already ended ({other}): nothing to roll back",
                    header.id
                )));
            }
        };
        let _stack = self
            .stack_lock(format!("vigia rollback of deploy {}", header.id))
            .await?;
        let started = Instant::now();
        let mut steps = Steps {
            journal: Journal::append(&path)?,
            done: Vec::new(),
            cancel: None,
        };
        let rollback =
            Box::pin(self.rollback(&header, &mut steps, &reached, accept_einvoice_loss)).await;
        let mut report = DeployReport {
            id: header.id.clone(),
            from: header.from.clone(),
            to: header.to.clone(),
            upgraded: header.upgrade.clone(),
            outcome: if rollback.ok { "rolled_back" } else { "failed" }.to_owned(),
            error: (!rollback.ok).then(|| {
                (
                    rollback.kind.unwrap_or(ErrorKind::CheckFailed),
                    rollback.detail.clone().unwrap_or_default(),
                )
            }),
            rollback: Some(rollback),
            steps: Vec::new(),
        };
        self.finish(&header, &mut steps, &mut report, started)?;
        Ok(report)
    }

    /// The journal of the deploy that started last (`deploys/last` names it).
    fn newest_journal(&self) -> Result<(std::path::PathBuf, Recorded)> {
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
        Ok((path, recorded))
    }
}

/// What a killed deploy had reached, from its journal.
fn reached_from(recorded: &Recorded) -> Reached {
    Reached {
        baseline: std::collections::BTreeSet::new(),
        stopped: recorded.started("stop"),
        copied_at: recorded.notes.get("copied_at").cloned(),
        upgrade_started: recorded.started("upgrade") || recorded.started("copy"),
        switched: recorded.started("switch"),
    }
}
