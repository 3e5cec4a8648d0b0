//! A backup's `manifest.age` once decrypted: the identity holder's store can hold any bytes
//! there; only a name-key holder can make them pass the mac.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_backup::fuzzing::open_manifest;
use vigia_fuzz::{index, name_key, sealed};

fuzz_target!(|data: &[u8]| {
    let (key, index) = (name_key(), index());
    let _ = open_manifest(&key, data, &index);
    if let Some(sealed) = sealed(&key, data) {
        let _ = open_manifest(&key, &sealed, &index);
    }
});
