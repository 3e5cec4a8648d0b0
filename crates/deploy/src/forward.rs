//! A deploy's steps forward, each journaled (executor.rs's `Steps`): pre-flight, backup,
//! and with an upgrade: stop (maintenance page on), copy, upgrade, hashes; then switch,
//! start, gate (internal), public gate (maintenance page off), observe. The first failure
//! ends them; `Reached` says what a rollback has to undo.

use std::collections::BTreeSet;
use std::time::Duration;

use vigia_backup::{BackupJob, BackupRequest, Selection, VerifyJob, VerifyLevel};
use vigia_core::ports::database::Database as _;
use vigia_core::ports::runtime::{OneOff, Service};
use vigia_core::{Error, ErrorKind, Outcome as _, Result};
use vigia_odoo::modules::{record_hashes, unfinished};
use vigia_pg::PgAdmin;

use crate::commands::judge;
use crate::executor::{DeployJob, Reached, Steps};
use crate::gate::Stage;
use crate::journal::Header;

/// How long a deploy's backup waits for one already running.
const BACKUP_WAIT: Duration = Duration::from_mins(15);
/// The room a copy needs beyond the database's size (PostgreSQL's own files, WAL).
const COPY_MARGIN: u64 = 1 << 30;

impl DeployJob {
    pub(crate) async fn forward(
        &self,
        header: &Header,
        steps: &mut Steps,
        reached: &mut Reached,
    ) -> Result<()> {
        let runtime = &self.planner.runtime;
        if let Some(baseline) = steps.once("preflight", self.preflight(header)).await? {
            let names: Vec<&str> = baseline.iter().map(String::as_str).collect();
            steps.journal.note("baseline", &names.join(","))?;
            reached.baseline = baseline;
        }
        if self.planner.backup {
            steps.once("backup", Box::pin(self.backup())).await?;
        }
        if let (Some(copy), Some(command)) = (&header.copy_database, &header.upgrade_command) {
            reached.silence = self.silence(header)?;
            reached.stopped = true;
            reached.maintenance = self.maintenance.file.is_some();
            steps
                .once("stop", async {
                    self.maintenance
                        .on(&format!("vigia deploy {}", header.id))?;
                    runtime.stop(Service::Odoo).await.map(drop)
                })
                .await?;
            if let Some(copied_at) = steps.once("copy", self.copy(copy)).await? {
                steps.journal.note("copied_at", &copied_at)?;
                reached.copied_at = Some(copied_at);
            }
            reached.upgrade_started = true;
            steps.once("upgrade", self.upgrade(header, command)).await?;
            steps
                .once("hashes", async {
                    let client = self.planner.target.connect(&self.planner.database).await?;
                    record_hashes(&client, &header.hashes).await
                })
                .await?;
        }
        steps
            .once("switch", async {
                reached.switched = true;
                runtime.switch(&header.to, &header.id).await
            })
            .await?;
        reached.switched = true;
        steps
            .once("start", async {
                if reached.stopped {
                    runtime.start(Service::Odoo).await.map(drop)
                } else {
                    runtime.restart(Service::Odoo).await.map(drop)
                }
            })
            .await?;
        reached.stopped = false;
        let cancel = Some(&self.cancel);
        steps
            .once(
                "gate",
                self.gate.pass(Stage::Internal, &reached.baseline, cancel),
            )
            .await?;
        steps
            .once("public_gate", async {
                self.maintenance.off()?;
                self.gate
                    .pass(Stage::Public, &reached.baseline, cancel)
                    .await
            })
            .await?;
        reached.maintenance = false;
        if !self.settings.observe.0.is_zero() {
            steps
                .once(
                    "observe",
                    self.gate
                        .observe(self.settings.observe.0, &reached.baseline, &self.cancel),
                )
                .await?;
        }
        Ok(())
    }

    /// The gate's baseline; with an upgrade, whether the copy can be made: the user may
    /// create databases and use this one as a template, and the server's disk (when this
    /// host can see it) has room for the copy.
    async fn preflight(&self, header: &Header) -> Result<BTreeSet<String>> {
        if header.copy_database.is_some() {
            let admin = PgAdmin::connect(&self.planner.target).await?;
            let (problem, size) = admin.copy_readiness(&self.planner.database).await?;
            if let Some(problem) = problem {
                return Err(Error::invalid_input(format!(
                    "the pre-upgrade copy cannot be made: {problem}"
                )));
            }
            if let Some(dir) = admin.data_directory().await
                && let Ok(free) = vigia_core::disk::free_bytes(&dir)
                && free < size.saturating_add(COPY_MARGIN)
            {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "the pre-upgrade copy of {} needs {} MiB, and {} has {} MiB free: make \
                         room first",
                        self.planner.database,
                        (size + COPY_MARGIN) >> 20,
                        dir.display(),
                        free >> 20
                    ),
                ));
            }
        }
        Ok(self.gate.baseline().await)
    }

    /// A backup, waiting up to 15 minutes for one already running, then verified quick (its
    /// objects are all there, their sizes and hashes as the index says).
    async fn backup(&self) -> Result<()> {
        let mut job = BackupJob::from_config(&self.config, BackupRequest::default()).await?;
        job.lock_wait = job.lock_wait.max(BACKUP_WAIT);
        job.cancel = self.cancel.clone();
        let backup = job.run().await?;
        let mut verify =
            VerifyJob::from_config(&self.config, &vigia_backup::VerifyRequest::default()).await?;
        verify.level = Some(VerifyLevel::Quick);
        verify.selection = Selection::One(backup.id.clone());
        verify.state_dir = None;
        match verify.run().await?.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The live database copied (Odoo is stopped; sessions left are ended), returning the
    /// database's clock just before: e-invoices made after it are not in the copy.
    async fn copy(&self, copy: &str) -> Result<String> {
        let database = &self.planner.database;
        let now: String = {
            let client = self.planner.target.connect(database).await?;
            client
                .query_one("SELECT (now() AT TIME ZONE 'UTC')::text", &[])
                .await
                .map_err(|e| vigia_pg::db_error("cannot read the database's clock", &e))?
                .get(0)
        };
        let admin = PgAdmin::connect(&self.planner.target).await?;
        // An Odoo this runtime did not stop (another host, a manual start) would go on
        // serving old code on a database being upgraded.
        let others = admin.sessions_of(database, "odoo").await?;
        if !others.is_empty() {
            return Err(Error::invalid_input(format!(
                "an Odoo that vigia does not run is connected to {database}: {}; stop it \
                 before deploying (the upgrade must not run while it serves)",
                others.join(", ")
            )));
        }
        admin.end_sessions(database).await?;
        if admin.exists(copy).await? {
            // A resumed deploy killed mid-copy: the upgrade has not begun, so the live
            // database is still what the copy must hold; this id's copy is made again.
            admin.drop(copy).await?;
        }
        admin.copy_database(copy, database).await?;
        Ok(now)
    }

    /// The upgrade in the new release: done only with exit 0, no CRITICAL line in its
    /// output, and no module left to upgrade, install or remove.
    async fn upgrade(&self, header: &Header, command: &str) -> Result<()> {
        let output = self.deploys_dir.join(&header.id).join("upgrade.log");
        let limits = OneOff {
            timeout: self.upgrade_timeout,
            output: output.clone(),
            cancel: self.cancel.clone(),
            hide: self.hide.clone(),
        };
        let exit = self
            .planner
            .runtime
            .run(command, &header.to, &limits)
            .await?;
        judge(
            "the upgrade",
            &exit,
            &output,
            self.upgrade_timeout,
            ErrorKind::Io,
        )?;
        if let Some(line) = critical_line(&output)? {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!("the upgrade logged a CRITICAL line: {line}"),
            ));
        }
        let client = self.planner.target.connect(&self.planner.database).await?;
        let left = unfinished(&client).await?;
        if !left.is_empty() {
            let list: Vec<String> = left.iter().map(|(m, s)| format!("{m} ({s})")).collect();
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!("the upgrade left modules unfinished: {}", list.join(", ")),
            ));
        }
        Ok(())
    }
}

/// The first line of Odoo's log format at level CRITICAL, read line by line (an upgrade's
/// output may be large); lossy, so that one odd byte cannot hide it.
fn critical_line(log: &std::path::Path) -> Result<Option<String>> {
    use std::io::BufRead;
    let file = std::fs::File::open(log).map_err(|e| Error::io("read", log, e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read", log, e))?;
        if read == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line);
        if text.contains(" CRITICAL ") {
            let clipped: String = text
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            return Ok(Some(clipped));
        }
    }
}
