//! The drill: the dump, proven to be the one the index vouches for, restored into a scratch
//! database on the configured server, its row counts compared with the manifest's, the
//! scratch dropped whatever happened.

use vigia_core::Result;

use super::Problem;
use crate::format::{BackupId, BackupManifest};
use crate::keys::Identity;
use crate::pg::{PgTarget, RestoreMode, db_error, pg_restore_stream, quote_ident, row_counts};
use crate::seal::ProvenSpool;

/// The database the drill connects to for CREATE and DROP DATABASE.
const MAINTENANCE_DB: &str = "postgres";

pub(super) struct Drill {
    target: PgTarget,
    database: String,
}

impl Drill {
    /// Creates the empty scratch database `vigia_drill_<id>` (dropping one a killed drill left).
    pub async fn prepare(target: &PgTarget, id: &BackupId) -> Result<Self> {
        let database = scratch_name(id);
        let drill = Self {
            target: target.clone(),
            database,
        };
        let client = target.connect(MAINTENANCE_DB).await?;
        let quoted = quote_ident(&drill.database);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .await
            .map_err(|e| db_error(&format!("cannot drop the leftover {quoted}"), &e))?;
        client
            .batch_execute(&format!("CREATE DATABASE {quoted} TEMPLATE template0"))
            .await
            .map_err(|e| {
                db_error(
                    &format!(
                        "cannot create the drill's scratch database {quoted} (the [postgres] user \
                         needs CREATEDB)"
                    ),
                    &e,
                )
            })?;
        Ok(drill)
    }

    /// Restores `dump` and compares its row counts with the manifest's: the problems found.
    pub async fn run(
        &self,
        dump: ProvenSpool,
        identity: &Identity,
        manifest: &BackupManifest,
        dump_key: &str,
    ) -> Result<Vec<Problem>> {
        let target = self.target.clone();
        let mode = RestoreMode::Into {
            database: self.database.clone(),
        };
        let restored = dump
            .read(identity, move |plain| {
                pg_restore_stream(&target, &mode, plain).map(drop)
            })
            .await?;
        Ok(match restored {
            Ok(()) => self.compare(manifest, dump_key).await,
            Err(damage) => vec![Problem::new(dump_key, damage)],
        })
    }

    /// The restored database's exact row counts against the manifest's.
    async fn compare(&self, manifest: &BackupManifest, dump_key: &str) -> Vec<Problem> {
        let counts = match self.target.connect(&self.database).await {
            Ok(client) => row_counts(&client).await,
            Err(e) => Err(e),
        };
        let counts = match counts {
            Ok(counts) => counts,
            Err(e) => {
                return vec![Problem::new(
                    dump_key,
                    format!("cannot count the restored rows: {}", e.message()),
                )];
            }
        };
        let mut problems = Vec::new();
        for (table, &expected) in &manifest.row_counts {
            match counts.get(table) {
                None => problems.push(Problem::new(
                    dump_key,
                    format!("table {table} is not in the restored database"),
                )),
                Some(&restored) if restored != expected => problems.push(Problem::new(
                    dump_key,
                    format!(
                        "table {table}: {restored} rows restored, the manifest says {expected}"
                    ),
                )),
                Some(_) => {}
            }
        }
        for table in counts
            .keys()
            .filter(|t| !manifest.row_counts.contains_key(*t))
        {
            problems.push(Problem::new(
                dump_key,
                format!("table {table} was restored but the manifest does not list it"),
            ));
        }
        problems
    }

    /// Drops the scratch database; a failure is logged (the next drill drops it first).
    pub async fn finish(self) {
        let quoted = quote_ident(&self.database);
        let dropped = match self.target.connect(MAINTENANCE_DB).await {
            Ok(client) => client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.message().to_owned()),
        };
        if let Err(e) = dropped {
            tracing::warn!("the drill's scratch database {quoted} was not dropped: {e}");
        }
    }
}

/// `vigia_drill_20261128t021530z_k3f9`: 33 bytes, well under PostgreSQL's 63.
fn scratch_name(id: &BackupId) -> String {
    format!(
        "vigia_drill_{}",
        id.as_str().to_lowercase().replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_fit_postgres() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        let name = scratch_name(&id);
        assert_eq!(name, "vigia_drill_20261128t021530z_k3f9");
        assert!(name.len() <= 63);
    }
}
