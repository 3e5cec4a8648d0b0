//! A store written by someone holding the name key (every backup host has it) and the public
//! key (issue 9): manifests naming files outside the filestore, indexes copied over other
//! backups' keys, and dumps the index does not vouch for are refused before they act.

use std::path::{Path, PathBuf};

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{Stack, databases, stack};
use vigia_backup::format::{BackupId, index_key, manifest_key};
use vigia_backup::{Selection, VerifyLevel};
use vigia_core::ErrorKind;

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(entry.path().strip_prefix(dir).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// A backup whose re-sealed manifest names three hostile entries: an absolute path under
/// `outside`, `../../../etc/x`, and a well-formed name whose sha1 is not the entry's.
/// Returns the backup and the three names.
async fn backup_with_hostile_names(s: &Stack, outside: &Path) -> (BackupId, [String; 3]) {
    let id = s.job.run().await.unwrap().id;
    let absolute = format!("{}/planted", outside.display());
    let climbing = "../../../etc/x".to_owned();
    let mut other_sha1 = String::new();
    s.rewrite_manifest(&id, |m| {
        m.filestore[0].store_fname.clone_from(&absolute);
        m.filestore[1].store_fname.clone_from(&climbing);
        let sha1 = &m.filestore[2].sha1;
        let last = if sha1.ends_with('0') { "1" } else { "0" };
        other_sha1 = format!("{}{last}", &sha1[..39]);
        m.filestore[2].store_fname = format!("{}/{other_sha1}", &other_sha1[..2]);
    })
    .await;
    let mismatched = format!("{}/{other_sha1}", &other_sha1[..2]);
    (id, [absolute, climbing, mismatched])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_names_every_manifest_entry_that_is_not_an_odoo_filestore_name() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let outside = tempfile::tempdir().unwrap();
    let (id, names) = backup_with_hostile_names(&s, outside.path()).await;

    let report = s
        .verify_job(Some(VerifyLevel::Full), Selection::Newest)
        .run()
        .await
        .unwrap();
    let result = &report.results[0];
    assert!(!result.ok, "a hostile manifest must not verify");
    let problem = &result.problems[0];
    assert_eq!(problem.object, manifest_key(&id));
    for name in &names {
        assert!(
            problem.problem.contains(name),
            "{name}: {}",
            problem.problem
        );
    }

    let err = s.access(true).show_backup(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_a_manifest_with_hostile_names_creates_nothing() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let outside = tempfile::tempdir().unwrap();
    let (id, names) = backup_with_hostile_names(&s, outside.path()).await;
    // `root/odoo_restored/../../../etc/x` is `outside/etc/x`.
    let root = outside.path().join("a/b");
    std::fs::create_dir_all(&root).unwrap();

    let err = s
        .restore_job(&id, "odoo_restored", &root)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    assert!(err.message().contains(&names[0]), "{}", err.message());
    assert_eq!(
        tree(outside.path()),
        [PathBuf::from("a"), PathBuf::from("a/b")],
        "nothing written"
    );
    assert!(!databases(&s).contains("odoo_restored"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_index_copied_over_the_newest_is_damaged_and_does_not_hide_it() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let old = s.job.run().await.unwrap().id;
    let newest = s.job.run().await.unwrap().id;
    let old_index = fixture.store().get_bytes(&index_key(&old)).await.unwrap();
    fixture
        .store()
        .put_bytes(&index_key(&newest), old_index.into())
        .await
        .unwrap();

    let list = s.access(false).list_backups().await.unwrap();
    let ids: Vec<&BackupId> = list.backups.iter().map(|b| &b.id).collect();
    assert_eq!(ids, [&old], "the copy is not listed as a backup");
    assert_eq!(list.damaged.len(), 1, "{:?}", list.damaged);
    assert_eq!(list.damaged[0].key, index_key(&newest));
    assert!(
        list.damaged[0]
            .problem
            .contains(&format!("describes backup {old}")),
        "{}",
        list.damaged[0].problem
    );

    let err = s.access(false).read_index(&newest).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    let report = s
        .verify_job(Some(VerifyLevel::Quick), Selection::One(newest.clone()))
        .run()
        .await
        .unwrap();
    assert_eq!(report.results.len(), 1);
    assert!(!report.results[0].ok);
}

/// A real `pg_dump -Fc` of a database whose CHECK constraint runs `ALTER ROLE victim VALID
/// UNTIL '2000-01-01'` for every row restored: whoever restores it alters a role, if allowed.
fn hostile_dump(s: &Stack) -> Vec<u8> {
    create_hostile(s);
    let dump = s.pg_dump("hostile", &[]);
    s.cluster.psql("postgres", "DROP DATABASE hostile").unwrap();
    assert!(victim_untouched(s));
    dump
}

/// Backup `id`'s dump replaced by the hostile database's, in the backup's format, with the
/// index vouching for it.
async fn vouch_for_a_hostile_dump(s: &Stack, id: &BackupId) {
    create_hostile(s);
    s.replace_dump_vouched(id, "hostile").await;
    s.cluster.psql("postgres", "DROP DATABASE hostile").unwrap();
    assert!(victim_untouched(s));
}

fn create_hostile(s: &Stack) {
    s.cluster.psql("postgres", "CREATE ROLE victim").unwrap();
    s.cluster.create_database("hostile").unwrap();
    s.cluster
        .psql(
            "hostile",
            "CREATE FUNCTION public.checked(i int) RETURNS boolean LANGUAGE sql AS 'SELECT true'; \
             CREATE TABLE public.res_partner (id int CHECK (public.checked(id))); \
             INSERT INTO public.res_partner VALUES (1); \
             CREATE OR REPLACE FUNCTION public.checked(i int) RETURNS boolean LANGUAGE plpgsql \
             AS $$ BEGIN EXECUTE 'ALTER ROLE victim VALID UNTIL ''2000-01-01'''; RETURN true; \
             END $$",
        )
        .unwrap();
}

fn victim_untouched(s: &Stack) -> bool {
    s.cluster
        .psql(
            "postgres",
            "SELECT rolvaliduntil IS NULL FROM pg_roles WHERE rolname = 'victim'",
        )
        .unwrap()
        == "t"
}

/// Databases and roles a drill makes: none must outlive it.
fn drill_leftovers(s: &Stack) -> String {
    s.cluster
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'vigia_drill%' UNION ALL \
             SELECT rolname FROM pg_roles WHERE rolname LIKE 'vigia_tmp%'",
        )
        .unwrap()
}

/// A `Vec` shared with the writer that fills it, to read how much the age header took.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `plain` sealed to the backup's recipient like a backup's object (zstd, then age), with a
/// zstd skippable frame after it (which every reader skips) so that it takes exactly `size`
/// stored bytes. age writes its header (of random length: it adds "grease") and a nonce
/// first, then chunks of up to 64 KiB, each with a 16-byte tag.
fn sealed_to_size(s: &Stack, plain: &[u8], size: usize) -> Vec<u8> {
    use std::io::Write;
    let recipient: age::x25519::Recipient = s.identity.public().parse().unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let out = Shared::default();
    let mut writer = encryptor.wrap_output(out.clone()).unwrap();
    let chunks = size - out.0.borrow().len();
    let content = chunks - 16 * chunks.div_ceil(64 * 1024 + 16);
    let mut compressed = zstd::encode_all(plain, vigia_backup::ZSTD_LEVEL).unwrap();
    let padding = content - compressed.len() - 8;
    compressed.extend(0x184D_2A50u32.to_le_bytes());
    compressed.extend(u32::try_from(padding).unwrap().to_le_bytes());
    compressed.resize(content, 0);
    writer.write_all(&compressed).unwrap();
    writer.finish().unwrap();
    let sealed = out.0.take();
    assert_eq!(sealed.len(), size);
    sealed
}

/// Replaces backup `id`'s dump by `plain` sealed to the recipient, of the stored size the
/// index says: what anyone with write access to the store and the public key can do,
/// without the name key.
async fn substitute_same_size(s: &Stack, id: &BackupId, plain: &[u8]) {
    let key = s.dump_keys(id).await[0].clone();
    let index = s.index(id).await;
    let size = index
        .objects
        .iter()
        .find(|o| o.key == key)
        .unwrap()
        .size_bytes;
    let sealed = sealed_to_size(s, plain, usize::try_from(size).unwrap());
    s.job.store.put_bytes(&key, sealed.into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_refuses_a_same_size_dump_the_index_does_not_vouch_for_before_restoring_it() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let id = s.job.run().await.unwrap().id;
    let dump = hostile_dump(&s);
    substitute_same_size(&s, &id, &dump).await;

    let state = tempfile::tempdir().unwrap();
    let mut job = s.verify_job(Some(VerifyLevel::Drill), Selection::Newest);
    job.state_dir = Some(state.path().to_path_buf());
    let report = job.run().await.unwrap();
    assert!(victim_untouched(&s), "the substitute's CHECK ran");
    let result = &report.results[0];
    assert!(!result.ok);
    assert_eq!(result.problems.len(), 1, "{:?}", result.problems);
    assert_eq!(result.problems[0].object, s.dump_keys(&id).await[0]);
    assert!(
        result.problems[0].problem.starts_with("sha256 mismatch"),
        "{}",
        result.problems[0].problem
    );
    assert_eq!(drill_leftovers(&s), "");
    assert_eq!(
        tree(state.path()),
        [PathBuf::from("spool")],
        "the spool is unnamed, and gone"
    );
}

/// A name-key holder can make the index vouch for any dump: the drill's pg_restore then runs
/// it, but as a throwaway role that can alter no role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_restores_as_a_throwaway_role_that_cannot_alter_roles() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let id = s.job.run().await.unwrap().id;
    vouch_for_a_hostile_dump(&s, &id).await;

    let report = s
        .verify_job(Some(VerifyLevel::Drill), Selection::Newest)
        .run()
        .await
        .unwrap();
    assert!(victim_untouched(&s), "the drill altered a role");
    let result = &report.results[0];
    assert!(!result.ok);
    let problem = &result.problems[0];
    // Format 2: whichever data stream's pg_restore failed first.
    let keys = s.dump_keys(&id).await;
    assert!(keys.len() == 1 || keys[0] != problem.object);
    assert!(keys.contains(&problem.object), "{}", problem.object);
    assert!(
        problem.problem.contains("permission denied"),
        "{}",
        problem.problem
    );
    assert_eq!(drill_leftovers(&s), "");
}

/// The same vouched dump restored (beside the live database): pg_restore runs as a throwaway
/// role, so the dump's SQL alters no role; nothing of the role is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_runs_a_vouched_dump_as_a_throwaway_role_that_cannot_alter_roles() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let id = s.job.run().await.unwrap().id;
    vouch_for_a_hostile_dump(&s, &id).await;

    let root = tempfile::tempdir().unwrap();
    let err = s
        .restore_job(&id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert!(victim_untouched(&s), "the restore altered a role");
    assert!(
        err.message().contains("permission denied"),
        "{}",
        err.message()
    );
    assert_eq!(s.throwaway_roles(), "0");
}

/// Found by review of issue 9: a dump that decompresses to far more than its manifest says (a
/// zstd bomb the index vouches for) filled the spool folder before anything failed. The
/// spool stops one byte past the manifest's size, which was checked free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_that_decompresses_past_its_manifest_size_is_stopped_at_that_size() {
    let fixture = Fixture::local();
    let s = stack(&fixture);
    let id = s.job.run().await.unwrap().id;
    let first = s.dump_keys(&id).await[0].clone();
    s.replace_vouched(&id, &first, vec![0u8; 64 << 20]).await;

    let root = tempfile::tempdir().unwrap();
    let err = s
        .restore_job(&id, "odoo_restored", root.path())
        .run()
        .await
        .unwrap_err();
    assert!(err.message().contains("more than the"), "{}", err.message());
    assert!(!databases(&s).contains("odoo_restored"));
}
