//! The config loader: every environment the text defines, and the default one.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vigia_core::ConfigSource;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source =
        ConfigSource::from_text(text, Some(Path::new("/etc/vigia"))).expect("an absolute base dir");
    let _ = source.load(None);
    for name in source.environments().unwrap_or_default() {
        let _ = source.load(Some(&name));
    }
});
