//! The Odoo-stack fixture the library and binary tests share: a throwaway cluster whose
//! database `odoo` holds the module's tables, a known secret row and 31 filestore files (one
//! with a known secret content), and the probes tests make of it afterwards.

use std::collections::BTreeSet;
use std::path::Path;

use sha1::{Digest, Sha1};
use vigia_core::Result;

use crate::odoo::{attach, create_odoo_database, write_file};
use crate::postgres::PgCluster;

/// A partner row that must never be readable in a store.
pub const SECRET_ROW: &str = "Distribuidora Secreta Limitada";
/// A filestore file's content that must never be readable in a store.
pub const SECRET_FILE: &[u8] = b"<Clave>50628112600310112345600100001010000000001100000001</Clave>";

#[derive(Debug)]
pub struct OdooStack {
    pub cluster: PgCluster,
    /// The database `odoo`'s filestore folder.
    pub filestore: tempfile::TempDir,
    /// The filestore files, `xx/sha1`, each attached in `ir_attachment`.
    pub files: Vec<String>,
}

/// Creates database `odoo` on `cluster` with the module's tables, and `count` filestore files
/// (`adjunto <i>`) written under `filestore` and attached; returns their `store_fname`s.
pub fn odoo_database(cluster: &PgCluster, filestore: &Path, count: usize) -> Result<Vec<String>> {
    create_odoo_database(cluster, "odoo")?;
    let files = (0..count)
        .map(|i| write_file(filestore, format!("adjunto {i}").as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    attach(cluster, "odoo", &files)?;
    Ok(files)
}

impl OdooStack {
    /// A new cluster with [`odoo_database`] (30 files), plus [`SECRET_ROW`] and a file
    /// holding [`SECRET_FILE`].
    pub fn start() -> Result<Self> {
        let cluster = PgCluster::start()?;
        let filestore = tempfile::tempdir()
            .map_err(|e| vigia_core::Error::io("create", Path::new("/tmp"), e))?;
        let mut files = odoo_database(&cluster, filestore.path(), 30)?;
        cluster.psql(
            "odoo",
            &format!("INSERT INTO res_partner (name) VALUES ('{SECRET_ROW}')"),
        )?;
        let secret = write_file(filestore.path(), SECRET_FILE)?;
        attach(&cluster, "odoo", std::slice::from_ref(&secret))?;
        files.push(secret);
        Ok(Self {
            cluster,
            filestore,
            files,
        })
    }

    /// Every public table's rows of `database`, in a stable order, hashed: `table md5` lines.
    pub fn checksums(&self, database: &str) -> Result<String> {
        let tables = self.cluster.psql(
            database,
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )?;
        let mut lines = Vec::new();
        for t in tables.lines() {
            let sum = self.cluster.psql(
                database,
                &format!(
                    "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                     FROM public.{t} t"
                ),
            )?;
            lines.push(format!("{t} {}", sum.trim()));
        }
        Ok(lines.join("\n"))
    }

    /// The cluster's databases, one per line.
    pub fn databases(&self) -> Result<String> {
        self.cluster
            .psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
    }

    /// How many throwaway roles (`vigia_tmp_*`) the cluster holds: none may outlive a run.
    pub fn throwaway_roles(&self) -> Result<String> {
        Ok(self
            .cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'vigia\\_tmp\\_%'",
            )?
            .trim()
            .to_owned())
    }
}

/// The sha1 of every file in a filestore folder (its content, not its name).
pub fn sha1_set(dir: &Path) -> Result<BTreeSet<String>> {
    let io = |e, p: &Path| vigia_core::Error::io("read", p, e);
    let mut out = BTreeSet::new();
    for sub in std::fs::read_dir(dir).map_err(|e| io(e, dir))?.flatten() {
        let sub = sub.path();
        for file in std::fs::read_dir(&sub).map_err(|e| io(e, &sub))?.flatten() {
            let content = std::fs::read(file.path()).map_err(|e| io(e, &file.path()))?;
            out.insert(hex::encode(Sha1::digest(&content)));
        }
    }
    Ok(out)
}
