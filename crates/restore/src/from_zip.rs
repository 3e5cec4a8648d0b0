//! `vigia restore --from-odoo-zip FILE`: a backup made by Odoo's database manager into a new
//! database, the same way as a Vigia backup (then the same neutralization and swap). What the
//! zip holds is shown before anything happens; a zip from another Odoo series than the live
//! database's is refused (that needs an upgrade, not a restore).

use std::path::Path;

use vigia_core::ports::progress::ProgressEvent;
use vigia_core::{Error, Result};

use super::phases::Phases;
use super::{Names, RestoreJob, Restored};
use crate::copy::CopySpec;
use crate::untrusted::CopyOwner;
use vigia_core::ports::database::Database as _;
use vigia_core::task::blocking;
use vigia_odoo::OdooZipInfo;
use vigia_odoo::einvoice;
use vigia_odoo::filestore::NewFolder;
use vigia_odoo::zip::{extract_filestore, import_sql};
use vigia_pg::{PgAdmin, PgTarget};

impl RestoreJob {
    pub(super) async fn restore_zip(
        &self,
        zip: &Path,
        names: &Names,
        phases: &mut Phases<'_>,
    ) -> Result<(Restored, OdooZipInfo)> {
        phases.start("check the zip");
        let info = blocking("restore", {
            let zip = zip.to_path_buf();
            move || OdooZipInfo::read(&zip)
        })
        .await?;
        self.progress.report(&ProgressEvent::Message {
            text: info.describe(),
        });
        self.same_odoo_series(&info).await?;
        let filestore_dir = if info.filestore_files == 0 {
            None
        } else {
            let root = self.filestore_root(&format!(
                "{} has {} filestore files",
                zip.display(),
                info.filestore_files
            ))?;
            std::fs::create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
            super::ensure_free(&root, info.filestore_bytes, "the zip's filestore")?;
            Some(root.join(&names.restored))
        };
        self.refuse_existing(&names.restored, filestore_dir.as_deref())
            .await?;
        self.target.check_psql_restrict()?;
        let role = self
            .untrusted_role(
                self.trust_zip,
                "pass --trust-zip to run the zip's SQL with its rights (only for a zip you trust)",
            )
            .await?;
        self.cancel.check()?;

        let spec = CopySpec {
            names,
            filestore: filestore_dir.clone(),
            role,
            import_phase: "import the database and the filestore",
            check_phase: "analyze",
        };
        let database = async |owner: &CopyOwner| {
            let (target, db, zip) = (
                owner.target().clone(),
                names.restored.clone(),
                zip.to_path_buf(),
            );
            let set_role = self.options.role.clone().filter(|_| owner.trusted());
            blocking("restore", move || {
                import_sql(&target, &db, &zip, set_role.as_deref())
            })
            .await
        };
        let filestore = async {
            let Some(dir) = filestore_dir else {
                return Ok(());
            };
            let (zip, live) = (zip.to_path_buf(), self.live_filestore());
            blocking("restore", move || {
                let folder = NewFolder::create(&dir)?;
                extract_filestore(&zip, &folder)?;
                folder.settle(live.as_deref())
            })
            .await
        };
        let check = async |owner: &CopyOwner, counts| {
            if names.aside.is_some() && !self.accept_einvoice_loss {
                self.no_newer_einvoices(zip, owner.target(), &names.restored)
                    .await?;
            }
            Ok(counts)
        };
        let restored = self
            .make_copy(spec, phases, database, filestore, check)
            .await?;
        Ok((restored, info))
    }

    /// Refuses to swap in the zip's copy when the live database has e-invoice documents newer
    /// than the newest one the copy holds (the zip has no date of its own).
    async fn no_newer_einvoices(&self, zip: &Path, copy: &PgTarget, restored: &str) -> Result<()> {
        let since = einvoice::newest(&copy.connect_guarded(restored).await?).await?;
        let live = self.target.connect(&self.live_db).await?;
        match einvoice::created_after(&live, &since).await? {
            Some(newer) => Err(self.einvoice_refusal(
                &format!("the zip {}", zip.display()),
                &newer,
                Some(restored),
            )),
            None => Ok(()),
        }
    }

    /// Refuses a zip of another Odoo series than the live database's (when both say).
    async fn same_odoo_series(&self, info: &OdooZipInfo) -> Result<()> {
        let Some(series) = &info.major_version else {
            return Ok(());
        };
        let Some(live) = odoo_version(&self.target, &self.live_db).await? else {
            return Ok(());
        };
        // base's latest_version is the series followed by the module's own version.
        if vigia_odoo::schema::in_series(&live, series) {
            return Ok(());
        }
        Err(Error::invalid_input(format!(
            "{} is a backup of Odoo {series}, while the live database {} runs Odoo {live}: \
             moving between series needs an upgrade (OpenUpgrade), not a restore; nothing was \
             created",
            info.file.display(),
            self.live_db
        )))
    }
}

/// The installed `base` module's version in `database`; None when there is no such
/// database or it is not an Odoo database.
async fn odoo_version(target: &PgTarget, database: &str) -> Result<Option<String>> {
    if !PgAdmin::connect(target).await?.exists(database).await? {
        return Ok(None);
    }
    vigia_odoo::schema::base_version(&target.connect(database).await?)
        .await
        .map_err(|e| {
            Error::new(
                e.kind(),
                e.message().replacen(
                    "cannot read the Odoo version",
                    &format!("cannot read {database}'s Odoo version"),
                    1,
                ),
            )
        })
}
