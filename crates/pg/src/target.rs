//! Where the PostgreSQL server is and which client binaries talk to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigia_core::config::{Secret, SslMode};
use vigia_core::{Config, Error, ErrorKind, Result};

use crate::tls;

#[derive(Debug, Clone)]
pub struct PgTarget {
    /// Host name, address, or Unix socket directory.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    /// Where pg_dump / pg_restore live; None: from PATH.
    pub bin_dir: Option<PathBuf>,
    /// TLS for the connections and the client programs, as libpq means it.
    pub sslmode: SslMode,
    /// The CA certificate(s) the server's must chain to: `sslrootcert`, else libpq's
    /// `~/.postgresql/root.crt` when it exists.
    pub sslrootcert: Option<PathBuf>,
}

impl PgTarget {
    pub fn from_config(config: &Config) -> Result<Self> {
        let pg = &config.postgres;
        Ok(Self {
            host: pg.host.clone(),
            port: pg.port,
            user: pg.user.clone(),
            password: pg
                .password
                .as_ref()
                .map(|p| p.resolve("postgres.password"))
                .transpose()?,
            ..Self::client_only(config)
        })
    }

    /// A server on the Unix socket in `dir`, as `user` with no password (peer or trust
    /// authentication), its client programs in `bin_dir`: a local or throwaway cluster.
    pub fn unix_socket(dir: &Path, port: u16, user: &str, bin_dir: Option<&Path>) -> Self {
        Self {
            host: dir.to_string_lossy().into_owned(),
            port,
            user: user.to_owned(),
            password: None,
            bin_dir: bin_dir.map(Path::to_path_buf),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
        }
    }

    /// Where the server is, without the password: enough to run `pg_restore --list`.
    pub fn client_only(config: &Config) -> Self {
        let pg = &config.postgres;
        Self {
            host: pg.host.clone(),
            port: pg.port,
            user: pg.user.clone(),
            password: None,
            bin_dir: pg.bin_dir.clone(),
            sslmode: pg.sslmode,
            sslrootcert: tls::root_cert(
                pg.sslrootcert.as_deref(),
                std::env::var_os("HOME").map(PathBuf::from).as_deref(),
            ),
        }
    }

    /// A client program (`pg_dump`, `pg_restore`), from `bin-dir` or PATH.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin_dir
            .as_ref()
            .map_or_else(|| PathBuf::from(name), |d| d.join(name))
    }

    /// `host:port` as configured: how records and journals name the cluster.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(crate) fn describe(&self) -> String {
        format!("{}:{} as {}", self.host, self.port, self.user)
    }

    /// Connects to `database`; the connection runs on a task of the current runtime.
    pub async fn connect(&self, database: &str) -> Result<tokio_postgres::Client> {
        self.connect_as(database, "vigia").await
    }

    /// [`PgTarget::connect`] with `application_name` set to `app` (`vigia-health`), so that
    /// a DBA sees who holds the session.
    pub async fn connect_as(&self, database: &str, app: &str) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database)
            .application_name(app);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        let (sslmode, tls) = tls::connector(self)?;
        config.ssl_mode(sslmode);
        let (client, connection) = config.connect(tls).await.map_err(|e| {
            let hint = tls::hint(&e, self)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            Error::new(
                ErrorKind::Database,
                format!(
                    "cannot connect to PostgreSQL at {} (database {database}, sslmode {}): {}{hint}",
                    self.describe(),
                    self.sslmode,
                    pg_message(&e)
                ),
            )
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Connects to a database restored from a dump vigia does not trust, guarded so that
    /// nothing the dump defined runs with this user's rights by name resolution or policy:
    /// only `pg_catalog` on the search path (a `public.quote_ident(name)` would otherwise win
    /// over the built-in), and row-level security off (a query a policy applies to fails
    /// instead of running the policy).
    pub async fn connect_guarded(&self, database: &str) -> Result<tokio_postgres::Client> {
        let client = self.connect(database).await?;
        client
            .batch_execute("SET search_path = pg_catalog, pg_temp; SET row_security = off")
            .await
            .map_err(|e| db_error("cannot guard the session", &e))?;
        Ok(client)
    }

    /// Refuses a `pg_dump` older than the server: it cannot dump a newer server's catalog.
    pub fn check_client_version(&self, server_version_num: u32) -> Result<()> {
        let program = self.program("pg_dump");
        let server_major = server_version_num / 10_000;
        let client_major = client_major(&program)?;
        if client_major < server_major {
            return Err(Error::config(format!(
                "{} is PostgreSQL {client_major}, older than the server ({server_major}): install the \
                 Debian package postgresql-client-{server_major}, or set [postgres] bin-dir to the \
                 folder of a pg_dump {server_major} or newer",
                program.display()
            ))
            .with_key("postgres.bin-dir"));
        }
        Ok(())
    }

    /// Refuses a psql that does not honour `\restrict` (13.22, 14.19, 15.14, 16.10, 17.6 and
    /// later): with it, a zip's meta-commands could run.
    pub fn check_psql_restrict(&self) -> Result<()> {
        let program = self.program("psql");
        let (major, minor) = client_version(&program)?;
        let first_minor = match major {
            13 => 22,
            14 => 19,
            15 => 14,
            16 => 10,
            17 => 6,
            18.. => 0,
            _ => u32::MAX,
        };
        if minor >= first_minor {
            return Ok(());
        }
        Err(Error::config(format!(
            "{} is psql {major}.{minor}, which does not honour \\restrict, so an Odoo zip's \
             psql meta-commands (a shell, a connection elsewhere) could run: install a \
             postgresql-client of 13.22, 14.19, 15.14, 16.10, 17.6 or later, or set [postgres] \
             bin-dir",
            program.display()
        ))
        .with_key("postgres.bin-dir"))
    }
}

/// The major version `pg_dump --version` reports.
fn client_major(program: &Path) -> Result<u32> {
    client_version(program).map(|(major, _)| major)
}

/// The version a client program reports ("pg_dump (PostgreSQL) 15.18 (Debian ...)").
fn client_version(program: &Path) -> Result<(u32, u32)> {
    let out = Command::new(program).arg("--version").output().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!(
                "cannot run {}: {e}; install the Debian package postgresql-client, or set [postgres] bin-dir",
                program.display()
            ),
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|word| {
            let (major, minor) = word.split_once('.')?;
            let minor = minor.split(|c: char| !c.is_ascii_digit()).next()?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        })
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("cannot read the version of {}: {text}", program.display()),
            )
        })
}

/// What PostgreSQL said (its message and detail), not tokio-postgres' bare "db error".
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        };
    }
    vigia_core::error_chain(e)
}

/// A database error saying what vigia was doing and what PostgreSQL said.
pub fn db_error(what: &str, e: &tokio_postgres::Error) -> Error {
    Error::new(ErrorKind::Database, format!("{what}: {}", pg_message(e)))
}

/// `name` as a quoted SQL identifier, for statements that take no parameters there
/// (CREATE, DROP and ALTER DATABASE).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
