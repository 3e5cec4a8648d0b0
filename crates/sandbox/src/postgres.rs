//! A throwaway PostgreSQL cluster: `initdb` + `postgres` on a Unix socket, fsync off, gone on
//! drop. As root the server runs as the `postgres` user (initdb refuses root). With feature
//! `tls`, a cluster may also listen on loopback TCP, accepting TLS connections only.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigia_core::{Error, ErrorKind, Result};

const PACKAGE_HINT: &str = "install the Debian package `postgresql` (apt-get install postgresql), or set VIGIA_PG_BIN to a folder holding initdb, postgres and psql";
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// A cluster without TCP: the port only names the socket file (`.s.PGSQL.5432`).
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
    port: u16,
    /// The CA certificate that signed the server's, for a TLS cluster.
    root_cert: Option<PathBuf>,
}

impl PgCluster {
    /// Creates and starts a cluster that trusts local connections; usually well under a second.
    pub fn start() -> Result<Self> {
        Self::start_inner(None, None)
    }

    /// A cluster whose superuser needs `password` (scram-sha-256), to test that clients pass
    /// it the way they should (the environment, never the command line).
    pub fn start_with_password(password: &str) -> Result<Self> {
        Self::start_inner(Some(password), None)
    }

    /// A cluster with a password that also listens on 127.0.0.1 (a free port) with TLS on,
    /// refusing TCP connections without TLS. Its certificate, from a CA made for it
    /// ([`PgCluster::root_cert`]), names `localhost` only: connecting to `127.0.0.1` with
    /// host name checks is a mismatch.
    #[cfg(feature = "tls")]
    pub fn start_tls(password: &str) -> Result<Self> {
        let ca = crate::tls::TestCa::new("vigia sandbox CA")?;
        let server = ca.server_cert(&["localhost"])?;
        let files = TlsFiles {
            root_cert: ca.cert_pem(),
            server_cert: server.cert_pem,
            server_key: server.key_pem,
        };
        Self::start_inner(Some(password), Some(files))
    }

    fn start_inner(password: Option<&str>, tls: Option<TlsFiles>) -> Result<Self> {
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
        let root_cert = tls
            .map(|files| set_up_tls(&files, dir.path(), &data, owner))
            .transpose()?;
        let tls = root_cert.is_some();
        // A free port can be taken between the probe and the server's bind: try another then.
        let mut attempts = 0;
        let (server, port) = loop {
            attempts += 1;
            let port = if tls { free_port()? } else { PORT };
            let mut server = spawn_server(&bin_dir, dir.path(), owner, port, tls)?;
            match wait_ready(&mut server, dir.path()) {
                Ok(()) => break (server, port),
                Err(_)
                    if tls && attempts < 3 && log_tail(dir.path()).contains("already in use") =>
                {
                    let _ = server.wait();
                }
                Err(e) => {
                    stop(&mut server);
                    return Err(e);
                }
            }
        };
        Ok(Self {
            dir,
            bin_dir,
            server,
            owner,
            password: password.map(str::to_owned),
            port,
            root_cert,
        })
    }

    /// The socket directory: the `host` for libpq and tokio-postgres.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The socket's port, and the TCP port of a TLS cluster.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A TLS cluster's root certificate: the CA that signed the server's certificate.
    pub fn root_cert(&self) -> Option<&Path> {
        self.root_cert.as_deref()
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
            "host={} port={} user={SUPERUSER} dbname={database}",
            self.socket_dir().display(),
            self.port
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
        stop(&mut self.server);
    }
}

/// Starts `postgres` on `dir`'s cluster: the Unix socket always, 127.0.0.1 TCP with TLS when
/// `tls` (the files [`set_up_tls`] wrote).
fn spawn_server(
    bin_dir: &Path,
    dir: &Path,
    owner: Option<(u32, u32)>,
    port: u16,
    tls: bool,
) -> Result<Child> {
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("create", &log_path, e))?;
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::chown(&log_path, Some(uid), Some(gid));
    }
    let mut command = run_as(owner, Command::new(bin_dir.join("postgres")));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-k")
        .arg(dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if tls {
        command
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", dir.join(SERVER_CERT).display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.join(SERVER_KEY).display()));
    } else {
        command.args(["-c", "listen_addresses="]);
    }
    vigia_core::process::die_with_parent(&mut command);
    command
        .spawn()
        .map_err(|e| missing_or_io(&bin_dir.join("postgres"), e))
}

fn wait_ready(server: &mut Child, dir: &Path) -> Result<()> {
    let pid_file = dir.join("data").join("postmaster.pid");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        // Line 8 of postmaster.pid says "ready" once connections are accepted.
        let ready = std::fs::read_to_string(&pid_file)
            .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
        if ready {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            return Err(Error::new(
                ErrorKind::Database,
                format!(
                    "postgres exited with {status} while starting: {}",
                    log_tail(dir)
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err(Error::new(
                ErrorKind::Database,
                format!(
                    "postgres did not start within {START_TIMEOUT:?}: {}",
                    log_tail(dir)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    log.lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Fast shutdown (SIGINT), then SIGKILL after 10 s.
fn stop(server: &mut Child) {
    if let Ok(pid) = i32::try_from(server.id()) {
        send_signal(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(server.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = server.kill();
    let _ = server.wait();
}

const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const ROOT_CERT: &str = "root.crt";

/// TCP from loopback must use TLS (and the password); the socket needs the password only.
const TLS_HBA: &str = "local all all scram-sha-256\n\
                       hostssl all all 127.0.0.1/32 scram-sha-256\n\
                       hostnossl all all 127.0.0.1/32 reject\n";

/// A TLS cluster's files, PEM.
struct TlsFiles {
    root_cert: String,
    server_cert: String,
    server_key: String,
}

/// Writes the CA's certificate (`root.crt`), the server's certificate and its key (the
/// server's own, mode 0600: PostgreSQL refuses a key others can read) into `dir`, and a
/// pg_hba.conf that refuses TCP without TLS; returns the CA certificate's path.
fn set_up_tls(
    files: &TlsFiles,
    dir: &Path,
    data: &Path,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf> {
    for (name, text, mode) in [
        (ROOT_CERT, &files.root_cert, 0o644),
        (SERVER_CERT, &files.server_cert, 0o644),
        (SERVER_KEY, &files.server_key, 0o600),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", &path, e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| Error::io("chown", &path, e))?;
        }
    }
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, TLS_HBA).map_err(|e| Error::io("write", &hba, e))?;
    Ok(dir.join(ROOT_CERT))
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot find a free port: {e}")))
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
