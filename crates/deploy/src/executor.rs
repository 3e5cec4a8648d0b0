//! The deploy itself, journaled step by step under the stack lock: pre-flight (the gate's
//! baseline), a backup when `[backup]` is set, and when modules changed: Odoo stopped, the
//! database copied, the upgrade run in the new release and checked; then the switch, Odoo
//! (re)started and the gate. Any failure rolls back: before the upgrade, the switch back and
//! a restart; after it, the pre-deploy copy swapped back in through restore's journaled
//! swap (the upgraded database kept aside), unless e-invoices were made since the copy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigia_backup::BackupJob;
use vigia_backup::format::BackupId;
use vigia_core::ports::database::Database as _;
use vigia_core::ports::runtime::{OneOff, Service};
use vigia_core::{Config, Error, ErrorKind, Result};
use vigia_odoo::modules::{record_hashes, unfinished};
use vigia_pg::PgAdmin;
use vigia_restore::SwapIn;
use vigia_runtime::stack_lock::StackLock;

use crate::audit::{self, AuditLine};
use crate::gate::Gate;
use crate::journal::{Header, Journal};
use crate::plan::DeployPlan;
use crate::planner::Planner;
use crate::report::{DeployReport, RollbackReport, StepReport};

/// PostgreSQL truncates longer names without a word.
const MAX_NAME: usize = 63;

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
struct Reached {
    baseline: std::collections::BTreeSet<String>,
    stopped: bool,
    /// The database's clock when the copy was made (UTC, as PostgreSQL reads it).
    copied_at: Option<String>,
    upgrade_started: bool,
    switched: bool,
}

/// The journal and the step reports, kept together.
struct Steps {
    journal: Journal,
    done: Vec<StepReport>,
}

impl Steps {
    async fn run<T>(&mut self, name: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.journal.start(name)?;
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
        })
    }

    /// A fresh deploy id, in the backup id form.
    pub fn new_id() -> String {
        BackupId::new(jiff::Timestamp::now()).as_str().to_owned()
    }

    /// Deploys `release`. A refusal before anything is touched is an error; once the deploy
    /// started, the report says how it ended (its failure is the command's).
    pub async fn run(&self, release: &str) -> Result<DeployReport> {
        let id = Self::new_id();
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
        let owner = format!("vigia deploy {id}");
        let dir = self.state_dir.clone();
        let _stack =
            vigia_core::task::blocking("stack lock", move || StackLock::acquire(&dir, &owner))
                .await?;
        let journal = Journal::create(
            &self.deploys_dir,
            &Header {
                id: id.clone(),
                from: plan.from.clone(),
                to: plan.to.clone(),
                database: self.planner.database.clone(),
                upgrade: plan.changes.upgrade.clone(),
                copy_database: plan.copy_database.clone(),
                performer: self.performer.clone(),
            },
        )?;
        let started = Instant::now();
        let mut steps = Steps {
            journal,
            done: Vec::new(),
        };
        let mut reached = Reached::default();
        let forward = Box::pin(self.forward(&plan, &mut steps, &mut reached)).await;
        report.outcome = match forward {
            Ok(()) => "deployed".to_owned(),
            Err(e) => {
                report.error = Some((e.kind(), e.message().to_owned()));
                let rollback = self.rollback(&plan, &mut steps, &reached).await;
                let outcome = if rollback.ok { "rolled_back" } else { "failed" };
                report.rollback = Some(rollback);
                outcome.to_owned()
            }
        };
        report.steps = steps
            .done
            .iter()
            .filter(|s| !s.name.starts_with("rollback."))
            .cloned()
            .collect();
        if let Some(rollback) = &mut report.rollback {
            rollback.steps = steps
                .done
                .iter()
                .filter(|s| s.name.starts_with("rollback."))
                .cloned()
                .collect();
        }
        steps.journal.outcome(&report.outcome)?;
        audit::append(
            &self.deploys_dir,
            &AuditLine {
                id,
                performer: self.performer.clone(),
                from: plan.from.clone(),
                to: plan.to.clone(),
                upgraded: plan.changes.upgrade.clone(),
                outcome: report.outcome.clone(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                at: jiff::Timestamp::now(),
            },
        )?;
        Ok(report)
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

    fn upgraded_aside(&self, id: &str) -> String {
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
            reached.copied_at = Some(steps.run("copy", self.copy(copy)).await?);
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
        steps.run("gate", self.gate.pass(&reached.baseline)).await
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
        admin.end_sessions(database).await?;
        admin.create_from_template(copy, database).await?;
        Ok(now)
    }

    /// The upgrade in the new release: done only with exit 0, no CRITICAL line in its
    /// output, and no module left to upgrade, install or remove.
    async fn upgrade(&self, plan: &DeployPlan, command: &str) -> Result<()> {
        let output = self.deploys_dir.join(&plan.id).join("upgrade.log");
        let limits = OneOff {
            timeout: self.upgrade_timeout,
            output: output.clone(),
        };
        let exit = self.planner.runtime.run(command, &plan.to, &limits).await?;
        let text = std::fs::read_to_string(&output).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
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

    async fn rollback(
        &self,
        plan: &DeployPlan,
        steps: &mut Steps,
        reached: &Reached,
    ) -> RollbackReport {
        let undone = if reached.upgrade_started {
            self.rollback_upgrade(plan, steps, reached).await
        } else {
            self.rollback_switch(plan, steps, reached)
                .await
                .map(|()| false)
        };
        match undone {
            Ok(swapped_back) => RollbackReport {
                ok: true,
                swapped_back,
                steps: Vec::new(),
                detail: None,
            },
            Err(e) => RollbackReport {
                ok: false,
                swapped_back: false,
                steps: Vec::new(),
                detail: Some(e.to_string()),
            },
        }
    }

    /// Before any upgrade: the switch back and a restart.
    async fn rollback_switch(
        &self,
        plan: &DeployPlan,
        steps: &mut Steps,
        reached: &Reached,
    ) -> Result<()> {
        let runtime = &self.planner.runtime;
        if reached.switched {
            steps
                .run("rollback.switch", runtime.switch(&plan.from))
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

    /// After the upgrade started: old code never starts on an upgraded schema. Odoo
    /// stopped, then the pre-deploy copy swapped back in with the old release, unless
    /// e-invoices were made since the copy (Hacienda has their claves: losing them is
    /// worse than the failed deploy), in which case Odoo stays stopped.
    async fn rollback_upgrade(
        &self,
        plan: &DeployPlan,
        steps: &mut Steps,
        reached: &Reached,
    ) -> Result<bool> {
        let runtime = &self.planner.runtime;
        steps
            .run("rollback.stop", async {
                runtime.stop(Service::Odoo).await.map(drop)
            })
            .await?;
        let since = reached
            .copied_at
            .clone()
            .ok_or_else(|| Error::internal("an upgrade started without a copy"))?;
        let made = steps
            .run("rollback.einvoice_guard", async {
                let client = self.planner.target.connect(&self.planner.database).await?;
                vigia_odoo::einvoice::created_after(&client, &since).await
            })
            .await?;
        if let Some(documents) = made {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!(
                    "e-invoices were made since the pre-deploy copy, so it was not swapped \
                     back and Odoo is stopped (the old code must not run on the upgraded \
                     database): {documents}"
                ),
            ));
        }
        if reached.switched {
            steps
                .run("rollback.switch", runtime.switch(&plan.from))
                .await?;
        }
        let copy = plan
            .copy_database
            .as_deref()
            .ok_or_else(|| Error::internal("an upgrade without a copy"))?;
        let aside = self.upgraded_aside(&plan.id);
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
}
