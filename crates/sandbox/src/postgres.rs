//! A throwaway PostgreSQL cluster: `initdb` + `postgres` on a Unix socket, fsync off, gone on
//! drop. As root the server runs as the `postgres` user (initdb refuses root).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

const PACKAGE_HINT: &str = "install the Debian package `postgresql` (apt-get install postgresql), or set VIGIA_PG_BIN to a folder holding initdb, postgres and psql";
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The port only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
pub const PORT: u16 = 5432;
pub const SUPERUSER: &str = "postgres";

/// A running cluster. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    server: Child,
    owner: Option<(u32, u32)>,
    password: Option<String>,
}

impl PgCluster {
    /// Creates and starts a cluster that trusts local connections; usually well under a second.
    pub fn start() -> Result<Self> {
        Self::start_inner(None)
    }

    /// A cluster whose superuser needs `password` (scram-sha-256), to test that clients pass
    /// it the way they should (the environment, never the command line).
    pub fn start_with_password(password: &str) -> Result<Self> {
        Self::start_inner(Some(password))
    }

    fn start_inner(password: Option<&str>) -> Result<Self> {
        let bin_dir = find_bin_dir()?;
        // Short path: a Unix socket path must stay under ~107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("vgpg-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("create", Path::new("/tmp"), e))?;
        let owner = server_owner()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| Error::io("chown", dir.path(), e))?;
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod", dir.path(), e))?;
        let data = dir.path().join("data");
        let mut initdb = run_as(owner, Command::new(bin_dir.join("initdb")));
        initdb.args(["-D"]).arg(&data).args([
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        // With a password, every connection (the Unix socket too) must give it.
        let pwfile = dir.path().join("pwfile");
        match password {
            Some(password) => {
                std::fs::write(&pwfile, password).map_err(|e| Error::io("write", &pwfile, e))?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                        .map_err(|e| Error::io("chown", &pwfile, e))?;
                }
                initdb.arg(format!("--pwfile={}", pwfile.display()));
                initdb.args(["-A", "scram-sha-256"]);
            }
            None => {
                initdb.args(["-A", "trust"]);
            }
        }
        let initdb = initdb
            .stdin(Stdio::null())
            .output()
            .map_err(|e| missing_or_io(&bin_dir.join("initdb"), e))?;
        let _ = std::fs::remove_file(&pwfile);
        if !initdb.status.success() {
            return Err(Error::new(
                ErrorKind::Database,
                format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&initdb.stderr).trim()
                ),
            ));
        }
        let log = std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| Error::io("create", &dir.path().join("server.log"), e))?;
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::chown(dir.path().join("server.log"), Some(uid), Some(gid));
        }
        let mut command = run_as(owner, Command::new(bin_dir.join("postgres")));
        command
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        vigia_core::process::die_with_parent(&mut command);
        let server = command
            .spawn()
            .map_err(|e| missing_or_io(&bin_dir.join("postgres"), e))?;
        let mut cluster = Self {
            dir,
            bin_dir,
            server,
            owner,
            password: password.map(str::to_owned),
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // Line 8 of postmaster.pid says "ready" once connections are accepted.
            let ready = std::fs::read_to_string(&pid_file)
                .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
            if ready {
                return Ok(());
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                return Err(Error::new(
                    ErrorKind::Database,
                    format!(
                        "postgres exited with {status} while starting: {}",
                        self.log_tail()
                    ),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Database,
                    format!(
                        "postgres did not start within {START_TIMEOUT:?}: {}",
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// The socket directory: the `host` for libpq and tokio-postgres.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        PORT
    }

    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// Where `initdb`, `psql`, `pg_dump` of this server's version live.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A libpq connection string for `database`.
    pub fn conninfo(&self, database: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={database}",
            self.socket_dir().display()
        )
    }

    /// Runs SQL through `psql` (stopping at the first error) and returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut psql = Command::new(self.bin_dir.join("psql"));
        if let Some(password) = &self.password {
            psql.env("PGPASSWORD", password);
        }
        let out = psql
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo(database))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| missing_or_io(&self.bin_dir.join("psql"), e))?;
        if !out.status.success() {
            return Err(Error::new(
                ErrorKind::Database,
                format!(
                    "psql failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")),
        )
        .map(drop)
    }

    /// The uid and gid the server runs as (None: the current user).
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown.
        if let Ok(pid) = i32::try_from(self.server.id()) {
            send_signal(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.server.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `VIGIA_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` holding initdb.
pub fn find_bin_dir() -> Result<PathBuf> {
    bin_dir_from(
        std::env::var_os("VIGIA_PG_BIN").map(PathBuf::from),
        Path::new("/usr/lib/postgresql"),
    )
}

fn bin_dir_from(explicit: Option<PathBuf>, versions_root: &Path) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "VIGIA_PG_BIN={} has no initdb; {PACKAGE_HINT}",
                dir.display()
            ),
        ));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(versions_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        Error::new(
            ErrorKind::Io,
            format!(
                "no PostgreSQL server found under {}: {PACKAGE_HINT}",
                versions_root.display()
            ),
        )
    })
}

fn missing_or_io(program: &Path, err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        Error::new(
            ErrorKind::Io,
            format!("{} not found: {PACKAGE_HINT}", program.display()),
        )
    } else {
        Error::io("run", program, err)
    }
}

/// As root, the `postgres` user's uid and gid (initdb and postgres refuse to run as root).
fn server_owner() -> Result<Option<(u32, u32)>> {
    if !is_root() {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| Error::io("read", Path::new("/etc/passwd"), e))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres") && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("running as root, but there is no `postgres` user to run the server as: {PACKAGE_HINT}"),
            )
        })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

fn run_as(owner: Option<(u32, u32)>, mut command: Command) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

#[allow(unsafe_code)]
fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_server_names_the_debian_package() {
        let empty = tempfile::tempdir().unwrap();
        let err = bin_dir_from(None, empty.path()).unwrap_err();
        assert!(
            err.message().contains("apt-get install postgresql"),
            "{}",
            err.message()
        );
        let err = bin_dir_from(Some(empty.path().to_path_buf()), empty.path()).unwrap_err();
        assert!(err.message().contains("has no initdb"), "{}", err.message());
    }

    #[test]
    fn newest_major_wins() {
        let root = tempfile::tempdir().unwrap();
        for major in ["13", "16", "9"] {
            let bin = root.path().join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
        }
        assert_eq!(
            bin_dir_from(None, root.path()).unwrap(),
            root.path().join("16/bin")
        );
    }
}
