//! The deploy itself, journaled step by step under the stack lock: pre-flight (the gate's
//! baseline), a backup when `[backup]` is set, and when modules changed: Odoo stopped, the
//! database copied, the upgrade run in the new release and checked; then the switch, Odoo
//! (re)started and the gate. Any failure, or a cancellation (Ctrl-C waits for the step to
//! end; a running upgrade is killed), rolls back (rollback.rs). Each step has the fail point
//! `deploy.<step>` for the crash tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigia_backup::BackupJob;
use vigia_backup::format::BackupId;
use vigia_core::ports::database::Database as _;
use vigia_core::ports::runtime::{OneOff, Service};
use vigia_core::{CancelToken, Config, Error, ErrorKind, Result};
use vigia_odoo::modules::{record_hashes, unfinished};
use vigia_pg::PgAdmin;
use vigia_runtime::stack_lock::StackLock;

use crate::audit::{self, AuditLine};
use crate::gate::Gate;
use crate::journal::{self, Header, Journal};
use crate::plan::DeployPlan;
use crate::planner::Planner;
use crate::report::{DeployReport, StepReport};

/// PostgreSQL truncates longer names without a word.
const MAX_NAME: usize = 63;
/// `state-dir/deploys/last`: the id of the deploy that started last.
pub(crate) const LAST: &str = "last";

pub struct DeployJob {
    pub planner: Planner,
    pub config: Config,
    pub gate: Gate,
    pub upgrade_timeout: Duration,
    /// `state-dir/deploys`: one folder per deploy, and the audit log.
    pub deploys_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Who deploys: `user@host`.
    pub performer: String,
    /// Stops the deploy at the next step (killing a running upgrade), then rolls back.
    pub cancel: CancelToken,
}

impl std::fmt::Debug for DeployJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployJob")
            .field("planner", &self.planner)
            .field("deploys_dir", &self.deploys_dir)
            .finish_non_exhaustive()
    }
}

/// How far a deploy got: what a rollback has to undo.
#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one step a rollback undoes"
)]
pub(crate) struct Reached {
    pub baseline: std::collections::BTreeSet<String>,
    pub stopped: bool,
    /// The database's clock when the copy was made (UTC, as PostgreSQL reads it).
    pub copied_at: Option<String>,
    pub upgrade_started: bool,
    pub switched: bool,
    /// A rollback's swap already put the copy back (a killed rollback run again).
    pub swapped: bool,
}

/// The journal and the step reports, kept together.
pub(crate) struct Steps {
    pub journal: Journal,
    pub done: Vec<StepReport>,
    /// Checked before each step of the deploy; a rollback runs to its end.
    pub cancel: Option<CancelToken>,
}

impl Steps {
    /// Runs step `name` between its journal lines; its fail point is `deploy.<name>`.
    pub async fn run<T>(&mut self, name: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        if let Some(cancel) = &self.cancel {
            cancel.check()?;
        }
        self.journal.start(name)?;
        tracing::info!("deploy: {name}");
        vigia_core::failpoint::hit(&format!("deploy.{name}"))?;
        let started = Instant::now();
        let result = work.await;
        let detail = result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.journal.end(name, result.is_ok(), &detail)?;
        self.done.push(StepReport {
            name: name.to_owned(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: if result.is_ok() { "ok" } else { "failed" }.to_owned(),
        });
        result
    }
}

impl DeployJob {
    pub fn from_config(config: &Config) -> Result<Self> {
        let deploy = config.deploy.as_ref().ok_or_else(|| {
            Error::config("a deploy needs [deploy] root (where releases/<ref>/ and current are)")
                .with_key("deploy.root")
        })?;
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| format!("uid {}", vigia_core::process::effective_uid()));
        Ok(Self {
            planner: Planner::from_config(config)?,
            gate: Gate::new(config, &deploy.gate, deploy.gate_timeout.0)?,
            upgrade_timeout: deploy.upgrade_timeout.0,
            deploys_dir: config.state_dir.join("deploys"),
            state_dir: config.state_dir.clone(),
            performer: format!("{user}@{}", vigia_core::process::hostname()),
            config: config.clone(),
            cancel: CancelToken::new(),
        })
    }

    pub(crate) async fn stack_lock(&self, owner: String) -> Result<StackLock> {
        let dir = self.state_dir.clone();
        vigia_core::task::blocking("stack lock", move || StackLock::acquire(&dir, &owner)).await
    }

    /// A fresh deploy id, in the backup id form.
    pub fn new_id() -> String {
        BackupId::new(jiff::Timestamp::now()).as_str().to_owned()
    }

    /// Deploys `release`. A refusal before anything is touched is an error; once the deploy
    /// started, the report says how it ended (its failure is the command's).
    pub async fn run(&self, release: &str) -> Result<DeployReport> {
        let id = Self::new_id();
        // Planned under the lock: a deploy or rollback ending meanwhile changes the plan.
        let _stack = self.stack_lock(format!("vigia deploy {id}")).await?;
        let plan = self.planner.plan(&id, release).await?;
        let mut report = DeployReport {
            id: id.clone(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            upgraded: plan.changes.upgrade.clone(),
            outcome: "nothing_to_do".to_owned(),
            rollback: None,
            steps: Vec::new(),
            error: None,
        };
        if plan.nothing_to_do {
            return Ok(report);
        }
        self.names_fit(&plan)?;
        // Ctrl-C and SIGTERM stop the deploy at the next step, which then rolls back.
        let _signals = vigia_core::signals::DeferredSignals::defer(&self.cancel)?;
        let header = Header {
            id: id.clone(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            database: self.planner.database.clone(),
            upgrade: plan.changes.upgrade.clone(),
            copy_database: plan.copy_database.clone(),
            performer: self.performer.clone(),
        };
        let started = Instant::now();
        let mut steps = Steps {
            journal: Journal::create(&self.deploys_dir, &header)?,
            done: Vec::new(),
            cancel: Some(self.cancel.clone()),
        };
        // Which deploy is the last one, whatever ids two deploys in one second got.
        let last = self.deploys_dir.join(LAST);
        vigia_core::disk::write_durably(&last, id.as_bytes())
            .map_err(|e| Error::io("write", &last, e))?;
        let mut reached = Reached::default();
        let forward = Box::pin(self.forward(&plan, &mut steps, &mut reached)).await;
        report.outcome = match forward {
            Ok(()) => {
                self.note_live_oid(&mut steps).await;
                self.drop_older_copies(plan.copy_database.as_deref()).await;
                "deployed".to_owned()
            }
            Err(e) => {
                report.error = Some((e.kind(), e.message().to_owned()));
                steps.cancel = None;
                let rollback = Box::pin(self.rollback(&header, &mut steps, &reached, false)).await;
                let outcome = crate::report::outcome_of(&rollback);
                report.rollback = Some(rollback);
                outcome.to_owned()
            }
        };
        self.finish(&header, &mut steps, &mut report, started)?;
        Ok(report)
    }

    /// The report's steps, the journal's outcome and the audit line.
    pub(crate) fn finish(
        &self,
        header: &Header,
        steps: &mut Steps,
        report: &mut DeployReport,
        started: Instant,
    ) -> Result<()> {
        let (rollback, forward): (Vec<StepReport>, Vec<StepReport>) = steps
            .done
            .drain(..)
            .partition(|s| s.name.starts_with("rollback."));
        report.steps = forward;
        if let Some(r) = &mut report.rollback {
            r.steps = rollback;
        }
        steps.journal.outcome(&report.outcome)?;
        audit::append(
            &self.deploys_dir,
            &AuditLine {
                id: header.id.clone(),
                performer: self.performer.clone(),
                from: header.from.clone(),
                to: header.to.clone(),
                upgraded: header.upgrade.clone(),
                outcome: report.outcome.clone(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                at: jiff::Timestamp::now(),
            },
        )
    }

    /// The live database's oid, noted so that `vigia rollback` refuses once a restore has
    /// replaced it.
    async fn note_live_oid(&self, steps: &mut Steps) {
        let noted = async {
            let oid = PgAdmin::connect(&self.planner.target)
                .await?
                .oid_of(&self.planner.database)
                .await?
                .ok_or_else(|| Error::internal("the live database is gone"))?;
            steps.journal.note("live_oid", &oid.to_string())
        };
        if let Err(e) = noted.await {
            tracing::warn!("the live database's oid was not noted: {e}");
        }
    }

    /// After a successful deploy, the copies earlier deploys of this state-dir made (their
    /// journals name them; never another environment's) are no longer a way back: dropped
    /// (a failure to drop is a warning).
    async fn drop_older_copies(&self, keep: Option<&str>) {
        let dropped = async {
            let mut copies = Vec::new();
            for entry in std::fs::read_dir(&self.deploys_dir)
                .map_err(|e| Error::io("read", &self.deploys_dir, e))?
                .flatten()
            {
                let path = entry.path().join("journal.jsonl");
                if let Ok(recorded) = journal::read(&path)
                    && let Some(copy) = recorded.header.copy_database
                    && Some(copy.as_str()) != keep
                    && copy == format!("vigia_predeploy_{}", recorded.header.id)
                {
                    copies.push(copy);
                }
            }
            let admin = PgAdmin::connect(&self.planner.target).await?;
            for copy in copies {
                admin.drop(&copy).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = dropped.await {
            tracing::warn!("the copies of earlier deploys were not all dropped: {e}");
        }
    }

    /// The names this deploy makes fit PostgreSQL's limit.
    fn names_fit(&self, plan: &DeployPlan) -> Result<()> {
        let aside = self.upgraded_aside(&plan.id);
        for name in plan.copy_database.iter().chain([&aside]) {
            if name.len() > MAX_NAME {
                return Err(Error::invalid_input(format!(
                    "the database name {name} would be longer than PostgreSQL's {MAX_NAME} bytes"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn upgraded_aside(&self, id: &str) -> String {
        format!("{}_upgraded_{id}", self.planner.database)
    }

    async fn forward(
        &self,
        plan: &DeployPlan,
        steps: &mut Steps,
        reached: &mut Reached,
    ) -> Result<()> {
        let runtime = &self.planner.runtime;
        reached.baseline = steps
            .run("preflight", async { Ok(self.gate.baseline().await) })
            .await?;
        if self.planner.backup {
            steps
                .run(
                    "backup",
                    Box::pin(async {
                        let job = BackupJob::from_config(
                            &self.config,
                            vigia_backup::BackupRequest::default(),
                        )
                        .await?;
                        job.run().await.map(drop)
                    }),
                )
                .await?;
        }
        if let (Some(copy), Some(command)) = (&plan.copy_database, &plan.upgrade_command) {
            reached.stopped = true;
            steps
                .run("stop", async {
                    runtime.stop(Service::Odoo).await.map(drop)
                })
                .await?;
            let copied_at = steps.run("copy", self.copy(copy)).await?;
            steps.journal.note("copied_at", &copied_at)?;
            reached.copied_at = Some(copied_at);
            reached.upgrade_started = true;
            steps.run("upgrade", self.upgrade(plan, command)).await?;
            steps
                .run("hashes", async {
                    let client = self.planner.target.connect(&self.planner.database).await?;
                    record_hashes(&client, &plan.hashes).await
                })
                .await?;
        }
        steps
            .run("switch", async {
                reached.switched = true;
                runtime.switch(&plan.to).await
            })
            .await?;
        steps
            .run("start", async {
                if !reached.stopped {
                    runtime.stop(Service::Odoo).await?;
                }
                runtime.start(Service::Odoo).await.map(drop)
            })
            .await?;
        reached.stopped = false;
        steps
            .run(
                "gate",
                self.gate.pass(&reached.baseline, Some(&self.cancel)),
            )
            .await
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
        admin.copy_database(copy, database).await?;
        Ok(now)
    }

    /// The upgrade in the new release: done only with exit 0, no CRITICAL line in its
    /// output, and no module left to upgrade, install or remove.
    async fn upgrade(&self, plan: &DeployPlan, command: &str) -> Result<()> {
        let output = self.deploys_dir.join(&plan.id).join("upgrade.log");
        let limits = OneOff {
            timeout: self.upgrade_timeout,
            output: output.clone(),
            cancel: self.cancel.clone(),
        };
        let exit = self.planner.runtime.run(command, &plan.to, &limits).await?;
        // Lossy: one odd byte must not hide a CRITICAL line.
        let text = std::fs::read(&output)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
        if exit.cancelled {
            return Err(Error::new(
                ErrorKind::Cancelled,
                "cancelled during the upgrade, which was killed",
            ));
        }
        if exit.timed_out {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "the upgrade ran past {} s and was killed; see {}",
                    self.upgrade_timeout.as_secs(),
                    output.display()
                ),
            ));
        }
        if !exit.success() {
            let how = exit
                .code
                .map_or_else(|| "was killed".to_owned(), |c| format!("exited {c}"));
            return Err(Error::new(
                ErrorKind::Io,
                format!("the upgrade {how}; see {}: {tail}", output.display()),
            ));
        }
        if let Some(line) = text.lines().find(|l| l.contains(" CRITICAL ")) {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!("the upgrade logged a CRITICAL line: {}", line.trim()),
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
