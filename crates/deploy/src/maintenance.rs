//! `[deploy] maintenance-file`: while it exists, nginx answers 503 with the maintenance page
//! (`if (-f /srv/odoo/maintenance.on) { return 503; }`). On while Odoo is stopped for an
//! upgrade or a swap back; off once the internal checks pass. A deploy that cannot roll back
//! leaves it on, with Odoo stopped.

use std::path::PathBuf;

use vigia_core::{Error, Result};

#[derive(Debug, Clone, Default)]
pub(crate) struct Maintenance {
    pub file: Option<PathBuf>,
}

impl Maintenance {
    /// Makes the file (whole, synced), naming who made it.
    pub fn on(&self, by: &str) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        vigia_core::disk::write_durably(file, format!("{by}\n").as_bytes())
            .map_err(|e| Error::io("make the maintenance file", file, e))
    }

    /// Removes the file; already gone is fine.
    pub fn off(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        match std::fs::remove_file(file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove the maintenance file", file, e)),
        }
    }
}
