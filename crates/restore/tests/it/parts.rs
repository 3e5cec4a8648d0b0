//! Store format 2 (issue 17): a restore decrypts nothing to disk, and tables whose names are
//! `pg_dump` patterns are dumped exactly once each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{SECRET_ROW, checksums, stack};
use vigia_backup::DumpLayout;

/// What the spool folder held while a restore ran: every file seen there, and those whose
/// bytes were plaintext (a pg_dump archive's header, or the fixture's secret row).
#[derive(Debug, Default)]
struct Seen {
    files: Vec<PathBuf>,
    plaintext: Vec<PathBuf>,
}

/// Watches `spool` from another thread until stopped: the files listed in it and the
/// unnamed ones this process holds open there (`/proc/self/fd`), each read whole.
struct SpoolWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Seen>,
}

impl SpoolWatch {
    fn start(spool: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (spool, flag) = (spool.to_path_buf(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            while !flag.load(Ordering::Relaxed) {
                look(&spool, &mut seen);
            }
            seen
        });
        Self { stop, thread }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn look(spool: &Path, seen: &mut Seen) {
    let listed = std::fs::read_dir(spool)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.path(), e.path()));
    let open = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| Some((std::fs::read_link(fd.path()).ok()?, fd.path())))
        .filter(|(target, _)| target.starts_with(spool));
    for (name, path) in listed.chain(open) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if !seen.files.contains(&name) {
            seen.files.push(name.clone());
        }
        let plain = bytes.windows(5).any(|w| w == b"PGDMP")
            || bytes
                .windows(SECRET_ROW.len())
                .any(|w| w == SECRET_ROW.as_bytes());
        if plain && !seen.plaintext.contains(&name) {
            seen.plaintext.push(name);
        }
    }
}

/// Format 2 spools its data streams still encrypted and keeps the schema in memory: no
/// plaintext byte of the dump is in the spool folder at any time. The same watch catches
/// format 1's decrypted spool file, so it can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_2_restore_writes_no_plaintext_to_the_spool() {
    for (layout, plaintext) in [
        (DumpLayout::Parts { streams: 2 }, false),
        (DumpLayout::OneArchive, true),
    ] {
        let fixture = Fixture::local();
        let mut s = stack(&fixture);
        s.job.layout = layout;
        let backup = s.job.run().await.unwrap();
        let spool = s.keys.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let root = tempfile::tempdir().unwrap();

        let watch = SpoolWatch::start(&spool);
        s.restore_job(&backup.id, "odoo_restored", root.path())
            .run()
            .await
            .unwrap();
        let seen = watch.stop();
        assert!(!seen.files.is_empty(), "{layout:?}: the watch saw no spool");
        assert_eq!(
            !seen.plaintext.is_empty(),
            plaintext,
            "{layout:?}: {seen:?}"
        );
        assert_eq!(checksums(&s, "odoo_restored"), checksums(&s, "odoo"));
    }
}

/// Table names are `--table` patterns to pg_dump: unquoted, `res_partne?` would also match
/// `res_partner` (two streams would hold its rows, or none), `RES_PARTNER` would fold to
/// `res_partner`, and `we"ird.*` would match nothing (pg_dump fails). Quoted, each name
/// matches its own table only; the checksums of every table tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_named_like_patterns_are_dumped_once_each() {
    let fixture = Fixture::local();
    let mut s = stack(&fixture);
    s.job.layout = DumpLayout::Parts { streams: 4 };
    // The largest tables: each gets a `--table` stream of its own, not the last one.
    s.cluster
        .psql(
            "odoo",
            "CREATE TABLE public.\"res_partne?\" AS SELECT i, repeat('x', 200) AS pad \
             FROM generate_series(1, 20000) i; \
             CREATE TABLE public.\"we\"\"ird.*\" AS SELECT i, repeat('y', 200) AS pad \
             FROM generate_series(1, 15000) i; \
             CREATE TABLE public.\"RES_PARTNER\" AS SELECT i, repeat('z', 200) AS pad \
             FROM generate_series(1, 10000) i",
        )
        .unwrap();
    let backup = s.job.run().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    s.restore_job(&backup.id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap();
    let restored = checksums(&s, "odoo_restored");
    assert_eq!(restored, checksums(&s, "odoo"));
    assert!(restored.contains("\"we\"\"ird.*\" "), "{restored}");
}
