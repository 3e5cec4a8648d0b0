//! The C example compiles with gcc against the committed header and runs against the library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/<profile>/deps, where cargo put the libvigia_ffi.so built for this test run (the
/// copy in target/<profile> is refreshed only by `cargo build`).
fn lib_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn build_example(out_dir: &Path) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = crate_dir.join("../../examples/c/config_check.c");
    let binary = out_dir.join("config_check");
    let lib_dir = lib_dir();
    assert!(
        lib_dir.join("libvigia_ffi.so").exists(),
        "libvigia_ffi.so in {}",
        lib_dir.display()
    );
    let gcc = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir.join("include"))
        .arg(&source)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lvigia_ffi")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc ({e}): install the Debian package `gcc`"));
    assert!(
        gcc.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    binary
}

/// Runs the example against the library it was linked with: cargo's LD_LIBRARY_PATH would
/// otherwise win over the rpath and may hold an older build.
fn run(binary: &Path, config: &Path) -> std::process::Output {
    Command::new(binary)
        .arg(config)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap()
}

#[test]
fn c_example_checks_and_shows_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_example(dir.path());
    let config = dir.path().join("vigia.toml");
    std::fs::write(
        &config,
        "[odoo]\ndatabase = \"odoo\"\n[environments.staging]\nodoo.database = \"odoo_staging\"\n",
    )
    .unwrap();
    let out = run(&binary, &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["command"], "config check");
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1]["command"], "config show");
    assert_eq!(lines[1]["data"]["settings"]["odoo"]["database"], "odoo");
}

#[test]
fn c_example_exits_with_the_config_error_code() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_example(dir.path());
    let config = dir.path().join("vigia.toml");
    std::fs::write(&config, "[odoo]\ndatabse = \"odoo\"\n").unwrap();
    let out = run(&binary, &config);
    assert_eq!(out.status.code(), Some(10));
    let envelope: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["error"]["context"]["line"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `odoo.databse`"));
}
