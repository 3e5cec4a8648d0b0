//! `[runtime] kind = "compose"`: the stack's services as docker compose runs them, on the
//! engine DOCKER_HOST names (as Docker's own tools find it). Status from `ps`, start and stop
//! one service at a time (`--no-deps`: a restart of Odoo never restarts the database), the
//! release as the `.env` line that names Odoo's image, and one-offs run in the NEW image
//! before the switch (the variable set in Compose's environment overrides `.env`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use vigia_core::config::{ComposeServices, RuntimeKind};
use vigia_core::ports::runtime::{
    OneOff, OneOffExit, Runtime, RuntimeAction, Service, ServiceState,
};
use vigia_core::{Config, Error, ErrorKind, Result};

use super::env_file;
use super::ps;
use super::tool::{Output, Tool};
use vigia_core::process::shell_quote;

/// `ps`, `config`, `logs`: quick, engine-side reads.
const READ_LIMIT: Duration = Duration::from_mins(1);
const COMPOSE_PACKAGE: &str =
    "Docker Compose v2 (Debian: docker-compose or Docker's docker-compose-plugin)";

#[derive(Debug)]
pub struct ComposeRuntime {
    pub file: PathBuf,
    project: Option<String>,
    services: ComposeServices,
    /// `[runtime.services]` was written: each entry must be in the file.
    explicit: bool,
    release_variable: Option<String>,
    stop_timeout: Duration,
    /// Addons folders inside Odoo's image.
    pub image_addons: Vec<String>,
    compose_command: Option<String>,
    hide: Vec<String>,
    compose: OnceCell<Tool>,
    pub(super) docker: Tool,
    /// The services the file defines (`config --services`), read once.
    in_file: OnceCell<Vec<String>>,
}

impl ComposeRuntime {
    pub fn from_config(config: &Config) -> Result<Self> {
        let r = &config.runtime;
        let file = r.compose_file.clone().ok_or_else(|| {
            Error::config("kind = \"compose\" needs [runtime] compose-file")
                .with_key("runtime.compose-file")
        })?;
        let hide = config.secret_env_names();
        Ok(Self {
            file,
            project: r.project.clone(),
            explicit: r.services.is_some(),
            services: r.services.clone().unwrap_or_else(ComposeServices::usual),
            release_variable: r.release_variable.clone(),
            stop_timeout: r.stop_timeout.0,
            image_addons: r.image_addons.clone(),
            compose_command: r.compose_command.clone(),
            docker: Tool {
                argv: vec!["docker".into()],
                package_hint: "the Docker CLI (Debian: docker.io or docker-ce-cli)",
                key: "runtime.compose-command",
                hide: hide.clone(),
                calls: AtomicUsize::new(0),
            },
            hide,
            compose: OnceCell::new(),
            in_file: OnceCell::new(),
        })
    }

    /// Engine and Compose calls made so far.
    pub fn calls(&self) -> usize {
        self.docker.calls.load(Ordering::Relaxed)
            + self
                .compose
                .get()
                .map_or(0, |c| c.calls.load(Ordering::Relaxed))
    }

    /// The project as an image name component: `[runtime] project`, else the compose
    /// file's folder name; lowercase letters and digits, other runs as one `-`.
    pub fn project_name(&self) -> String {
        let raw = self.project.clone().unwrap_or_else(|| {
            self.dir()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut name = String::new();
        for c in raw.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                name.push(c);
            } else if !name.is_empty() && !name.ends_with('-') {
                name.push('-');
            }
        }
        let name = name.trim_end_matches('-');
        if name.is_empty() {
            "default".to_owned()
        } else {
            name.to_owned()
        }
    }

    /// The folder of the compose file, where its `.env` is.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    fn env_path(&self) -> PathBuf {
        self.dir().join(".env")
    }

    /// Compose's command line: the configured one, else `docker compose` when the plugin
    /// answers, else `docker-compose`.
    pub async fn compose(&self) -> Result<&Tool> {
        self.compose
            .get_or_try_init(|| async {
                let words: Vec<String> = match &self.compose_command {
                    Some(line) => line.split_whitespace().map(str::to_owned).collect(),
                    None if plugin_answers(&self.hide).await => {
                        vec!["docker".into(), "compose".into()]
                    }
                    None => vec!["docker-compose".into()],
                };
                if words.is_empty() {
                    return Err(Error::config("compose-command is empty")
                        .with_key("runtime.compose-command"));
                }
                let mut argv = words;
                argv.extend(["-f".into(), self.file.to_string_lossy().into_owned()]);
                if let Some(project) = &self.project {
                    argv.extend(["-p".into(), project.clone()]);
                }
                Ok(Tool {
                    argv,
                    package_hint: COMPOSE_PACKAGE,
                    key: "runtime.compose-command",
                    hide: self.hide.clone(),
                    calls: AtomicUsize::new(0),
                })
            })
            .await
    }

    /// Runs Compose with `args`; `release` overrides the release variable for this call.
    pub async fn call(
        &self,
        args: &[&str],
        release: Option<&str>,
        limit: Duration,
    ) -> Result<Output> {
        let env: Vec<(&str, &str)> = match (release, &self.release_variable) {
            (Some(image), Some(var)) => vec![(var.as_str(), image)],
            _ => Vec::new(),
        };
        self.compose().await?.call(args, &env, limit).await
    }

    /// The services the compose file defines; a file Compose cannot read is a config error
    /// with its words (nothing is touched before this passes).
    pub async fn services_in_file(&self) -> Result<&[String]> {
        let names = self
            .in_file
            .get_or_try_init(|| async {
                let out = self
                    .call(&["config", "--services"], None, READ_LIMIT)
                    .await
                    .map_err(|e| self.bad_file(e))?;
                Ok::<_, Error>(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty())
                        .collect(),
                )
            })
            .await?;
        Ok(names)
    }

    fn bad_file(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Io {
            Error::config(format!(
                "Compose cannot read {}: {}",
                self.file.display(),
                e.message()
            ))
            .with_key("runtime.compose-file")
        } else {
            e
        }
    }

    /// The compose service of `service`; None when it is not managed. A service named in
    /// `[runtime.services]` but absent from the file is a config error naming it.
    pub async fn service(&self, service: Service) -> Result<Option<String>> {
        let name = match service {
            Service::Odoo => &self.services.odoo,
            Service::Postgres => &self.services.postgres,
            Service::Nginx => &self.services.nginx,
            Service::Redis => &self.services.redis,
        };
        let Some(name) = name else { return Ok(None) };
        if self.services_in_file().await?.contains(name) {
            return Ok(Some(name.clone()));
        }
        if self.explicit {
            return Err(Error::config(format!(
                "service `{name}` is not in {}: name one of its services, or leave the entry out",
                self.file.display()
            ))
            .with_key(format!("runtime.services.{}", service.as_str())));
        }
        Ok(None)
    }

    /// The project's containers as `ps --all` lists them; an answer of an unknown shape
    /// is the error text (status reports it as unknown).
    pub(super) async fn ps(&self) -> Result<std::result::Result<Vec<ps::Container>, String>> {
        let out = self
            .call(&["ps", "--all", "--format", "json"], None, READ_LIMIT)
            .await?;
        Ok(ps::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The project's containers; an answer of an unknown shape is an io error.
    pub(super) async fn containers(&self) -> Result<Vec<ps::Container>> {
        self.ps().await?.map_err(|e| Error::new(ErrorKind::Io, e))
    }

    /// Odoo's service: deploys and one-offs need it.
    pub async fn odoo(&self) -> Result<String> {
        self.service(Service::Odoo).await?.ok_or_else(|| {
            Error::config(format!(
                "no Odoo service: {} has no service `odoo`; name it in [runtime.services] odoo",
                self.file.display()
            ))
            .with_key("runtime.services.odoo")
        })
    }

    fn variable(&self) -> Result<&str> {
        self.release_variable.as_deref().ok_or_else(|| {
            Error::config(
                "releases under compose need [runtime] release-variable: the .env variable \
                 that names Odoo's image (e.g. ODOO_IMAGE)",
            )
            .with_key("runtime.release-variable")
        })
    }

    fn read_env(&self) -> Result<String> {
        let path = self.env_path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(Error::config(format!(
                "{} is not a regular file (a link?): vigia rewrites only a file of its own",
                path.display()
            ))
            .with_key("runtime.release-variable"));
        }
        std::fs::read_to_string(&path).map_err(|e| {
            Error::config(format!(
                "cannot read {} ({e}): the release variable lives there",
                path.display()
            ))
            .with_key("runtime.release-variable")
        })
    }

    /// Compose's check of the file with `env_file` as its `.env`: a config error with its
    /// words when it refuses.
    pub async fn check_with_env(&self, env_file: &Path) -> Result<()> {
        let env_file = env_file.to_string_lossy();
        self.call(
            &["--env-file", &env_file, "config", "--quiet"],
            None,
            READ_LIMIT,
        )
        .await
        .map(drop)
        .map_err(|e| self.bad_file(e))
    }

    /// `.env` with the release variable set to `release`: written beside it, checked by
    /// Compose, then renamed over it (the file before kept as `.env.vigia-<id>`, the first
    /// time for that id). A value Compose refuses leaves `.env` as it was.
    async fn switch_env(&self, release: &str, id: &str) -> Result<()> {
        env_file::check_image(release)?;
        check_id(id)?;
        let var = self.variable()?;
        let path = self.env_path();
        let before = self.read_env()?;
        let after = env_file::with_value(&before, var, release)?;
        let dir = self.dir().to_owned();
        let candidate = dir.join(format!(".env.vigia-new-{id}"));
        let mode = std::fs::metadata(&path).map_or(0o600, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions())
        });
        write_new(&candidate, after.as_bytes(), mode)?;
        if let Err(e) = self.check_with_env(&candidate).await {
            let _ = std::fs::remove_file(&candidate);
            return Err(e);
        }
        // The first switch of this deploy keeps the file before it; a link planted at the
        // name is replaced, never taken for that copy.
        let kept = dir.join(format!(".env.vigia-{id}"));
        if !std::fs::symlink_metadata(&kept).is_ok_and(|m| m.is_file())
            && let Err(e) = write_new(&kept, before.as_bytes(), mode)
        {
            let _ = std::fs::remove_file(&candidate);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&candidate, &path) {
            // It may hold the stack's passwords: not left beside .env.
            let _ = std::fs::remove_file(&candidate);
            return Err(Error::io("replace", &path, e));
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", &dir, e))
    }
}

/// A deploy id as file and tag names hold it: letters, digits and `-`.
pub(super) fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::invalid_input(format!(
            "`{}` is not a deploy id",
            id.escape_default()
        )));
    }
    Ok(())
}

/// A new file holding `bytes` with `mode`, synced; never through a name planted there.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| Error::io("write", path, e))
}

async fn plugin_answers(hide: &[String]) -> bool {
    let mut command = tokio::process::Command::new("docker");
    for name in hide {
        command.env_remove(name);
    }
    command
        .args(["compose", "version"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

fn skipped(service: Service) -> RuntimeAction {
    RuntimeAction::Skipped {
        reason: not_managed(service),
    }
}

fn not_managed(service: Service) -> String {
    format!(
        "{} is not a service of this compose stack ([runtime.services])",
        service.as_str()
    )
}

#[async_trait]
impl Runtime for ComposeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Compose
    }

    async fn manages(&self, service: Service) -> Result<bool> {
        Ok(self.service(service).await?.is_some())
    }

    async fn status(&self, service: Service) -> Result<ServiceState> {
        let Some(name) = self.service(service).await? else {
            return Ok(ServiceState::Unknown {
                reason: not_managed(service),
            });
        };
        Ok(ps::state_of(&self.ps().await?, &name))
    }

    async fn start(&self, service: Service) -> Result<RuntimeAction> {
        let Some(name) = self.service(service).await? else {
            return Ok(skipped(service));
        };
        let limit = self.stop_timeout + Duration::from_mins(5);
        // Never pulled here: a release is fetched before a deploy stops anything, and a name
        // missing locally must not be looked up in a registry (a rollback tag on Docker Hub).
        self.call(
            &["up", "-d", "--no-deps", "--pull", "never", &name],
            None,
            limit,
        )
        .await?;
        Ok(RuntimeAction::Done)
    }

    async fn stop(&self, service: Service) -> Result<RuntimeAction> {
        let Some(name) = self.service(service).await? else {
            return Ok(skipped(service));
        };
        let seconds = self.stop_timeout.as_secs().to_string();
        let limit = self.stop_timeout + Duration::from_mins(1);
        self.call(&["stop", "-t", &seconds, &name], None, limit)
            .await?;
        Ok(RuntimeAction::Done)
    }

    /// One `up --force-recreate`: Compose stops the old container (within stop-timeout)
    /// and starts the new one, as a separate stop and up would, in one call.
    async fn restart(&self, service: Service) -> Result<RuntimeAction> {
        let Some(name) = self.service(service).await? else {
            return Ok(skipped(service));
        };
        let seconds = self.stop_timeout.as_secs().to_string();
        let limit = self.stop_timeout + Duration::from_mins(5);
        let args = [
            "up",
            "-d",
            "--no-deps",
            "--pull",
            "never",
            "--force-recreate",
            "--timeout",
            &seconds,
            &name,
        ];
        self.call(&args, None, limit).await?;
        Ok(RuntimeAction::Done)
    }

    async fn logs(&self, service: Service, lines: usize) -> Result<Vec<String>> {
        let Some(name) = self.service(service).await? else {
            return Err(Error::config(not_managed(service)).with_key("runtime.services"));
        };
        let tail = lines.to_string();
        let out = self
            .call(
                &[
                    "logs",
                    "--no-color",
                    "--no-log-prefix",
                    "--tail",
                    &tail,
                    &name,
                ],
                None,
                READ_LIMIT,
            )
            .await?;
        // Compose passes the container's stderr on as its own.
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&out.stderr);
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    async fn current_release(&self) -> Result<Option<String>> {
        let var = self.variable()?;
        let text = self.read_env()?;
        match env_file::value_of(&text, var) {
            Some(value) if !value.is_empty() => Ok(Some(value)),
            Some(_) => Ok(None),
            None => Err(Error::config(format!(
                "no line of {} sets {var}",
                self.env_path().display()
            ))
            .with_key("runtime.release-variable")),
        }
    }

    async fn switch(&self, release: &str, id: &str) -> Result<()> {
        self.switch_env(release, id).await
    }

    /// One-offs a killed vigia left running (an upgrade): removed, so that nothing goes on
    /// writing to the database a rollback swaps back.
    async fn end_one_offs(&self) -> Result<()> {
        let Some(service) = self.service(Service::Odoo).await? else {
            return Ok(());
        };
        for c in self.containers().await? {
            if c.service == service && c.is_one_off() && c.name.starts_with(ONE_OFF_PREFIX) {
                tracing::warn!("removing {}, a one-off a killed vigia left", c.name);
                self.docker
                    .call(&["rm", "-f", &c.name], &[], READ_LIMIT)
                    .await?;
            }
        }
        Ok(())
    }

    async fn run(&self, command: &str, release: &str, limits: &OneOff) -> Result<OneOffExit> {
        env_file::check_image(release)?;
        let var = self.variable()?.to_owned();
        let service = self.odoo().await?;
        let name = one_off_name();
        let filled = command.replace("{release}", &shell_quote(release));
        let mut line: Vec<String> = self.compose().await?.argv.clone();
        line.extend(
            one_off_args(&name, &service, &filled)
                .iter()
                .map(|w| (*w).to_owned()),
        );
        let quoted: Vec<String> = line.iter().map(|w| shell_quote(w)).collect();
        let env = vec![(var, release.to_owned())];
        let exit = crate::shell::run_shell_async(&quoted.join(" "), self.dir(), env, limits).await;
        // Removed in every case: after a time limit or a cancel the client is gone, not the
        // container, and it must not go on upgrading.
        self.remove_container(&name).await;
        exit
    }
}

impl ComposeRuntime {
    /// Runs `script` once in `release`'s image (Odoo's service); its output once it exits 0.
    pub async fn run_captured(
        &self,
        script: &str,
        release: &str,
        limit: Duration,
    ) -> Result<Output> {
        env_file::check_image(release)?;
        let service = self.odoo().await?;
        let name = one_off_name();
        let out = self
            .call(&one_off_args(&name, &service, script), Some(release), limit)
            .await;
        self.remove_container(&name).await;
        out
    }

    async fn remove_container(&self, name: &str) {
        if let Err(e) = self.docker.call(&["rm", "-f", name], &[], READ_LIMIT).await {
            tracing::warn!("the one-off container {name} was not removed: {e}");
        }
    }
}

const ONE_OFF_PREFIX: &str = "vigia-oneoff-";

fn one_off_name() -> String {
    format!(
        "{ONE_OFF_PREFIX}{}",
        hex::encode(vigia_core::random_bytes::<6>())
    )
}

/// `run` of `sh -c command` in a container named `name`, kept after it exits: podman's
/// Docker API loses the exit status of an auto-removed (`--rm`) container, so vigia removes
/// it itself.
fn one_off_args<'a>(name: &'a str, service: &'a str, command: &'a str) -> [&'a str; 9] {
    [
        "run",
        "--no-deps",
        "-T",
        "--name",
        name,
        service,
        "sh",
        "-c",
        command,
    ]
}
