//! A store's `index.json`: anyone who can write to the store can put bytes there; only a
//! name-key holder can make them pass the mac.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_backup::format::index_key;
use vigia_backup::fuzzing::open_index;
use vigia_fuzz::{ID, name_key, sealed};

fuzz_target!(|data: &[u8]| {
    let key = name_key();
    let store_key = index_key(&ID.parse().expect("a backup id"));
    let _ = open_index(&key, data, &store_key);
    if let Some(sealed) = sealed(&key, data)
        && let Ok(index) = open_index(&key, &sealed, &store_key)
    {
        // `backup list` shows every index's size.
        let _ = index.size_bytes();
    }
});
