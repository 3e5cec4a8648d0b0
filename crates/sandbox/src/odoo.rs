//! An Odoo-shaped database and filestore: the tables Vigia reads (modules, partners,
//! attachments, Costa Rica e-invoice documents) with data in each, and files stored where
//! Odoo stores them (`<filestore>/<sha1[:2]>/<sha1>`, named in `ir_attachment.store_fname`).

use std::path::Path;

use sha1::{Digest, Sha1};
use vigia_core::{Error, Result};

use crate::postgres::PgCluster;

/// The schema and rows of the Odoo-shaped database.
pub const ODOO_SQL: &str = include_str!("odoo.sql");

/// Creates `database` on `cluster` and loads [`ODOO_SQL`] into it.
pub fn create_odoo_database(cluster: &PgCluster, database: &str) -> Result<()> {
    cluster.create_database(database)?;
    cluster.psql(database, ODOO_SQL).map(drop)
}

/// Writes `content` where Odoo would under `filestore` and returns its `store_fname`.
pub fn write_file(filestore: &Path, content: &[u8]) -> Result<String> {
    let sha1 = hex::encode(Sha1::digest(content));
    let store_fname = format!("{}/{sha1}", &sha1[..2]);
    let dir = filestore.join(&sha1[..2]);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = filestore.join(&store_fname);
    std::fs::write(&path, content).map_err(|e| Error::io("write", &path, e))?;
    Ok(store_fname)
}

/// One `ir_attachment` row per file (its name is its `store_fname`).
pub fn attach(cluster: &PgCluster, database: &str, files: &[String]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = files
        .iter()
        .map(|f| format!("('{f}', 'account.move', '{f}', '{}')", &f[3..]))
        .collect();
    cluster
        .psql(
            database,
            &format!(
                "INSERT INTO ir_attachment (name, res_model, store_fname, checksum) VALUES {}",
                values.join(",")
            ),
        )
        .map(drop)
}

/// What Odoo's `manifest.json` says about the dumped database.
#[derive(Debug, Clone)]
pub struct ZipManifest {
    pub version: String,
    pub major_version: String,
}

impl Default for ZipManifest {
    fn default() -> Self {
        Self {
            version: "19.0".into(),
            major_version: "19.0".into(),
        }
    }
}

/// The folder Odoo's database manager zips (`odoo/service/db.py` `dump_db`): `pg_dump
/// --no-owner` as `dump.sql`, the filestore under `filestore/`, `manifest.json`.
#[derive(Debug)]
pub struct OdooDump {
    dir: tempfile::TempDir,
}

impl OdooDump {
    pub fn new(
        cluster: &PgCluster,
        database: &str,
        filestore: Option<&Path>,
        manifest: &ZipManifest,
    ) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("create", Path::new("/tmp"), e))?;
        let pg_dump = cluster.bin_dir().join("pg_dump");
        let status = std::process::Command::new(&pg_dump)
            .args(["--no-owner", "--format=p", "-d"])
            .arg(cluster.conninfo(database))
            .arg(format!("--file={}", dir.path().join("dump.sql").display()))
            .status()
            .map_err(|e| Error::io("run", &pg_dump, e))?;
        if !status.success() {
            return Err(Error::new(
                vigia_core::ErrorKind::Database,
                format!("pg_dump of {database} failed: {status}"),
            ));
        }
        if let Some(files) = filestore {
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(files)
                .arg(dir.path().join("filestore"))
                .status()
                .map_err(|e| Error::io("run", Path::new("cp"), e))?
                .success();
            if !ok {
                return Err(Error::internal(format!("cp -a {} failed", files.display())));
            }
        }
        let modules = cluster.psql(
            database,
            "SELECT coalesce(json_object_agg(name, latest_version), '{}') FROM ir_module_module \
             WHERE state = 'installed'",
        )?;
        let pg_version = cluster.psql(database, "SHOW server_version")?;
        let text = format!(
            r#"{{"odoo_dump": "1", "db_name": "{database}", "version": "{}", "version_info": [19, 0, 0, "final", 0, ""], "major_version": "{}", "pg_version": "{}", "modules": {modules}}}"#,
            manifest.version,
            manifest.major_version,
            pg_version.trim()
        );
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        Ok(Self { dir })
    }

    /// `dump.sql`, to edit before zipping.
    pub fn sql_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dump.sql")
    }

    /// Zips the folder with Python's `zipfile` as Odoo's `osutil.zip_dir` does (`dump.sql`
    /// first); `deflated` false stores the entries uncompressed.
    pub fn zip(&self, zip: &Path, deflated: bool) -> Result<()> {
        let script = r"
import os, sys, zipfile
src, out, method = sys.argv[1], sys.argv[2], sys.argv[3]
names = []
for root, dirs, files in os.walk(src):
    for f in files:
        names.append(os.path.relpath(os.path.join(root, f), src))
names.sort(key=lambda n: n != 'dump.sql')
compression = zipfile.ZIP_DEFLATED if method == 'deflated' else zipfile.ZIP_STORED
with zipfile.ZipFile(out, 'w', compression=compression, allowZip64=True) as z:
    for n in names:
        z.write(os.path.join(src, n), n)
";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(self.dir.path())
            .arg(zip)
            .arg(if deflated { "deflated" } else { "stored" })
            .output()
            .map_err(|e| {
                Error::io(
                    "run (install the Debian package python3)",
                    Path::new("python3"),
                    e,
                )
            })?;
        if !out.status.success() {
            return Err(Error::internal(format!(
                "zipping the Odoo dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

/// What the health checks read beyond the backup tests' schema, added to `database`:
/// `ir_cron.nextcall` (every job due within the hour), an empty `mail_mail`,
/// `l10n_cr_einvoice_document.email_sent` (true) and the module's two empty queues (DOMAIN.md
/// section 3). Kept apart so that the backup tests' row counts stay as they are.
pub fn add_operations_tables(cluster: &PgCluster, database: &str) -> Result<()> {
    cluster
        .psql(
            database,
            "ALTER TABLE ir_cron ADD COLUMN nextcall timestamp NOT NULL \
               DEFAULT (now() AT TIME ZONE 'UTC' + interval '30 minutes'); \
             CREATE TABLE mail_mail (id serial PRIMARY KEY, state varchar NOT NULL, \
               subject varchar); \
             ALTER TABLE l10n_cr_einvoice_document ADD COLUMN email_sent boolean DEFAULT true; \
             UPDATE l10n_cr_einvoice_document SET email_sent = true; \
             CREATE TABLE l10n_cr_einvoice_retry_queue (id serial PRIMARY KEY, \
               state varchar NOT NULL, next_attempt timestamp, retry_count int DEFAULT 0); \
             CREATE TABLE l10n_cr_pos_offline_queue (id serial PRIMARY KEY, \
               state varchar NOT NULL)",
        )
        .map(drop)
}
