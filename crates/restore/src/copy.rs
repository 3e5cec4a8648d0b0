//! The one path every copy takes, whatever its source: recorded for `--cleanup` before its
//! database exists, created, owned by a throwaway role unless trusted, the database and the
//! filestore imported side by side, reset, analyzed and checked; on any failure the copy is
//! handed back and left for `--cleanup`, never used. The sources (a Vigia backup, an Odoo
//! zip) bring only their import and their check.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vigia_core::Result;

use crate::phases::Phases;
use crate::untrusted::CopyOwner;
use crate::{Names, RestoreJob, Restored, analyze};

/// One copy to make.
pub(crate) struct CopySpec<'a> {
    pub names: &'a Names,
    /// The copy's filestore folder, when the source has files.
    pub filestore: Option<PathBuf>,
    /// The throwaway role that runs the source's SQL; None when it is trusted.
    pub role: Option<String>,
    /// The phases' names: the import, then the analysis and check.
    pub import_phase: &'static str,
    pub check_phase: &'static str,
}

impl RestoreJob {
    /// Makes the copy `spec` names: `database` imports into it as its owner while
    /// `filestore` writes its folder; `check` gets the row counts after ANALYZE and returns
    /// those the check after a swap expects.
    pub(crate) async fn make_copy(
        &self,
        spec: CopySpec<'_>,
        phases: &mut Phases<'_>,
        database: impl AsyncFnOnce(&CopyOwner) -> Result<()>,
        filestore: impl Future<Output = Result<()>>,
        check: impl AsyncFnOnce(&CopyOwner, BTreeMap<String, u64>) -> Result<BTreeMap<String, u64>>,
    ) -> Result<Restored> {
        let copy = &spec.names.restored;
        let role = spec.role.as_deref();
        let record = self.record(copy, spec.filestore.as_deref(), role)?;
        phases.start(spec.import_phase);
        self.create_database_recorded(copy, &record).await?;
        let owner = self.take_copy(copy, role).await?;
        let (imported, written) = tokio::join!(database(&owner), filestore);
        let checked = async {
            imported?;
            written?;
            owner.reset(copy).await?;
            self.cancel.check()?;
            phases.start(spec.check_phase);
            let counts = analyze(owner.target(), copy).await?;
            check(&owner, counts).await
        }
        .await;
        match checked {
            Ok(expected) => Ok(Restored {
                filestore: spec.filestore,
                expected,
                record,
                owner,
            }),
            Err(e) => {
                self.abandon(owner, copy).await;
                Err(e)
            }
        }
    }
}
