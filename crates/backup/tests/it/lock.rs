//! The store lock: created and renewed with conditional writes, so one run holds it; a live
//! holder blocks (or is waited for); a dead or silent one is taken over, its silence measured
//! on the store's clock; a holder that was taken over stops writing and says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::common::Fixture;
use crate::common::hooked::Hooked;
use vigia_backup::format::{LOCK_KEY, NameKey};
use vigia_backup::{LockRecord, LockRequest, StoreLock};
use vigia_core::ErrorKind;
use vigia_core::config::Secret;
use vigia_core::ports::store::ObjectStore;
use vigia_core::process::ProcessIdentity;

fn key() -> NameKey {
    NameKey::from_secret(&Secret::new(hex::encode([3u8; 32]))).unwrap()
}

fn parts(fixture: &Fixture) -> (Arc<dyn ObjectStore>, Option<std::path::PathBuf>) {
    match fixture {
        Fixture::Local(dir, s) => (s.clone(), Some(dir.path().join("store"))),
        Fixture::S3(_, s) => (s.clone(), None),
    }
}

fn request(owner: &str, wait: Duration, dir: Option<&std::path::Path>) -> LockRequest {
    LockRequest::new(owner, wait, dir)
}

async fn acquire(fixture: &Fixture, owner: &str, wait: Duration) -> vigia_core::Result<StoreLock> {
    let (store, dir) = parts(fixture);
    StoreLock::acquire(store, &key(), &request(owner, wait, dir.as_deref())).await
}

/// Someone else's record, written as their run would (not through our lock).
fn record(process: ProcessIdentity, heartbeat_at: jiff::Timestamp) -> LockRecord {
    LockRecord {
        owner: "backup".into(),
        process,
        started_at: heartbeat_at,
        heartbeat_at,
        nonce: hex::encode(vigia_core::random_bytes::<8>()),
    }
}

fn another_host() -> ProcessIdentity {
    ProcessIdentity {
        host: "another-host".into(),
        pid: 1,
        boot_id: "another-boot".into(),
        pid_ns: "pid:[1]".into(),
        start_ticks: 7,
    }
}

async fn write_record(store: &dyn ObjectStore, record: &LockRecord) {
    let bytes = key().seal(record).unwrap();
    store.put_bytes(LOCK_KEY, bytes.into()).await.unwrap();
}

async fn current_record(store: &dyn ObjectStore) -> LockRecord {
    key()
        .open(&store.get_bytes(LOCK_KEY).await.unwrap(), LOCK_KEY)
        .unwrap()
}

/// Makes the lock object look written `age` ago to the store (its file's mtime: both the
/// local store and s3s-fs report that as LastModified).
fn age_lock_object(fixture: &Fixture, age: Duration) {
    let path = match fixture {
        Fixture::Local(dir, _) => dir.path().join("store").join(LOCK_KEY),
        Fixture::S3(server, _) => server
            .bucket_dir(crate::common::BUCKET)
            .join("prod")
            .join(LOCK_KEY),
    };
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_refuses_a_second_holder_naming_the_first() {
    for fixture in [Fixture::local(), Fixture::s3().await] {
        let first = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
        assert!(
            first.conditions_honoured(),
            "{}",
            fixture.store().location()
        );
        let err = acquire(&fixture, "prune", Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.message().contains("backup (pid"), "{}", err.message());
        first.release().await.unwrap();
        assert!(
            fixture
                .store()
                .head(LOCK_KEY)
                .await
                .unwrap_err()
                .is_not_found()
        );
        acquire(&fixture, "prune", Duration::ZERO).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_wait_waits_for_the_holder_to_finish() {
    let fixture = Fixture::s3().await;
    let first = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
    let releaser = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        first.release().await.unwrap();
    };
    let (second, ()) = tokio::join!(
        acquire(&fixture, "restore", Duration::from_secs(10)),
        releaser
    );
    assert_eq!(second.unwrap().record().owner, "restore");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_process_is_gone_is_taken_over_at_once() {
    let fixture = Fixture::s3().await;
    let dead = ProcessIdentity {
        pid: 999_999_999,
        ..ProcessIdentity::current()
    };
    write_record(fixture.store(), &record(dead, jiff::Timestamp::now())).await;
    let taken = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
    assert_eq!(taken.record().process.pid, std::process::id());
    assert!(
        taken.sole_writer(),
        "nothing of a dead process still writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_sharing_the_host_name_is_not_judged_from_this_pid_namespace() {
    // Its pid means nothing here: judged "gone", its live run's objects would be swept.
    let fixture = Fixture::local();
    let in_container = ProcessIdentity {
        pid: 999_999_999,
        pid_ns: "pid:[4026532999]".into(),
        ..ProcessIdentity::current()
    };
    write_record(
        fixture.store(),
        &record(in_container, jiff::Timestamp::now()),
    )
    .await;
    let err = acquire(&fixture, "backup", Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_measured_on_the_store_clock_not_the_holders() {
    for fixture in [Fixture::local(), Fixture::s3().await] {
        let store = fixture.store();
        // A holder whose clock is ten minutes slow, renewing right now: alive.
        let slow_clock = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
        write_record(store, &record(another_host(), slow_clock)).await;
        let err = acquire(&fixture, "backup", Duration::ZERO)
            .await
            .unwrap_err();
        assert!(err.message().contains("on host another-host"), "{err}");

        // A holder whose clock looks fine, but whose record the store has not seen rewritten
        // for ten minutes: dead or cut off, taken over (but not swept after at once).
        write_record(store, &record(another_host(), jiff::Timestamp::now())).await;
        age_lock_object(&fixture, Duration::from_mins(10));
        let taken = acquire(&fixture, "backup", Duration::ZERO).await.unwrap();
        assert!(!taken.sole_writer(), "a silent holder may still be writing");
        assert_eq!(current_record(store).await.nonce, taken.record().nonce);
        assert!(
            store.list("locks/").await.unwrap().len() == 1,
            "the clock probe is removed"
        );
        taken.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_was_taken_over_stops_renewing_and_stops_its_job() {
    for fixture in [Fixture::local(), Fixture::s3().await] {
        let (store, dir) = parts(&fixture);
        let mut asked = request("backup", Duration::ZERO, None);
        asked.heartbeat = Duration::from_millis(100);
        let held = StoreLock::acquire(Arc::clone(&store), &key(), &asked)
            .await
            .unwrap();
        held.ensure_held().await.unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        held.ensure_held().await.expect("renewals keep it ours");

        // Another host judged it stale (a long network cut) and took it over.
        let successor = record(another_host(), jiff::Timestamp::now());
        write_record(store.as_ref(), &successor).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            current_record(store.as_ref()).await,
            successor,
            "the old holder's heartbeat must not write over its successor"
        );
        let err = held.ensure_held().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(
            err.message()
                .contains("taken over by backup (pid 1 on host another-host"),
            "{err}"
        );
        held.release().await.unwrap();
        assert_eq!(current_record(store.as_ref()).await, successor);
        drop(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_conditional_writes_is_detected_and_still_read_first() {
    let fixture = Fixture::s3().await;
    let ignoring = || Hooked::ignoring_conditions(fixture.shared_store());
    let ask = request("backup", Duration::ZERO, None);
    let first = StoreLock::acquire(ignoring(), &key(), &ask).await.unwrap();
    assert!(!first.conditions_honoured());
    assert!(
        !first.sole_writer(),
        "another run may hold it too: sweep nothing at once"
    );
    first.ensure_held().await.unwrap();
    // A second run reads before it writes: it does not overwrite a live holder.
    let err = StoreLock::acquire(ignoring(), &key(), &ask)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    first.ensure_held().await.unwrap();
    first.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_is_recognised_as_ours() {
    // The SDK retries a request whose answer was lost; the retry of a conditional write
    // that landed finds its condition false (412). The record's nonce says it is ours.
    let fixture = Fixture::local();
    let store = Hooked::losing_replies(fixture.shared_store());
    let mut ask = request("backup", Duration::ZERO, None);
    ask.heartbeat = Duration::from_millis(100);
    let lock = StoreLock::acquire(store, &key(), &ask).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    lock.ensure_held()
        .await
        .expect("renewals with lost answers keep it ours");
    assert_eq!(
        current_record(fixture.store()).await.nonce,
        lock.record().nonce
    );
    lock.release().await.unwrap();
    assert!(
        fixture
            .store()
            .head(LOCK_KEY)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A store on moto's server, whose conditional writes are atomic; a fresh bucket each time.
async fn moto_store(server: &vigia_sandbox::moto::MotoServer) -> Arc<dyn ObjectStore> {
    let options = vigia_backup::S3Options {
        bucket: "vigia-lock".into(),
        prefix: "prod/".into(),
        endpoint: Some(server.endpoint()),
        region: vigia_sandbox::s3::REGION.into(),
        path_style: true,
        credentials: Some((Secret::new("moto".into()), Secret::new("moto".into()))),
    };
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(options.region.clone()))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "moto", "moto", None, None, "test",
        ))
        .build();
    let _ = aws_sdk_s3::Client::from_conf(config)
        .create_bucket()
        .bucket(&options.bucket)
        .send()
        .await;
    Arc::new(vigia_backup::S3Store::connect(options).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_acquirers_on_an_atomic_store_have_one_winner() {
    let server = vigia_sandbox::moto::MotoServer::start().unwrap();
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..16u64 {
            // Writes that reach the server at different times, as from hosts far apart:
            // a write-then-read-back lock lets several of them win.
            let delay = Duration::from_millis(i * 150 * (round % 2));
            let store = Hooked::wrap(
                moto_store(&server).await,
                Arc::new(move |op, _| {
                    Box::pin(async move {
                        if op.starts_with("put") {
                            tokio::time::sleep(delay).await;
                        }
                    })
                }),
            );
            tasks.push(tokio::spawn(async move {
                StoreLock::acquire(store, &key(), &request("backup", Duration::ZERO, None)).await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(lock) => winners.push(lock),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Locked, "{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        assert!(winners[0].conditions_honoured());
        for lock in winners {
            lock.release().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_race_on_a_stale_lock_has_one_winner() {
    // Two runs judge the same stale record and send their takeovers together; If-Match on
    // its ETag lets one win (the local store's conditional write is atomic).
    let fixture = Fixture::local();
    write_record(
        fixture.store(),
        &record(another_host(), jiff::Timestamp::now()),
    )
    .await;
    age_lock_object(&fixture, Duration::from_mins(10));
    let both_judged = Arc::new(tokio::sync::Barrier::new(2));
    let racer = |owner: &'static str| {
        let barrier = Arc::clone(&both_judged);
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let store = Hooked::wrap(
            fixture.shared_store(),
            Arc::new(move |op, key| {
                // The first conditional write of the lock is the takeover.
                let takeover = op == "put_bytes_if"
                    && key == LOCK_KEY
                    && writes.fetch_add(1, Ordering::SeqCst) == 0;
                let barrier = Arc::clone(&barrier);
                Box::pin(async move {
                    if takeover {
                        barrier.wait().await;
                    }
                })
            }),
        );
        async move { StoreLock::acquire(store, &key(), &request(owner, Duration::ZERO, None)).await }
    };
    let (a, b) = tokio::join!(racer("backup"), racer("prune"));
    let winners = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(
        winners,
        1,
        "a: {:?}\nb: {:?}",
        a.as_ref().err(),
        b.as_ref().err()
    );
    let loser = a.err().or(b.err()).unwrap();
    assert_eq!(loser.kind(), ErrorKind::Locked, "{loser}");
}
