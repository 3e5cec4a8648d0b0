//! `vigia init --systemd`: the service and timer units that replace the old scripts' cron
//! lines: a nightly backup followed by prune, a weekly verify, a health check every five
//! minutes. Each service is a oneshot run of `vigia` with absolute paths, sandboxed read-only
//! except for the folders that command writes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, RuntimeKind, StoreKind};
use crate::error::{Error, Result};
use crate::process::shell_quote;

/// The system unit folders systemd reads (systemd.unit(5)).
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The binary and config the units run, and the `--env` they pass.
#[derive(Debug, Clone)]
pub struct UnitTarget {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub environment: Option<String>,
}

impl UnitTarget {
    /// What the Debian package's units run.
    pub fn packaged() -> Self {
        Self {
            binary: PathBuf::from("/usr/bin/vigia"),
            config: PathBuf::from("/etc/vigia/vigia.toml"),
            environment: None,
        }
    }
}

/// One unit file's name and text.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

/// When a timer starts its service (systemd.time(7)), for the report and the README.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub timer: String,
    pub service: String,
    pub on_calendar: String,
    pub randomized_delay: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemdReport {
    pub dir: PathBuf,
    pub units: Vec<PathBuf>,
    pub schedule: Vec<Schedule>,
    /// What to run to put the units to work (they are written, not enabled).
    pub commands: Vec<String>,
    /// What the operator should know before enabling them.
    pub notes: Vec<String>,
}

struct Job {
    /// `vigia-<name>.service`
    name: &'static str,
    description: String,
    args: Vec<String>,
    /// Folders the command writes: made writable under `ProtectSystem=strict`.
    writes: Vec<PathBuf>,
    /// OnCalendar= and RandomizedDelaySec= (with it, the timer is persistent).
    timer: Option<(String, Option<&'static str>)>,
    extra_unit: &'static str,
    extra_service: &'static str,
}

/// The units for `config` run as `target` says: `vigia-backup` (+ timer, then `vigia-prune`
/// on success), `vigia-verify` (+ timer), `vigia-health` (+ timer).
pub fn units(config: &Config, target: &UnitTarget) -> Result<Vec<UnitFile>> {
    let mut files = Vec::new();
    for job in jobs(config) {
        let service = format!("vigia-{}.service", job.name);
        files.push(UnitFile {
            text: service_text(&job, target)?,
            name: service.clone(),
        });
        if let Some((on_calendar, delay)) = &job.timer {
            files.push(UnitFile {
                name: format!("vigia-{}.timer", job.name),
                text: timer_text(&job.description, on_calendar, *delay),
            });
        }
    }
    Ok(files)
}

/// What each timer does, as [`units`] writes it.
pub fn schedule(config: &Config) -> Vec<Schedule> {
    jobs(config)
        .into_iter()
        .filter_map(|job| {
            job.timer.map(|(on_calendar, delay)| Schedule {
                timer: format!("vigia-{}.timer", job.name),
                service: format!("vigia-{}.service", job.name),
                on_calendar,
                randomized_delay: delay.map(str::to_owned),
            })
        })
        .collect()
}

/// Writes `units` into `dir` (made if missing), refusing before writing anything when one of
/// them exists: a unit the operator edited is never replaced.
pub fn write_units(config: &Config, dir: &Path, target: &UnitTarget) -> Result<SystemdReport> {
    let files = units(config, target)?;
    let dir = std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let planned: Vec<(PathBuf, &str)> = files
        .iter()
        .map(|f| (dir.join(&f.name), f.text.as_str()))
        .collect();
    crate::init::write_new_files(&planned, 0o644, " (a unit may hold your edits)")?;
    let units: Vec<PathBuf> = planned.into_iter().map(|(path, _)| path).collect();
    let schedule = schedule(config);
    let timers: Vec<&str> = schedule.iter().map(|s| s.timer.as_str()).collect();
    Ok(SystemdReport {
        commands: commands(&dir, &units, &timers),
        notes: notes(config, target, &dir),
        schedule,
        dir,
        units,
    })
}

/// Units written where systemd looks (/etc/systemd/system overrides the package's) need only
/// a reload; anywhere else they are linked in.
fn commands(dir: &Path, units: &[PathBuf], timers: &[&str]) -> Vec<String> {
    let first = if UNIT_DIRS.iter().any(|d| Path::new(d) == dir) {
        "systemctl daemon-reload".to_owned()
    } else {
        let paths: Vec<String> = units
            .iter()
            .map(|p| shell_quote(&p.display().to_string()))
            .collect();
        format!("systemctl link {}", paths.join(" "))
    };
    vec![
        first,
        format!("systemctl enable --now {}", timers.join(" ")),
    ]
}

fn jobs(config: &Config) -> Vec<Job> {
    // The config's zone, not the host's: "01:30" is Costa Rica's night on a server in UTC.
    let zone = &config.timezone;
    let state = config.state_dir.clone();
    let store_and_data = written_dirs(config);
    let drill = drills(config);
    let mut health = vec!["health".to_owned()];
    if config.alerting.is_some() {
        health.push("--alert".to_owned());
    }
    let level = if drill { "drill" } else { "quick" };
    vec![
        Job {
            name: "backup",
            description: "Vigia: back up Odoo's database and filestore".into(),
            args: vec!["backup".into()],
            writes: store_and_data.clone(),
            timer: Some((format!("*-*-* 01:30:00 {zone}"), Some("30min"))),
            extra_unit: "OnSuccess=vigia-prune.service\n",
            extra_service: "Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n",
        },
        Job {
            name: "prune",
            description: "Vigia: apply the backup retention (after each backup)".into(),
            args: vec!["prune".into()],
            writes: store_and_data.clone(),
            timer: None,
            extra_unit: "",
            extra_service: "",
        },
        Job {
            name: "verify",
            description: format!("Vigia: verify the newest backup ({level})"),
            args: vec!["verify".into(), "--level".into(), level.into()],
            writes: store_and_data,
            timer: Some((format!("Sun *-*-* 04:00:00 {zone}"), Some("30min"))),
            extra_unit: "",
            extra_service: "Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n",
        },
        Job {
            name: "health",
            description: "Vigia: check the stack".into(),
            args: health,
            writes: vec![state],
            timer: Some(("*:0/5".to_owned(), None)),
            extra_unit: "",
            // A warning (1) or a critical (2) is a result the alerts carry, not a failure of
            // the unit; unknown (3) is. A run never overlaps the next one.
            extra_service: "SuccessExitStatus=1 2\nTimeoutStartSec=4min\n",
        },
    ]
}

fn service_text(job: &Job, target: &UnitTarget) -> Result<String> {
    // systemd expands $VARIABLES in the arguments but not in the program's path.
    let mut command = vec![
        quoted(checked(&target.binary, "the vigia binary")?),
        "--config".into(),
        argument(&target.config, "the config file")?,
    ];
    if let Some(env) = &target.environment {
        command.extend(["--env".to_owned(), argument(Path::new(env), "--env")?]);
    }
    command.extend(job.args.iter().cloned());
    let writable = job
        .writes
        .iter()
        .map(|p| Ok(format!("-{}", quoted(checked(p, "a folder it writes")?))))
        .collect::<Result<Vec<_>>>()?;
    let environment_file = target.config.with_file_name("vigia.env");
    let mut text = String::new();
    let _ = write!(
        text,
        "# Written by `vigia init --systemd`.\n\
         [Unit]\n\
         Description={description}\n\
         Documentation=man:vigia-{name}(1)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         {extra_unit}\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={command}\n\
         # Secrets referenced as env:NAME, one NAME=value per line (mode 0600).\n\
         EnvironmentFile=-{environment_file}\n\
         {extra_service}\
         ProtectSystem=strict\n\
         ReadWritePaths={writable}\n\
         PrivateTmp=true\n\
         NoNewPrivileges=true\n\
         ProtectKernelTunables=true\n\
         ProtectKernelModules=true\n\
         ProtectControlGroups=true\n\
         RestrictSUIDSGID=true\n\
         LockPersonality=true\n",
        description = job.description,
        name = job.name,
        extra_unit = job.extra_unit,
        command = command.join(" "),
        environment_file = whole_value(&environment_file, "the environment file")?,
        extra_service = job.extra_service,
        writable = writable.join(" "),
    );
    Ok(text)
}

fn timer_text(description: &str, on_calendar: &str, delay: Option<&str>) -> String {
    let delay = delay
        .map(|d| format!("RandomizedDelaySec={d}\nPersistent=true\n"))
        .unwrap_or_default();
    format!(
        "# Written by `vigia init --systemd`.\n\
         [Unit]\n\
         Description={description} (timer)\n\n\
         [Timer]\n\
         OnCalendar={on_calendar}\n\
         AccuracySec=1s\n\
         {delay}\n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

fn notes(config: &Config, target: &UnitTarget, dir: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    if config.alerting.is_none() {
        notes.push(
            "no [alerting] in the config: vigia-health runs without --alert, so a critical is \
             only in the journal and state-dir/vigia-health.prom; add [alerting] and write the \
             units again to be told"
                .to_owned(),
        );
    }
    if !drills(config) {
        notes.push(
            "no backup.encryption.identity: the weekly verify is quick (objects exist), not a \
             drill; a drill restores into a scratch database and needs the private key"
                .to_owned(),
        );
    }
    if config.runtime.kind == RuntimeKind::Compose {
        notes.push(
            "runtime compose: under ProtectSystem=strict `docker compose` reaches Docker's \
             daemon through its socket; podman without a service writes its own state: add \
             ReadWritePaths=-/var/lib/containers -/run/containers -/run/libpod in a drop-in"
                .to_owned(),
        );
    }
    let written = written_dirs(config);
    for d in written.iter().filter(|d| !d.is_dir()) {
        notes.push(format!(
            "{} does not exist: create it before the first run (under ProtectSystem=strict a \
             unit cannot create it)",
            d.display()
        ));
    }
    let mut used = vec![target.binary.clone(), target.config.clone(), dir.to_owned()];
    used.extend(written);
    for path in used
        .iter()
        .filter(|p| p.starts_with("/tmp") || p.starts_with("/var/tmp"))
    {
        notes.push(format!(
            "{} is under a temporary folder: PrivateTmp=true gives each unit an empty one of \
             its own, where it is not found; move it",
            path.display()
        ));
    }
    // What root runs must be changeable only by root: the binary, its folder, the config
    // and the units.
    let parent = target.binary.parent().map(Path::to_path_buf);
    let guarded = [
        Some(target.binary.clone()),
        parent,
        Some(target.config.clone()),
        Some(dir.to_owned()),
    ];
    for path in guarded.into_iter().flatten() {
        if let Some(why) = not_root_only(&path) {
            notes.push(format!(
                "{} {why}: whoever can change it controls what the units run as root; keep \
                 the binary, the config and the units in root-owned folders (/usr/local/bin, \
                 /etc/vigia, /etc/systemd/system)",
                path.display()
            ));
        }
    }
    notes
}

/// Why somebody other than root can change `path`, if they can.
fn not_root_only(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.uid() != 0 {
        return Some(format!("is owned by uid {}", meta.uid()));
    }
    // A folder with the sticky bit (/tmp) lets others add files but not replace root's.
    let sticky = meta.is_dir() && meta.mode() & 0o1000 != 0;
    (meta.mode() & 0o022 != 0 && !sticky).then(|| "is writable by its group or others".to_owned())
}

/// The folders backup, prune and verify write (made writable under ProtectSystem=strict):
/// state-dir, data-dir and a local store.
fn written_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs = vec![config.state_dir.clone()];
    dirs.extend(config.odoo.data_dir.clone());
    if config.backup.store == Some(StoreKind::Local) {
        dirs.extend(config.backup.path.clone());
    }
    dirs
}

fn drills(config: &Config) -> bool {
    config
        .backup
        .encryption
        .as_ref()
        .is_some_and(|e| e.identity.is_some())
}

/// An ExecStart argument: [`quoted`], and `$` doubled so that systemd does not expand it.
fn argument(path: &Path, what: &str) -> Result<String> {
    Ok(quoted(checked(path, what)?).replace('$', "$$"))
}

/// A setting whose whole value is one path (EnvironmentFile=): taken as written, quotes
/// included, so only `%` (a specifier) is doubled.
fn whole_value(path: &Path, what: &str) -> Result<String> {
    Ok(checked(path, what)?.replace('%', "%%"))
}

/// Refuses what cannot be written into a unit file: a newline would start a new directive, and
/// a trailing backslash would continue the line.
fn checked<'a>(path: &'a Path, what: &str) -> Result<&'a str> {
    let text = path.to_str().ok_or_else(|| {
        Error::invalid_input(format!(
            "{what} {} is not UTF-8: systemd units cannot name it; move or rename it",
            path.display()
        ))
    })?;
    if text.ends_with('\\') {
        return Err(Error::invalid_input(format!(
            "{what} {text:?} ends with a backslash, which a unit file reads as a line \
             continuation; rename it"
        )));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Error::invalid_input(format!(
            "{what} {text:?} holds the control character {c:?}: a unit file cannot carry it; \
             rename it"
        )));
    }
    Ok(text)
}

/// One word of ExecStart= or of a list setting (ReadWritePaths=): quoted when it holds a
/// space, a quote, a backslash or `;`; `%` doubled.
fn quoted(text: &str) -> String {
    let text = text.replace('%', "%%");
    if text.contains([' ', '"', '\'', '\\', ';']) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigSource;

    fn config(extra: &str) -> Config {
        ConfigSource::from_text(
            format!(
                "state-dir = \"/var/lib/vigia\"\n[odoo]\ndatabase = \"odoo\"\n\
                 data-dir = \"/srv/odoo data\"\n{extra}"
            ),
            Some(Path::new("/")),
        )
        .unwrap()
        .load(None)
        .unwrap()
    }

    fn target() -> UnitTarget {
        UnitTarget {
            binary: "/opt/vigia 100%/vigia".into(),
            config: "/etc/vigia/vigia.toml".into(),
            environment: Some("production".into()),
        }
    }

    #[test]
    fn quotes_spaces_and_doubles_specifiers_and_dollars() {
        let units = units(&config(""), &target()).unwrap();
        let backup = &units[0];
        assert_eq!(backup.name, "vigia-backup.service");
        assert!(
            backup.text.contains(
                "ExecStart=\"/opt/vigia 100%%/vigia\" --config /etc/vigia/vigia.toml --env \
                 production backup\n"
            ),
            "{}",
            backup.text
        );
        assert!(
            backup
                .text
                .contains("ReadWritePaths=-/var/lib/vigia -\"/srv/odoo data\"\n"),
            "{}",
            backup.text
        );
        assert_eq!(argument(Path::new("/a$b"), "x").unwrap(), "/a$$b");
        let mut odd = target();
        odd.binary = "/opt/a$b/vigia".into();
        odd.config = "/etc/cfg dir/vigia.toml".into();
        let odd = super::units(&config(""), &odd).unwrap();
        assert!(
            odd[0]
                .text
                .contains("ExecStart=/opt/a$b/vigia --config \"/etc/cfg dir/vigia.toml\" --env"),
            "the program's path is not expanded: {}",
            odd[0].text
        );
        assert!(
            odd[0]
                .text
                .contains("EnvironmentFile=-/etc/cfg dir/vigia.env\n"),
            "{}",
            odd[0].text
        );
    }

    #[test]
    fn a_newline_in_a_path_is_refused_not_written_as_a_directive() {
        let mut target = target();
        target.config = "/etc/vigia\nExecStartPre=/bin/evil/vigia.toml".into();
        let err = units(&config(""), &target).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        target.config = "/etc/vigia\\".into();
        let err = units(&config(""), &target).unwrap_err();
        assert!(err.to_string().contains("ends with a backslash"), "{err}");
    }

    #[test]
    fn health_alerts_only_with_alerting_and_verify_drills_only_with_an_identity() {
        let plain = units(&config(""), &target()).unwrap();
        let text = |units: &[UnitFile], name: &str| {
            units.iter().find(|u| u.name == name).unwrap().text.clone()
        };
        assert!(text(&plain, "vigia-health.service").contains(" health\n"));
        assert!(text(&plain, "vigia-verify.service").contains("verify --level quick\n"));
        let full = config(
            "[backup]\nstore = \"local\"\npath = \"/var/backups/vigia\"\n\
             [backup.encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = \"file:/k\"\n\
             [alerting]\nwebhook-url = \"env:HOOK\"\n",
        );
        let units = units(&full, &target()).unwrap();
        assert!(text(&units, "vigia-health.service").contains(" health --alert\n"));
        assert!(text(&units, "vigia-verify.service").contains("verify --level drill\n"));
        assert!(text(&units, "vigia-backup.service").contains(" -/var/backups/vigia\n"));
        assert!(!text(&units, "vigia-health.service").contains("backups"));
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "vigia-backup.service",
                "vigia-backup.timer",
                "vigia-prune.service",
                "vigia-verify.service",
                "vigia-verify.timer",
                "vigia-health.service",
                "vigia-health.timer"
            ]
        );
    }

    #[test]
    fn units_in_a_unit_folder_are_reloaded_not_linked() {
        let timers = ["vigia-backup.timer"];
        let etc = commands(
            Path::new("/etc/systemd/system"),
            &["/etc/systemd/system/vigia-backup.timer".into()],
            &timers,
        );
        assert_eq!(etc[0], "systemctl daemon-reload");
        let elsewhere = commands(
            Path::new("/srv/u"),
            &["/srv/u/vigia-backup.timer".into()],
            &timers,
        );
        assert_eq!(elsewhere[0], "systemctl link /srv/u/vigia-backup.timer");
        assert_eq!(elsewhere[1], "systemctl enable --now vigia-backup.timer");
        let odd = commands(Path::new("/srv/my u"), &["/srv/my u/it's".into()], &timers);
        assert_eq!(odd[0], r"systemctl link '/srv/my u/it'\''s'");
    }

    #[test]
    fn the_units_as_written() {
        let full = config(
            "[backup]\nstore = \"local\"\npath = \"/var/backups/vigia\"\n\
             [backup.encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\n\
             identity = \"file:/k\"\n[alerting]\nwebhook-url = \"env:HOOK\"\n",
        );
        let mut text = String::new();
        for unit in units(&full, &UnitTarget::packaged()).unwrap() {
            let _ = write!(text, "==> {} <==\n{}\n", unit.name, unit.text);
        }
        insta::assert_snapshot!(text);
    }

    #[test]
    fn never_overwrites_a_unit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vigia-verify.timer"), "mine").unwrap();
        let err = write_units(&config(""), dir.path(), &target()).unwrap_err();
        assert!(err.to_string().contains("vigia-verify.timer"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("vigia-verify.timer")).unwrap(),
            "mine"
        );
        assert!(!dir.path().join("vigia-backup.service").exists());
    }
}
