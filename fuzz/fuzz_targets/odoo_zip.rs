//! A zip from Odoo's database manager, read from a file as `restore --from-odoo-zip` reads it:
//! what it says it holds, then its filestore written into a new folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_odoo::OdooZipInfo;
use vigia_odoo::filestore::NewFolder;
use vigia_odoo::zip::extract_filestore;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let zip = dir.path().join("odoo.zip");
    std::fs::write(&zip, data).expect("write the zip");
    if let Ok(info) = OdooZipInfo::read(&zip) {
        let _ = info.describe();
    }
    // Extracted even when `read` refused the zip: every path through the reader is covered.
    let folder = NewFolder::create(&dir.path().join("filestore")).expect("a new folder");
    let _ = extract_filestore(&zip, &folder);
});
