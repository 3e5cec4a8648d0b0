//! The drill: the dump (every object of it), proven to be the one the index vouches for,
//! restored into a scratch
//! database on the configured server by a throwaway role that owns only that database (so the
//! dump's SQL reaches no role and no other database), its row counts compared with the
//! manifest's, the scratch database and the role dropped whatever happened.

use std::path::PathBuf;
use vigia_core::ports::database::Database as _;

use vigia_core::{ErrorKind, Result};

use crate::copy_records::{CopyKind, CopyRecords};
use crate::format::Problem;
use crate::format::{BackupId, BackupManifest, count_differences, db_names};
use crate::keys::Identity;
use crate::proven_dump::ProvenDump;
use vigia_pg::{
    PgAdmin, PgTarget, RestoreOptions, THROWAWAY_PREFIX, ThrowawayRole, drop_abandoned_role,
    row_counts,
};

pub(super) struct Drill {
    admin: PgTarget,
    role: ThrowawayRole,
    database: String,
    /// Its record for `restore --cleanup`, removed once both are dropped.
    record: Option<PathBuf>,
}

impl Drill {
    /// The empty scratch database `vigia_drill_<id>`, owned by the throwaway role
    /// `vigia_tmp_drill_<id>` made for it; a killed drill's database and role are dropped
    /// first. `admin` needs CREATEDB and CREATEROLE.
    /// With `records`, both are recorded first, so that `restore --cleanup` finds them
    /// when the drill is killed.
    pub async fn prepare(
        admin: &PgTarget,
        id: &BackupId,
        records: Option<&CopyRecords>,
    ) -> Result<Self> {
        let database = db_names::drill_scratch(id);
        let role = role_name(id);
        drop_database(admin, &database).await?;
        drop_abandoned_role(admin, &role).await?;
        let record = records
            .map(|r| r.write(CopyKind::Drill, &database, None, Some(&role)))
            .transpose()?;
        let drill = Self {
            admin: admin.clone(),
            role: ThrowawayRole::create(admin, &role).await?,
            database,
            record,
        };
        if let Err(e) = drill.create_scratch().await {
            drill.finish().await;
            return Err(e);
        }
        Ok(drill)
    }

    async fn create_scratch(&self) -> Result<()> {
        PgAdmin::connect(&self.admin)
            .await?
            .create(&self.database)
            .await
            .map_err(|e| scratch_error(&e, "create"))?;
        self.role.own_database(&self.database).await
    }

    /// Restores `dump` (`jobs` at once where it can) and compares its row counts with the
    /// manifest's: the problems found. A dump that PostgreSQL refuses is one of them.
    pub async fn run(
        &self,
        dump: ProvenDump,
        identity: &Identity,
        manifest: &BackupManifest,
        dump_key: &str,
        jobs: u32,
    ) -> Result<Vec<Problem>> {
        let options = RestoreOptions::untrusted(jobs);
        let restored = dump
            .restore(&self.role.target(), &self.database, &options, identity)
            .await;
        Ok(match restored {
            Ok(Ok(())) => self.compare(manifest, dump_key).await,
            Ok(Err(problem)) => vec![problem],
            Err(e) if e.kind() == ErrorKind::Database => {
                let object = e.context().object.as_deref().unwrap_or(dump_key);
                vec![Problem::new(object, e.message())]
            }
            Err(e) => return Err(e),
        })
    }

    /// The restored database's exact row counts against the manifest's.
    async fn compare(&self, manifest: &BackupManifest, dump_key: &str) -> Vec<Problem> {
        // Counted as the role: the restored database is the dump's, and so is its SQL.
        let counts = match self.role.target().connect(&self.database).await {
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
        count_differences(&counts, &manifest.row_counts, "the manifest")
            .into_iter()
            .map(|difference| Problem::new(dump_key, difference))
            .collect()
    }

    /// Drops the scratch database, then the role; a failure is logged (the next drill of this
    /// backup drops both first).
    pub async fn finish(self) {
        if let Err(e) = drop_database(&self.admin, &self.database).await {
            // The role still owns the database: both stay for the next drill.
            tracing::warn!("{}", e.message());
            return;
        }
        if let Err(e) = self.role.drop().await {
            tracing::warn!("{}", e.message());
            return;
        }
        if let Some(record) = &self.record
            && let Err(e) = CopyRecords::finished(record)
        {
            tracing::warn!("{}", e.message());
        }
    }
}

async fn drop_database(admin: &PgTarget, database: &str) -> Result<()> {
    PgAdmin::connect(admin)
        .await?
        .drop(database)
        .await
        .map_err(|e| scratch_error(&e, "drop"))
}

/// PgAdmin's "cannot create \"x\"", saying which database it is.
fn scratch_error(e: &vigia_core::Error, verb: &str) -> vigia_core::Error {
    vigia_core::Error::new(
        e.kind(),
        e.message().replacen(
            &format!("cannot {verb} "),
            &format!("cannot {verb} the drill's scratch database "),
            1,
        ),
    )
}

/// `vigia_tmp_drill_20261128t021530z_k3f9`: 37 bytes.
fn role_name(id: &BackupId) -> String {
    format!("{THROWAWAY_PREFIX}drill_{}", db_names::id_part(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drill_role_name_fits_postgres() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        assert_eq!(role_name(&id), "vigia_tmp_drill_20261128t021530z_k3f9");
        assert!(role_name(&id).len() <= 63);
    }
}
