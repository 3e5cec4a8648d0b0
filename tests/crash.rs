//! A backup SIGKILLed at each phase (fail points, built with `--features failpoints`): the
//! killed run is never listed, no pg_dump outlives it, and the next backup succeeds and sweeps
//! what it left (index-less folders, temporary files, unfinished S3 multipart uploads).

#[path = "it/common/mod.rs"]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{Stack, stack};
use vigia_sandbox::odoo::{attach, write_file};
use vigia_sandbox::s3::{REGION, S3Server};

const POINTS: [&str; 4] = [
    "backup.snapshot",
    "backup.upload",
    "backup.filestore",
    "backup.manifest",
];

/// Enough rows for a dump of several 8 MiB parts after compression.
const BIG_ROWS: u32 = 600_000;

fn backups(s: &Stack) -> Vec<String> {
    let (code, list) = s.json(&["backup", "list"]);
    assert_eq!(code, Some(0), "{list}");
    list["data"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `program` processes talking to this stack's cluster, waiting up to 5 s for them to go
/// (the parent-death signal is delivered asynchronously).
fn survivors(s: &Stack, program: &str) -> Vec<String> {
    let socket = s
        .cluster
        .as_ref()
        .unwrap()
        .socket_dir()
        .display()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(program) && c.contains(&socket))
            .collect();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill_at(s: &Stack, point: &str) {
    let out = s.run(
        &["backup"],
        &[("VIGIA_FAILPOINT", &format!("{point}:kill"))],
    );
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{point}: the fail point kills the run ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The store's files under `sub` (relative paths), for a local store.
fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

fn index_less_dirs(backups_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(backups_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.path().join("index.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_backup_killed_at_any_phase_is_never_listed_and_the_next_one_sweeps_it() {
    let s = stack(BIG_ROWS);
    let store = s.dir.path().join("backups");
    let filestore = s.dir.path().join("data/filestore/odoo");
    for point in POINTS {
        // A new file each round, so that the filestore phase has something to upload.
        let file = write_file(&filestore, point.as_bytes()).unwrap();
        attach(s.cluster.as_ref().unwrap(), "odoo", &[file]).unwrap();
        let before = backups(&s);
        kill_at(&s, point);
        assert_eq!(backups(&s), before, "{point}: the killed run is not listed");
        assert_eq!(survivors(&s, "pg_dump"), Vec::<String>::new(), "{point}");
        let left = files_under(&store.join(".partial")).len()
            + index_less_dirs(&store.join("backups")).len();
        if point == "backup.snapshot" {
            assert_eq!(left, 0, "{point}: nothing was written yet");
        } else {
            assert!(
                left > 0,
                "{point}: the dead run left a temporary file or a folder"
            );
        }

        let (code, next) = s.json(&["backup"]);
        assert_eq!(code, Some(0), "{point}: the next backup succeeds: {next}");
        assert_eq!(backups(&s).len(), before.len() + 1);
        assert!(
            index_less_dirs(&store.join("backups")).is_empty(),
            "{point}: the dead run's folder is swept"
        );
        assert!(
            files_under(&store.join(".partial")).is_empty(),
            "{point}: temporary files are swept"
        );
    }
    let (code, verify) = s.json(&["verify", "--all"]);
    assert_eq!(code, Some(0), "{verify}");
}

/// A stack backing up to `bucket` on `server` under `prefix`.
fn s3_stack(server: &S3Server, bucket: &str, prefix: &str) -> Stack {
    let mut s = stack(BIG_ROWS);
    s.edit_config(|text| {
        text.replace(
            "store = \"local\"\npath = \"backups\"\n",
            "store = \"s3\"\n",
        )
        .replace(
            "[backup.encryption]",
            &format!(
                "[backup.s3]\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\n\
                 region = \"{REGION}\"\npath-style = true\n\
                 access-key = \"env:VIGIA_TEST_S3_ACCESS\"\n\
                 secret-key = \"env:VIGIA_TEST_S3_SECRET\"\n\n[backup.encryption]",
                server.endpoint()
            ),
        )
    });
    s.env = vec![
        ("VIGIA_TEST_S3_ACCESS".into(), server.access_key().into()),
        ("VIGIA_TEST_S3_SECRET".into(), server.secret_key().into()),
    ];
    s
}

/// The multipart uploads left open on `server`.
fn open_uploads(server: &S3Server) -> Vec<String> {
    std::fs::read_dir(server.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload_id-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_mid_multipart_upload_is_aborted_by_the_next_run() {
    let server = S3Server::start().await.unwrap();
    server.create_bucket("vigia-crash").unwrap();
    let s = s3_stack(&server, "vigia-crash", "");
    let uploads = open_uploads;
    tokio::task::block_in_place(|| {
        kill_at(&s, "backup.upload");
        assert!(backups(&s).is_empty());
        assert_eq!(uploads(&server).len(), 1, "one multipart upload left open");
        let journal = s.dir.path().join("state/s3-uploads");
        assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 1);

        let (code, next) = s.json(&["backup"]);
        assert_eq!(code, Some(0), "{next}");
        assert_eq!(
            uploads(&server),
            Vec::<String>::new(),
            "the dead upload was aborted"
        );
        assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
        assert_eq!(backups(&s).len(), 1);
    });
}

fn restored_databases(s: &Stack) -> Vec<String> {
    s.cluster
        .as_ref()
        .unwrap()
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'vigia_restore_%'",
        )
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A failure after the swap (a fail point where the post-swap check runs): swapped back, the
/// live database as it was, the restored copy kept, non-zero exit.
#[test]
fn a_failure_after_the_swap_swaps_back() {
    let s = stack(0);
    let id = s.backup_then_change();
    let out = s.run(
        &["--json", "restore", &id],
        &[("VIGIA_FAILPOINT", "restore.after_swap:error")],
    );
    let envelope: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(30), "{envelope}");
    let message = envelope["error"]["message"].as_str().unwrap();
    assert!(message.contains("swapped back"), "{message}");
    assert_eq!(
        s.partners("odoo"),
        "40",
        "the live database is the one it was"
    );
    assert_eq!(restored_databases(&s).len(), 1, "the restored copy is kept");
    assert!(
        !alert_silence(&s).exists(),
        "the swap's alert silence ends with the undo"
    );
    let live_files = s.dir.path().join("data/filestore/odoo");
    let count: usize = std::fs::read_dir(&live_files)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(count, 12);
}

/// A backup, then a restore of it SIGKILLed at fail point `point`: it died of the signal, no
/// pg_restore survives it, and the live database is untouched. The backup's id.
fn restore_killed_at(s: &Stack, point: &str) -> String {
    let (_, backup) = s.json(&["backup"]);
    let id = backup["data"]["id"].as_str().unwrap().to_owned();
    let failpoint = format!("{point}:kill");
    let out = s.run(&["restore", &id], &[("VIGIA_FAILPOINT", &failpoint)]);
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    assert_eq!(survivors(s, "pg_restore"), Vec::<String>::new());
    assert_eq!(s.partners("odoo"), "50", "the live database is untouched");
    id
}

/// SIGKILL while pg_restore runs: the live database is untouched and no pg_restore survives.
#[test]
fn a_restore_killed_during_pg_restore_leaves_the_live_database_alone() {
    let s = stack(BIG_ROWS / 4);
    let id = restore_killed_at(&s, "restore.pg_restore");

    // The half-restored copy and any spool file are listed, then removed with --apply.
    let (code, listed) = s.json(&["restore", "--cleanup"]);
    assert_eq!(code, Some(0), "{listed}");
    assert_eq!(listed["command"], "restore cleanup");
    assert_eq!(listed["data"]["applied"], false);
    let suffix = id.to_lowercase().replace('-', "_");
    assert_eq!(
        listed["data"]["databases"],
        serde_json::json!([format!("vigia_restore_{suffix}")])
    );
    // Format 1 decrypts its archive to a named spool file; format 2 spools nothing named.
    let spooled = usize::from(common::store_format() == 1);
    assert_eq!(
        listed["data"]["spool_files"].as_array().unwrap().len(),
        spooled
    );
    let (code, applied) = s.json(&["restore", "--cleanup", "--apply"]);
    assert_eq!(code, Some(0), "{applied}");
    assert!(restored_databases(&s).is_empty());
    let (_, again) = s.json(&["restore", "--cleanup"]);
    assert_eq!(again["data"]["databases"], serde_json::json!([]));
    assert_eq!(again["data"]["spool_files"], serde_json::json!([]));
    assert_eq!(s.partners("odoo"), "50");
    // And the restore now goes through (the dead run's lock is taken over).
    let (code, restored) = s.json(&["restore", &id]);
    assert_eq!(code, Some(0), "{restored}");
}

/// SIGKILL while a format 2 restore's data streams load (each its own pg_restore, fed
/// decrypted bytes): the live database is untouched, no pg_restore survives, nothing named is
/// left in the spool (the streams were spooled encrypted, in unnamed files), and the copy is
/// cleaned up like any other.
#[test]
fn a_restore_killed_while_its_data_streams_load_leaves_the_live_database_alone() {
    let s = stack(BIG_ROWS / 4);
    s.edit_config(|text| text.replace("\nformat = 1\n", "\nformat = 2\n"));
    let id = restore_killed_at(&s, "restore.stream");

    let (code, listed) = s.json(&["restore", "--cleanup", "--apply"]);
    assert_eq!(code, Some(0), "{listed}");
    let suffix = id.to_lowercase().replace('-', "_");
    assert_eq!(
        listed["data"]["databases"],
        serde_json::json!([format!("vigia_restore_{suffix}")])
    );
    assert_eq!(listed["data"]["spool_files"], serde_json::json!([]));
    assert!(restored_databases(&s).is_empty());
    let (code, restored) = s.json(&["restore", &id]);
    assert_eq!(code, Some(0), "{restored}");
    assert_eq!(s.partners("odoo"), "50");
}

/// What the name `odoo` is after a kill at each statement of the swap, in order: what
/// `Stack::partners` says of it (the live database has 40 partners, the backup 50).
const SWAP_POINTS: [(&str, &str); 12] = [
    ("restore.swap.journal", "40"),
    (
        "restore.swap.close_live",
        "not currently accepting connections",
    ),
    (
        "restore.swap.end_live_sessions",
        "not currently accepting connections",
    ),
    ("restore.swap.live_aside", "does not exist"),
    ("restore.swap.close_restored", "does not exist"),
    ("restore.swap.end_restored_sessions", "does not exist"),
    (
        "restore.swap.restored_live",
        "not currently accepting connections",
    ),
    (
        "restore.swap.folder_aside",
        "not currently accepting connections",
    ),
    (
        "restore.swap.folder_live",
        "not currently accepting connections",
    ),
    (
        "restore.swap.open_aside",
        "not currently accepting connections",
    ),
    // The restored copy, in place but never checked.
    ("restore.swap.open_live", "50"),
    ("restore.after_swap", "50"),
];

fn swap_journal(s: &Stack) -> std::path::PathBuf {
    s.dir.path().join("state/swap-journal.json")
}

fn alert_silence(s: &Stack) -> std::path::PathBuf {
    s.dir.path().join("state/alerts/silence-default.json")
}

/// The live filestore folder's inode: the same folder, not a copy with the same files.
fn live_folder(s: &Stack) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(s.dir.path().join("data/filestore/odoo"))
        .unwrap()
        .ino()
}

/// The live database, its contents and its folder are those of before the restore; no
/// journal is left.
fn assert_live_as_before(s: &Stack, folder: u64, what: &str) {
    assert_eq!(
        s.partners("odoo"),
        "40",
        "{what}: the live database is back, open"
    );
    assert_eq!(
        live_folder(s),
        folder,
        "{what}: the live filestore folder is back"
    );
    assert!(!swap_journal(s).exists(), "{what}: the journal is removed");
}

#[test]
fn a_restore_killed_at_any_statement_of_the_swap_is_undone_by_the_next_command() {
    let s = stack(0);
    let id = s.backup_then_change();
    let folder = live_folder(&s);
    for (point, live) in SWAP_POINTS {
        let out = s.run(
            &["restore", &id],
            &[("VIGIA_FAILPOINT", &format!("{point}:kill"))],
        );
        assert_eq!(out.status.signal(), Some(9), "{point}: {:?}", out.status);
        assert!(swap_journal(&s).exists(), "{point}: the journal is written");
        // Alerts were silenced for the swap; killed, the silence ends by itself.
        let silence: serde_json::Value =
            serde_json::from_slice(&std::fs::read(alert_silence(&s)).unwrap()).unwrap();
        assert_eq!(silence["by"], "vigia restore", "{point}: {silence}");
        let until: jiff::Timestamp = silence["until"].as_str().unwrap().parse().unwrap();
        assert!(until <= jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30));
        assert!(
            s.partners("odoo").contains(live),
            "{point}: odoo is {live} until the next command, not {}",
            s.partners("odoo")
        );

        match point {
            // Any next restore command undoes it first: a cleanup, a restore beside.
            "restore.swap.live_aside" => {
                let (code, listed) = s.json(&["restore", "--cleanup"]);
                assert_eq!(code, Some(0), "{point}: {listed}");
            }
            "restore.swap.restored_live" => {
                let (code, beside) = s.json(&["restore", &id, "--target-db", "beside"]);
                assert_eq!(code, Some(0), "{point}: {beside}");
            }
            _ => {
                let (code, resumed) = s.json(&["restore", "--resume"]);
                assert_eq!(code, Some(0), "{point}: {resumed}");
                assert_eq!(resumed["data"]["journal"], true, "{point}: {resumed}");
                assert_eq!(
                    resumed["data"]["recovered"]["live"], "odoo",
                    "{point}: {resumed}"
                );
            }
        }
        assert_live_as_before(&s, folder, point);
        let (code, again) = s.json(&["restore", "--resume"]);
        assert_eq!(code, Some(0), "{point}: {again}");
        assert_eq!(
            again["data"],
            serde_json::json!({"journal": false, "recovered": null}),
            "{point}: nothing left to do"
        );
        // The restored copy goes, so that the next round can restore it again.
        let (code, applied) = s.json(&["restore", "--cleanup", "--apply"]);
        assert_eq!(code, Some(0), "{point}: {applied}");
        assert_live_as_before(&s, folder, point);
    }
}

#[test]
fn an_undo_that_fails_reports_the_real_state_and_keeps_the_journal() {
    let s = stack(0);
    let id = s.backup_then_change();
    let folder = live_folder(&s);
    let (code, failed) = s.json_with(
        &["restore", &id],
        &[(
            "VIGIA_FAILPOINT",
            "restore.after_swap:error,restore.undo.live_restored:error",
        )],
    );
    assert_eq!(code, Some(30), "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(!message.contains("as it was"), "{message}");
    assert!(!message.contains("swapped back:"), "{message}");
    assert!(message.contains("odoo: missing"), "{message}");
    assert!(message.contains("vigia restore --resume"), "{message}");
    assert!(swap_journal(&s).exists(), "the journal is kept");
    assert!(s.partners("odoo").contains("does not exist"));

    let (code, resumed) = s.json(&["restore", "--resume"]);
    assert_eq!(code, Some(0), "{resumed}");
    assert_live_as_before(&s, folder, "resumed");
}

#[test]
fn an_undo_killed_halfway_is_finished_by_the_next_resume() {
    let s = stack(0);
    let id = s.backup_then_change();
    let folder = live_folder(&s);
    let out = s.run(
        &["restore", &id],
        &[(
            "VIGIA_FAILPOINT",
            "restore.after_swap:error,restore.undo.aside_live:kill",
        )],
    );
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    assert!(swap_journal(&s).exists());
    // Killed again, later in the undo this time.
    let out = s.run(
        &["restore", "--resume"],
        &[("VIGIA_FAILPOINT", "restore.undo.open_live:kill")],
    );
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    let (code, resumed) = s.json(&["restore", "--resume"]);
    assert_eq!(code, Some(0), "{resumed}");
    assert_live_as_before(&s, folder, "resumed twice");
}

#[test]
fn a_ctrl_c_during_the_swap_is_deferred_until_the_swap_is_undone() {
    let s = stack(0);
    let id = s.backup_then_change();
    let folder = live_folder(&s);
    let (code, cancelled) = s.json_with(
        &["restore", &id],
        &[("VIGIA_FAILPOINT", "restore.swap.live_aside:signal")],
    );
    assert_eq!(code, Some(20), "{cancelled}");
    assert_eq!(cancelled["error"]["kind"], "cancelled");
    let message = cancelled["error"]["message"].as_str().unwrap();
    assert!(message.contains("swapped back"), "{message}");
    assert_live_as_before(&s, folder, "cancelled");
}

#[test]
fn a_ctrl_c_after_an_interrupted_swap_was_undone_still_stops_vigia_at_once() {
    let s = stack(0);
    let id = s.backup_then_change();
    let folder = live_folder(&s);
    let out = s.run(
        &["restore", &id],
        &[("VIGIA_FAILPOINT", "restore.swap.live_aside:kill")],
    );
    assert_eq!(out.status.signal(), Some(9));
    // The next restore undoes the swap (signals deferred meanwhile), then a Ctrl-C while
    // pg_restore runs ends it as a Ctrl-C always did.
    let out = s.run(
        &["restore", &id, "--target-db", "beside"],
        &[("VIGIA_FAILPOINT", "restore.pg_restore:signal")],
    );
    assert_eq!(
        out.status.signal(),
        Some(2),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_live_as_before(&s, folder, "undone before the restore");
}

/// A drill killed after making its scratch database and throwaway role: `restore --cleanup`
/// finds both through the drill's record and removes them.
#[test]
fn a_killed_drill_leaves_what_cleanup_removes() {
    let s = stack(0);
    let (code, backup) = s.json(&["backup"]);
    assert_eq!(code, Some(0), "{backup}");
    let out = s.run(
        &["verify", "--level", "drill"],
        &[("VIGIA_FAILPOINT", "verify.drill:kill")],
    );
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    let id = backup["data"]["id"].as_str().unwrap();
    let suffix = id.to_lowercase().replace('-', "_");

    let (code, listed) = s.json(&["restore", "--cleanup"]);
    assert_eq!(code, Some(0), "{listed}");
    assert_eq!(
        listed["data"]["databases"],
        serde_json::json!([format!("vigia_drill_{suffix}")])
    );
    assert_eq!(
        listed["data"]["roles"],
        serde_json::json!([format!("vigia_tmp_drill_{suffix}")])
    );
    let (code, applied) = s.json(&["restore", "--cleanup", "--apply"]);
    assert_eq!(code, Some(0), "{applied}");
    let left = s
        .cluster
        .as_ref()
        .unwrap()
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'vigia\\_drill\\_%' UNION ALL \
             SELECT count(*) FROM pg_roles WHERE rolname LIKE 'vigia\\_tmp\\_%'",
        )
        .unwrap();
    assert_eq!(left, "0\n0");
}

/// Regression (issue 10 item 2): a backup to another store (staging's prefix in the same
/// bucket) sharing the state dir aborted production's upload from the journal. A run aborts
/// only its own store's uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_another_store_leaves_a_recorded_upload_alone() {
    let server = S3Server::start().await.unwrap();
    server.create_bucket("vigia-shared").unwrap();
    let s = s3_stack(&server, "vigia-shared", "prod/");
    tokio::task::block_in_place(|| {
        kill_at(&s, "backup.upload");
        assert_eq!(open_uploads(&server).len(), 1);
        let journal = s.dir.path().join("state/s3-uploads");

        s.edit_config(|text| text.replace("prefix = \"prod/\"", "prefix = \"staging/\""));
        let (code, staging) = s.json(&["backup"]);
        assert_eq!(code, Some(0), "{staging}");
        assert_eq!(
            open_uploads(&server).len(),
            1,
            "production's upload is left alone"
        );
        assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 1);

        s.edit_config(|text| text.replace("prefix = \"staging/\"", "prefix = \"prod/\""));
        let (code, production) = s.json(&["backup"]);
        assert_eq!(code, Some(0), "{production}");
        assert_eq!(open_uploads(&server), Vec::<String>::new());
        assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    });
}

/// A deploy SIGKILLed at every step (`deploy.<step>:kill`), then `vigia deploy --resume`
/// (it ends deployed) or `vigia rollback` from its journal alone: the database is the
/// pre-deploy one, v1 is current and serves, and no upgrade process outlives the killed
/// deploy.
#[test]
fn a_deploy_killed_at_any_step_is_rolled_back_from_its_journal() {
    use common::releases::Releases;

    let s = stack(0);
    let r = Releases::new(&s);
    let before = r.fingerprint();
    r.release("v2", "2.2.0", "CREATE TABLE l10n_cr_v2 (id int);");
    r.start_odoo();
    let steps = [
        "preflight",
        "backup",
        "stop",
        "copy",
        "upgrade",
        "hashes",
        "switch",
        "start",
        "gate",
        "public_gate",
    ];
    // Every other kill is resumed (then rolled back), the others rolled back at once.
    for (resume, step) in steps.iter().enumerate().map(|(i, s)| (i % 2 == 1, *s)) {
        let point = format!("deploy.{step}:kill");
        let killed = s.run(
            &["deploy", "--release", "v2"],
            &[("VIGIA_FAILPOINT", &point)],
        );
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{step}");
        if resume {
            // Resumed: the step runs again and the deploy ends as if never killed.
            let (code, out) = s.json(&["deploy", "--resume"]);
            assert_eq!(code, Some(0), "resumed after a kill at {step}: {out}");
            assert_eq!(out["data"]["outcome"], "deployed", "{step}");
            assert!(r.fingerprint().contains("l10n_cr_v2"), "{step}");
            assert_eq!(r.serving(), "v2", "{step}");
            assert!(survivors(&s, "releases/v2/upgrade").is_empty(), "{step}");
            let (code, out) = s.json(&["deploy", "--resume"]);
            assert_eq!(code, Some(11), "nothing left to resume: {out}");
        }
        if step == "upgrade" {
            // A killed upgrade may have half-changed the database: not resumed.
            let (code, out) = s.json(&["deploy", "--resume"]);
            assert_eq!(code, Some(11), "{out}");
            assert!(
                out["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("vigia rollback")
            );
        }
        let (code, out) = s.json(&["rollback"]);
        assert_eq!(code, Some(0), "after a kill at {step}: {out}");
        assert_eq!(r.fingerprint(), before, "after a kill at {step}");
        assert_eq!(
            std::fs::read_link(r.root().join("current")).unwrap(),
            std::path::Path::new("releases/v1"),
            "{step}"
        );
        assert_eq!(r.serving(), "v1", "{step}");
        assert_eq!(
            r.odoo(false),
            vigia_core::ports::runtime::ServiceState::Running,
            "{step}"
        );
        assert!(survivors(&s, "releases/v2/upgrade").is_empty(), "{step}");
    }

    // A rollback killed after its swap, and run again: it goes on from there.
    let (code, out) = s.json(&["deploy", "--release", "v2"]);
    assert_eq!(code, Some(0), "{out}");
    let killed = s.run(
        &["rollback"],
        &[("VIGIA_FAILPOINT", "deploy.rollback.switch:kill")],
    );
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    // The copy is back already: run again, the rollback does not swap a second time.
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    let steps: Vec<&str> = out["data"]["rollback"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"rollback.swap"), "{steps:?}");
    assert_eq!(r.fingerprint(), before);
    assert_eq!(r.serving(), "v1");
}

/// Killed once a step's work is done but before its end is recorded, then resumed: the step
/// runs again (a copy already made is made again) and the deploy ends well; a new deploy
/// waits for the killed one, and an upgrade command planted in the journal is not run.
#[test]
fn a_deploy_killed_after_a_steps_work_is_resumed() {
    use common::releases::Releases;

    let s = stack(0);
    let r = Releases::new(&s);
    let before = r.fingerprint();
    r.release("v2", "2.2.0", "CREATE TABLE l10n_cr_v2 (id int);");
    r.start_odoo();
    for step in ["copy", "switch", "public_gate"] {
        let point = format!("deploy.{step}.after:kill");
        let killed = s.run(
            &["deploy", "--release", "v2"],
            &[("VIGIA_FAILPOINT", &point)],
        );
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{step}");
        let (code, out) = s.json(&["deploy", "--release", "v2"]);
        assert_eq!(
            code,
            Some(11),
            "a new deploy waits for the killed one: {out}"
        );
        if step == "switch" {
            // The journal is state-dir's: an upgrade command planted in it is not run.
            let deploys = s.dir.path().join("state/deploys");
            let last = std::fs::read_to_string(deploys.join("last")).unwrap();
            let journal = deploys.join(last.trim()).join("journal.jsonl");
            let text = std::fs::read_to_string(&journal).unwrap();
            let planted = s.dir.path().join("planted");
            let forged = text.replacen(
                "\"upgrade_command\":\"",
                &format!("\"upgrade_command\":\"touch {} ; ", planted.display()),
                1,
            );
            assert_ne!(forged, text);
            std::fs::write(&journal, forged).unwrap();
            let (code, out) = s.json(&["deploy", "--resume"]);
            assert_eq!(code, Some(17), "{out}");
            assert!(!planted.exists());
            std::fs::write(&journal, text).unwrap();
        }
        let (code, out) = s.json(&["deploy", "--resume"]);
        assert_eq!(code, Some(0), "resumed after its {step} was done: {out}");
        assert!(r.fingerprint().contains("l10n_cr_v2"), "{step}");
        assert_eq!(r.serving(), "v2", "{step}");
        let (code, out) = s.json(&["rollback"]);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(r.fingerprint(), before, "{step}");
    }
}

/// A deploy SIGKILLed while its upgrade runs, the upgrade having started a process of its own
/// (as Odoo's upgrade does): nothing the upgrade started outlives vigia; `vigia rollback`
/// then puts the pre-deploy database back.
#[test]
fn a_deploy_killed_mid_upgrade_leaves_no_process_of_the_upgrade() {
    use common::releases::Releases;

    let s = stack(0);
    let r = Releases::new(&s);
    let before = r.fingerprint();
    r.release("v2", "2.2.0", "SELECT 1;");
    let pid_file = s.dir.path().join("upgrade-child.pid");
    std::fs::write(
        r.root().join("releases/v2/upgrade"),
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
            pid_file.display()
        ),
    )
    .unwrap();
    r.start_odoo();

    let mut deploy = s.spawn(&["deploy", "--release", "v2"]);
    let deadline = Instant::now() + Duration::from_mins(1);
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the upgrade never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    deploy.kill().unwrap();
    deploy.wait().unwrap();
    let gone = Instant::now() + Duration::from_secs(5);
    while vigia_core::process::is_running(pid) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !vigia_core::process::is_running(pid),
        "the upgrade's own process outlived the killed deploy"
    );
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(r.fingerprint(), before);
    assert_eq!(r.serving(), "v1");
}

/// Under compose, a deploy SIGKILLed between the `.env` rewrite and `up`: `--resume` ends
/// deployed (v2 named and running); killed there again, `vigia rollback` ends on v1's image,
/// pinned, named in `.env` and running, on the database before the upgrade.
#[test]
fn a_compose_deploy_killed_after_the_env_rewrite_ends_consistent() {
    use common::compose::{Compose, image_id};

    let s = stack(0);
    let c = Compose::new(&s, "pass");
    c.start_odoo();
    let (v1, v2) = (c.images[0].clone(), c.images[1].clone());
    let kill = [("VIGIA_FAILPOINT", "deploy.switch.after:kill")];
    let killed = s.run(&["deploy", "--release", &v2], &kill);
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    assert_eq!(c.named(), v2, ".env was rewritten");
    assert_eq!(c.running(), None, "stopped for the upgrade, not started");
    let (code, out) = s.json(&["deploy", "--resume"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["data"]["outcome"], "deployed");
    assert_eq!(c.named(), v2);
    assert_eq!(c.running(), Some(image_id(&v2)));
    assert_eq!(c.tables(), "l10n_cr_v2");

    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(c.running(), Some(image_id(&v1)));
    assert_eq!(c.tables(), "");
    let killed = s.run(&["deploy", "--release", &v2], &kill);
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    let (code, out) = s.json(&["rollback"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        c.named().starts_with(&format!(
            "localhost/vigia-rollback/{}/odoo:",
            c.project.name
        )),
        "{}",
        c.named()
    );
    assert_eq!(image_id(&c.named()), image_id(&v1));
    assert_eq!(c.running(), Some(image_id(&v1)));
    assert_eq!(c.tables(), "", "the database before the upgrade");
}
