//! Odoo's filestore: `<data_dir>/filestore/<database>/xx/<sha1>`, owned by Odoo's user and
//! so read and written without following a link.

mod new_folder;
mod read;

use std::path::{Path, PathBuf};

use vigia_core::{Error, ErrorKind, Result};

pub use new_folder::{NewFile, NewFolder};
pub use read::{CheckedReader, open};

/// Odoo's `xx/<40 lowercase hex>` with `xx` the first two characters: a name that stays
/// inside the folder it is joined to.
pub fn is_odoo_name(store_fname: &str) -> bool {
    store_fname.split_once('/').is_some_and(|(prefix, name)| {
        prefix.len() == 2
            && name.len() == 40
            && name.starts_with(prefix)
            && name
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// `dir/xx/sha1`, refusing a `store_fname` that is not of Odoo's form (it comes from the
/// database and must never name a path outside `dir`).
pub fn file_path(dir: &Path, store_fname: &str) -> Result<PathBuf> {
    if !is_odoo_name(store_fname) {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "ir_attachment.store_fname `{store_fname}` is not of Odoo's form `xx/<sha1>`; refusing it"
            ),
        ));
    }
    Ok(dir.join(store_fname))
}
