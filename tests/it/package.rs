//! Shipping: the Debian package scripts/package builds from this build's binaries, unpacked
//! into a scratch root and every part of it used: the binary, a man page, a completion, the
//! units under `systemd-analyze verify`, and the units the packaged binary's `init --systemd`
//! writes for a real stack, each ExecStart run as systemd would run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::stack;

const UNITS: [&str; 7] = [
    "vigia-backup.service",
    "vigia-backup.timer",
    "vigia-prune.service",
    "vigia-verify.service",
    "vigia-verify.timer",
    "vigia-health.service",
    "vigia-health.timer",
];

/// `program`, failing the test with the Debian package to install when it is missing.
fn tool(program: &str, package: &str) -> Command {
    let found = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|dir| Path::new(dir).join(program).is_file());
    assert!(
        found,
        "{program} not found: install the Debian package {package} (scripts/test does)"
    );
    Command::new(program)
}

fn ok(command: &mut Command) -> String {
    let out: Output = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_debian_package_holds_everything_and_each_part_works_from_a_scratch_root() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_vigia")).parent().unwrap();
    assert!(
        bin_dir.join("libvigia_ffi.so").is_file(),
        "{}/libvigia_ffi.so is missing: run cargo build -p vigia-ffi (scripts/test does)",
        bin_dir.display()
    );
    let out = tempfile::tempdir().unwrap();
    // Under root's tightest umask too: dpkg-deb refuses a control folder others cannot read.
    let deb = ok(tool("bash", "bash")
        .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package"))
        .args(["--fast", "--from"])
        .arg(bin_dir)
        .arg("--out")
        .arg(out.path()));
    let deb = PathBuf::from(deb.trim());
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!(
            "vigia_{}_{}.deb",
            env!("CARGO_PKG_VERSION"),
            ok(tool("dpkg", "dpkg").arg("--print-architecture")).trim()
        )
    );

    holds_every_part(&deb);
    let version = ok(tool("dpkg-deb", "dpkg")
        .args(["-f"])
        .arg(&deb)
        .arg("Version"));
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
    let depends = ok(tool("dpkg-deb", "dpkg")
        .args(["-f"])
        .arg(&deb)
        .arg("Depends"));
    assert!(
        depends.starts_with("libc6 (>= 2.") && depends.contains("postgresql-client"),
        "{depends}"
    );

    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    ok(tool("dpkg", "dpkg").arg("-x").arg(&deb).arg(root));
    let vigia = root.join("usr/bin/vigia");
    assert_eq!(
        ok(Command::new(&vigia).arg("--version")).trim(),
        format!("vigia {}", env!("CARGO_PKG_VERSION"))
    );
    let template = ok(Command::new(&vigia).args(["init", "--print"]));
    assert!(template.contains("[backup.encryption]"), "{template}");
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/doc/vigia/examples/vigia.toml")).unwrap(),
        template
    );
    let page = ok(tool("man", "man-db")
        .env("MANWIDTH", "100")
        .args(["-P", "cat", "-l"])
        .arg(root.join("usr/share/man/man1/vigia-backup.1.gz")));
    assert!(page.contains("vigia-backup"), "{page}");
    assert!(page.contains("--allow-missing-files"), "{page}");
    ok(tool("bash", "bash")
        .arg("-n")
        .arg(root.join("usr/share/bash-completion/completions/vigia")));

    // The package's units run /usr/bin/vigia with /etc/vigia/vigia.toml.
    let units = root.join("usr/lib/systemd/system");
    let backup = std::fs::read_to_string(units.join("vigia-backup.service")).unwrap();
    assert!(
        backup.contains("\nExecStart=/usr/bin/vigia --config /etc/vigia/vigia.toml backup\n"),
        "{backup}"
    );
    // systemd-analyze resolves dependencies (timers.target, network-online.target) in the
    // root: the system's own units beside the package's.
    ok(tool("cp", "coreutils")
        .arg("-an")
        .arg("/usr/lib/systemd/system/.")
        .arg(&units));
    analyze(
        tool("systemd-analyze", "systemd")
            .arg(format!("--root={}", root.display()))
            .env("MANPATH", root.join("usr/share/man"))
            .current_dir(&units)
            .arg("verify")
            .args(UNITS),
    );
    // The packaged binary writes units for a config of the operator's, and they run.
    units_written_by(&vigia).await;

    // Without the binary the same check fails: it is not a check that cannot fail.
    std::fs::remove_file(&vigia).unwrap();
    let out = tool("systemd-analyze", "systemd")
        .arg(format!("--root={}", root.display()))
        .env("MANPATH", root.join("usr/share/man"))
        .args(["verify", "vigia-backup.service"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
}

/// `dpkg-deb -c`: every part is there, owned by root.
fn holds_every_part(deb: &Path) {
    let listing = ok(tool("dpkg-deb", "dpkg").arg("-c").arg(deb));
    let mut expected = vec![
        "./usr/bin/vigia".to_owned(),
        "./usr/lib/libvigia_ffi.so".to_owned(),
        "./usr/include/vigia.h".to_owned(),
        "./usr/share/man/man1/vigia.1.gz".to_owned(),
        "./usr/share/man/man1/vigia-backup-list.1.gz".to_owned(),
        "./usr/share/bash-completion/completions/vigia".to_owned(),
        "./usr/share/zsh/vendor-completions/_vigia".to_owned(),
        "./usr/share/fish/vendor_completions.d/vigia.fish".to_owned(),
        "./usr/share/doc/vigia/examples/vigia.toml".to_owned(),
        "./usr/share/doc/vigia/copyright".to_owned(),
        "./usr/share/doc/vigia/changelog.Debian.gz".to_owned(),
    ];
    expected.extend(UNITS.map(|u| format!("./usr/lib/systemd/system/{u}")));
    for path in &expected {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{listing}"
        );
    }
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "{listing}"
    );
}

/// `systemd-analyze verify ...`: an unknown key is only a warning, so any output fails.
fn analyze(command: &mut Command) {
    let out = command.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{command:?}: {}\n{said}",
        out.status
    );
}

/// `vigia init --systemd` run by `vigia` for a real stack: the units pass `systemd-analyze
/// verify`, and each service's ExecStart runs as systemd would run it.
async fn units_written_by(vigia: &Path) {
    let s = stack(0);
    let hook = vigia_sandbox::webhook::WebhookServer::start(0, 200)
        .await
        .unwrap();
    s.edit_config(|text| format!("{text}\n[alerting]\nwebhook-url = \"env:VIGIA_TEST_HOOK\"\n"));
    let dir = Path::new(&s.config).parent().unwrap().to_owned();
    // The secret reaches the units through their EnvironmentFile, never the unit itself.
    std::fs::write(
        dir.join("vigia.env"),
        format!("VIGIA_TEST_HOOK={}\n", hook.url()),
    )
    .unwrap();
    for sub in ["state", "backups"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }

    let units = dir.join("units");
    let init = || {
        let out = Command::new(vigia)
            .args([
                "--json",
                "--config",
                &s.config,
                "init",
                "--systemd",
                "--dir",
            ])
            .arg(&units)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let (code, report) = init();
    assert_eq!(code, Some(0), "{report}");
    // The stack lives in /tmp, which PrivateTmp hides: said, and nothing else is.
    let notes = report["data"]["notes"].as_array().unwrap();
    assert!(!notes.is_empty(), "{report}");
    for note in notes {
        assert!(
            note.as_str().unwrap().contains("under a temporary folder"),
            "{report}"
        );
    }
    assert_eq!(
        report["data"]["commands"][1],
        "systemctl enable --now vigia-backup.timer vigia-verify.timer vigia-health.timer"
    );
    let (code, again) = init();
    assert_eq!(code, Some(11), "never overwrites: {again}");

    let paths: Vec<PathBuf> = UNITS.iter().map(|u| units.join(u)).collect();
    analyze(
        tool("systemd-analyze", "systemd")
            .args(["verify", "--man=no"])
            .args(&paths),
    );

    odd_paths_read_back(vigia, &dir, &s.config);

    // Each service's command line as systemd would run it: its EnvironmentFile read, its
    // exit accepted only when the unit counts it a success. Backup first: the others need
    // one.
    for name in ["backup", "prune", "verify", "health"] {
        run_service(&units, name, vigia, &s.config);
    }
    let (code, list) = s.json(&["backup", "list"]);
    assert_eq!(code, Some(0), "{list}");
    assert_eq!(
        list["data"]["backups"].as_array().unwrap().len(),
        1,
        "{list}"
    );
    let verified = &list["data"]["backups"][0]["verified"];
    assert_eq!(
        (&verified["level"], &verified["ok"]),
        (&"drill".into(), &true.into()),
        "{list}"
    );
}

/// Makes `/` read-only, then each argument before `--` writable again, then runs the rest.
const STRICT: &str = "set -e; mount --rbind / /; mount -o remount,bind,ro /; \
    while [ \"$1\" != -- ]; do mount --bind \"$1\" \"$1\"; mount -o remount,bind,rw \"$1\"; shift; done; \
    shift; exec \"$@\"";

/// Runs `vigia-<name>.service`'s ExecStart as systemd would: its EnvironmentFile read, its exit
/// accepted only when the unit counts it a success.
fn run_service(units: &Path, name: &str, vigia: &Path, config: &str) {
    let text = std::fs::read_to_string(units.join(format!("vigia-{name}.service"))).unwrap();
    let unit = directives(&text);
    let exec = &unit["ExecStart"];
    assert!(
        !exec.contains(['"', '%', '$']),
        "this test splits on spaces only: {exec}"
    );
    let words: Vec<&str> = exec.split(' ').collect();
    assert_eq!(Path::new(words[0]), vigia);
    assert_eq!(&words[1..3], ["--config", config]);
    // ProtectSystem=strict as systemd makes it: the whole tree read-only in a mount namespace
    // of the command's own, but for the unit's ReadWritePaths= (PrivateTmp is not made: the
    // test's stack lives in /tmp).
    let writable: Vec<&str> = unit["ReadWritePaths"]
        .split(' ')
        .map(|p| p.trim_start_matches('-'))
        .collect();
    let mut command = tool("unshare", "util-linux");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            STRICT,
            "sh",
        ])
        .args(&writable)
        .arg("--")
        .args(&words)
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    let env_file = unit["EnvironmentFile"].trim_start_matches('-');
    for line in std::fs::read_to_string(env_file).unwrap().lines() {
        let (key, value) = line.split_once('=').unwrap();
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let code = out.status.code().unwrap();
    let accepted: Vec<i32> = unit
        .get("SuccessExitStatus")
        .map(|codes| codes.split(' ').map(|c| c.parse().unwrap()).collect())
        .unwrap_or_default();
    assert!(
        code == 0 || accepted.contains(&code),
        "{exec}: exit {code}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words_expected: &[&str] = match name {
        "verify" => &["verify", "--level", "drill"],
        "health" => &["health", "--alert"],
        other => &[other][..],
    };
    assert_eq!(&words[3..], words_expected, "{exec}");
}

/// A binary and a config whose paths hold a space, a specifier and a dollar: quoted and
/// escaped so that systemd reads them back as written.
fn odd_paths_read_back(vigia: &Path, dir: &Path, config: &str) {
    let odd = dir.join("odd dir 100%$x");
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(vigia, odd.join("vigia")).unwrap();
    std::fs::copy(config, odd.join("vigia.toml")).unwrap();
    let out = Command::new(odd.join("vigia"))
        .arg("--config")
        .arg(odd.join("vigia.toml"))
        .args(["init", "--systemd", "--dir"])
        .arg(odd.join("units"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    analyze(
        tool("systemd-analyze", "systemd")
            .args(["verify", "--man=no"])
            .args(UNITS.iter().map(|u| odd.join("units").join(u))),
    );
}

/// `Key=value` lines of a unit (the last one of a key wins).
fn directives(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with(['#', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
