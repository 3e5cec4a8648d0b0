//! `vigia deploy --resume`: the last deploy, killed midway, goes on from its journal. The
//! steps it finished are not run again; the one it was in is, except the upgrade: a killed
//! upgrade leaves a half-upgraded database that a second run cannot be trusted on, so that
//! deploy is rolled back instead (`vigia rollback`). The journal is state-dir's, which is not
//! trusted: what it says the deploy runs (the upgrade command, the hashes it records, the
//! release) must be what this config and the release on disk make of it.

use std::collections::BTreeSet;

use vigia_core::{Error, ErrorKind, Result};

use crate::executor::{DeployJob, Steps};
use crate::journal::{Header, Journal, Recorded};
use crate::report::DeployReport;

impl DeployJob {
    pub async fn resume(&self) -> Result<DeployReport> {
        let _stack = self.stack_lock("vigia deploy --resume".to_owned()).await?;
        let _signals = vigia_core::signals::DeferredSignals::defer(&self.cancel)?;
        let (path, recorded) = self.newest_journal()?;
        let header = recorded.header.clone();
        self.trust(&header)?;
        // A one-off a killed vigia left (an upgrade) must not go on writing, whatever follows.
        self.planner.runtime.end_one_offs().await?;
        resumable(&recorded)?;
        self.same_as_planned(&header).await?;
        self.planner
            .source
            .check_from(&header.id, &header.from)
            .await?;
        let mut finished: BTreeSet<String> = recorded
            .ended
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(step, _)| step.clone())
            .collect();
        if !recorded.notes.contains_key("copied_at") {
            // Killed between the copy's end and its note: made again (the upgrade has not
            // begun, so the live database is still what the copy must hold).
            finished.remove("copy");
        }
        if !recorded.done("start") {
            // Odoo may have been started meanwhile (a reboot): stopped again, behind the page.
            finished.remove("stop");
        }
        let mut reached = crate::rollback::reached_from(&recorded);
        reached.stopped = reached.stopped && !recorded.done("start");
        let steps = Steps {
            journal: Journal::append(&path)?,
            done: Vec::new(),
            cancel: Some(self.cancel.clone()),
            finished,
        };
        tracing::info!(
            "resuming deploy {} at {}",
            header.id,
            recorded
                .interrupted
                .as_deref()
                .unwrap_or("the step after the last one it ended")
        );
        Box::pin(self.execute(&header, steps, reached)).await
    }

    /// The journal's release, upgrade command and hashes are what this config and the
    /// release on disk give now; anything else is refused (it would run a command or record
    /// hashes that nobody planned).
    async fn same_as_planned(&self, header: &Header) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "deploy {}'s journal {what}: not resumed; `vigia rollback` it instead",
                    header.id
                ),
            ))
        };
        let source = &self.planner.source;
        let to = source.parse(&header.to)?;
        if !source.exists(&to).await? {
            return bad(&format!("names release {to}, which is not there"));
        }
        let modules = source.modules(&to).await?;
        if modules.hashes != header.hashes {
            return bad(&format!(
                "holds addon hashes that release {to} does not have (changed since?)"
            ));
        }
        let planned = header.copy_database.as_ref().map(|_| {
            crate::plan::upgrade_line(
                &self.planner.upgrade_command,
                &header.database,
                &header.upgrade,
                &source.place(&to),
            )
        });
        if planned != header.upgrade_command {
            return bad("holds an upgrade command this config does not make");
        }
        Ok(())
    }
}

/// A deploy that can go on: killed (no outcome), not while it failed or rolled back, not in
/// its upgrade.
fn resumable(recorded: &Recorded) -> Result<()> {
    let id = &recorded.header.id;
    if let Some(outcome) = &recorded.outcome {
        return Err(Error::invalid_input(format!(
            "the last deploy, {id}, already ended ({outcome}): nothing to resume"
        )));
    }
    if let Some((step, _)) = recorded.ended.iter().find(|(_, ok)| !ok) {
        return Err(Error::invalid_input(format!(
            "the last deploy, {id}, failed at {step} and was rolling back: finish that with \
             `vigia rollback`"
        )));
    }
    if recorded.interrupted_in_rollback() {
        return Err(Error::invalid_input(format!(
            "the last deploy, {id}, was being rolled back: finish that with `vigia rollback`"
        )));
    }
    if recorded.started("upgrade") && !recorded.done("upgrade") {
        return Err(Error::invalid_input(format!(
            "the last deploy, {id}, was killed during its upgrade: the database may be half \
             upgraded, which a second run cannot be trusted on; `vigia rollback` puts the \
             pre-deploy copy back"
        )));
    }
    Ok(())
}
