//! The deploy itself, under the stack lock: a release that is not there fetched and the new
//! one built (prepare.rs), the pre-hook, then the journaled steps (forward.rs): pre-flight,
//! a verified backup when `[backup]` is set, and when modules changed: the maintenance page
//! on, Odoo stopped, the database copied, the upgrade run in the new release and checked;
//! then the switch, Odoo (re)started, the gate (internal, maintenance off, public) and the
//! observation. Any failure, or a cancellation (Ctrl-C waits for the step to end; a running
//! upgrade is killed), rolls back (rollback.rs). Then the audit line, the post-hook, the
//! outcome to the alert channels and old releases pruned (after.rs). Each step has the
//! fail points `deploy.<step>` (before its work) and `deploy.<step>.after` (after it, before
//! its end is recorded) for the crash tests.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigia_backup::format::BackupId;
use vigia_core::config::DeployConfig;
use vigia_core::ports::database::Database as _;
use vigia_core::{CancelToken, Config, Error, Result};
use vigia_health::alerts::Alerting;
use vigia_pg::PgAdmin;
use vigia_runtime::releases::ReleaseRef;

use crate::source::Source;
use vigia_runtime::stack_lock::StackLock;

use crate::audit::{self, AuditLine};
use crate::gate::Gate;
use crate::hooks::{self, HookEnv};
use crate::journal::{self, Header, Journal};
use crate::maintenance::Maintenance;
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
    /// `[deploy]` as configured: observe, hooks, fetch and build, releases kept.
    pub settings: DeployConfig,
    pub(crate) maintenance: Maintenance,
    /// The environment variables the config's secrets come from: no command sees them.
    pub(crate) hide: Vec<String>,
    /// `[alerting]`'s channels, told how each deploy ended; None without `[alerting]`; why
    /// they cannot be used, when set wrong.
    pub alerting: std::result::Result<Option<Alerting>, String>,
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
    pub baseline: BTreeSet<String>,
    pub stopped: bool,
    /// The maintenance page was put up (with the stop for the upgrade).
    pub maintenance: bool,
    /// The database's clock when the copy was made (UTC, as PostgreSQL reads it).
    pub copied_at: Option<String>,
    pub upgrade_started: bool,
    pub switched: bool,
    /// A rollback's swap already put the copy back (a killed rollback run again).
    pub swapped: bool,
    /// The alert silence held from the stop for the upgrade to the deploy's end.
    pub silence: Option<vigia_runtime::silence::RunSilence>,
}

impl Reached {
    /// Whether the running stack was changed at all.
    pub fn touched(&self) -> bool {
        self.stopped || self.maintenance || self.upgrade_started || self.switched
    }
}

/// The journal and the step reports, kept together.
pub(crate) struct Steps {
    pub journal: Journal,
    pub done: Vec<StepReport>,
    /// Checked before each step of the deploy; a rollback runs to its end.
    pub cancel: Option<CancelToken>,
    /// Steps a resumed deploy finished before it was killed: not run again.
    pub finished: BTreeSet<String>,
}

impl Steps {
    /// As `run`, but a step the journal shows finished (a resume) is skipped: None.
    pub async fn once<T>(
        &mut self,
        name: &str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        if self.finished.contains(name) {
            return Ok(None);
        }
        self.run(name, work).await.map(Some)
    }

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
        // The crash tests' kill once the work is done but not yet recorded as done.
        vigia_core::failpoint::hit(&format!("deploy.{name}.after"))?;
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
        Ok(Self {
            planner: Planner::from_config(config)?,
            gate: Gate::new(config, &deploy.gate, deploy.gate_timeout.0)?,
            upgrade_timeout: deploy.upgrade_timeout.0,
            deploys_dir: config.state_dir.join("deploys"),
            state_dir: config.state_dir.clone(),
            performer: crate::performer(),
            config: config.clone(),
            cancel: CancelToken::new(),
            settings: deploy.clone(),
            hide: config.secret_env_names(),
            maintenance: Maintenance {
                file: deploy.maintenance_file.clone(),
            },
            // A broken [alerting] must not stop a deploy or its rollback: a warning then.
            alerting: match config
                .alerting
                .as_ref()
                .map(|_| Alerting::from_config(config))
            {
                None => Ok(None),
                Some(Ok(alerting)) => Ok(Some(alerting)),
                Some(Err(e)) => Err(e.to_string()),
            },
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
        let to = self.planner.source.parse(release)?;
        // Planned under the lock: a deploy or rollback ending meanwhile changes the plan.
        let _stack = self.stack_lock(format!("vigia deploy {id}")).await?;
        crate::freeze::refuse_if_frozen(&self.state_dir)?;
        self.refuse_if_unfinished()?;
        // Ctrl-C and SIGTERM stop the deploy at the next step (a fetch or build is killed
        // and leaves nothing); once steps run, a stop rolls back.
        let _signals = vigia_core::signals::DeferredSignals::defer(&self.cancel)?;
        let plan = self.ready_plan(&id, &to).await?;
        let mut header = Header {
            id: id.clone(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            database: self.planner.database.clone(),
            upgrade: plan.changes.upgrade.clone(),
            copy_database: plan.copy_database.clone(),
            performer: self.performer.clone(),
            upgrade_command: plan.upgrade_command.clone(),
            hashes: plan.hashes.clone(),
        };
        if plan.nothing_to_do {
            return Ok(DeployReport::of(&header, "nothing_to_do"));
        }
        self.names_fit(&plan)?;
        if let Some(pre) = &self.settings.pre_hook {
            let log = self.deploys_dir.join(&id).join("pre-hook.log");
            let env = self.hook_env(&header);
            let hide = self.hide.clone();
            hooks::pre(pre, &self.settings.root, &env, &log, &self.cancel, hide).await?;
        }
        // A rollback returns to what runs now, pinned (an image under a tag of its own).
        header.from = self.planner.source.pin(&plan.from, &id).await?;
        let steps = Steps {
            journal: Journal::create(&self.deploys_dir, &header)?,
            done: Vec::new(),
            cancel: Some(self.cancel.clone()),
            finished: BTreeSet::new(),
        };
        // Which deploy is the last one, whatever ids two deploys in one second got.
        let last = self.deploys_dir.join(LAST);
        vigia_core::disk::write_durably(&last, id.as_bytes())
            .map_err(|e| Error::io("write", &last, e))?;
        Box::pin(self.execute(&header, steps, Reached::default())).await
    }

    /// The steps forward from what `reached` says, then the rollback if one failed, the
    /// audit line and what follows a deploy.
    pub(crate) async fn execute(
        &self,
        header: &Header,
        mut steps: Steps,
        mut reached: Reached,
    ) -> Result<DeployReport> {
        let started = Instant::now();
        let mut report = DeployReport::of(header, "deployed");
        let forward = Box::pin(self.forward(header, &mut steps, &mut reached)).await;
        report.outcome = match forward {
            Ok(()) => {
                self.note_live_oid(&mut steps).await;
                self.drop_older_copies(header.copy_database.as_deref())
                    .await;
                "deployed".to_owned()
            }
            Err(e) if !reached.touched() => {
                // Nothing of the stack was touched (pre-flight, backup): nothing to undo.
                report.error = Some((e.kind(), e.message().to_owned()));
                "refused".to_owned()
            }
            Err(e) => {
                report.error = Some((e.kind(), e.message().to_owned()));
                steps.cancel = None;
                let rollback = Box::pin(self.rollback(header, &mut steps, &reached, false)).await;
                let outcome = crate::report::outcome_of(&rollback);
                if rollback.ok
                    && let Some(detail) = &rollback.detail
                {
                    report.warnings.push(detail.clone());
                }
                report.rollback = Some(rollback);
                outcome.to_owned()
            }
        };
        if let Some(silence) = reached.silence.take()
            && let Err(e) = silence.end()
        {
            report
                .warnings
                .push(format!("the deploy's alert silence: {e}"));
        }
        self.finish(header, &mut steps, &mut report, started)?;
        let after = self.after(&self.hook_env(header), &report).await;
        report.warnings.extend(after);
        Ok(report)
    }

    /// A deploy killed midway must be resumed or rolled back first: a new one would copy
    /// its half-done database as the "pre-deploy" one.
    fn refuse_if_unfinished(&self) -> Result<()> {
        if !self.deploys_dir.join(LAST).exists() {
            return Ok(());
        }
        let (_, recorded) = self.newest_journal()?;
        if recorded.outcome.is_none() {
            return Err(Error::invalid_input(format!(
                "the last deploy, {}, was killed midway: `vigia deploy --resume` finishes it, \
                 `vigia rollback` undoes it",
                recorded.header.id
            )));
        }
        Ok(())
    }

    /// The plan for `to`, once the release is there (fetched if need be) and built.
    async fn ready_plan(&self, id: &str, to: &ReleaseRef) -> Result<DeployPlan> {
        let folder = self.deploys_dir.join(id);
        self.fetch_if_missing(id, to, &folder).await?;
        let plan = self.planner.plan(id, to.as_str()).await?;
        match &self.settings.build_command {
            Some(build) if !plan.nothing_to_do => {
                let log = folder.join("build.log");
                let Source::Folders(releases) = &self.planner.source else {
                    return Ok(plan);
                };
                let hide = self.hide.clone();
                crate::prepare::build(releases, to, build, &log, &self.cancel, hide).await?;
                // A build may change the addons: planned again.
                self.planner.plan(id, to.as_str()).await
            }
            _ => Ok(plan),
        }
    }

    fn hook_env(&self, header: &Header) -> HookEnv {
        HookEnv {
            id: header.id.clone(),
            environment: self.config.environment.clone().unwrap_or_default(),
            release: header.to.clone(),
            previous: header.from.clone(),
            upgrade: header.upgrade.clone(),
            performer: header.performer.clone(),
        }
    }

    /// A release that is not there is fetched (`[deploy] fetch-command`; under compose,
    /// else pulled).
    async fn fetch_if_missing(
        &self,
        id: &str,
        to: &ReleaseRef,
        folder: &std::path::Path,
    ) -> Result<()> {
        let how = crate::source::Fetch {
            command: self.settings.fetch_command.as_deref(),
            id,
            root: &self.settings.root,
            log: &folder.join("fetch.log"),
            cancel: &self.cancel,
            hide: self.hide.clone(),
        };
        self.planner.source.fetch(to, &how).await
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
}
