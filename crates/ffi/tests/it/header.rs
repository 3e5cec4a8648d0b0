//! The committed header is what cbindgen generates from the source: regenerate it with
//! `VIGIA_BLESS=1 cargo test -p vigia-ffi --test it header` after changing the ABI.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses the crate")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/vigia.h");
    if std::env::var_os("VIGIA_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/vigia.h is stale: run `VIGIA_BLESS=1 cargo test -p vigia-ffi --test it header` and commit it"
    );
}
