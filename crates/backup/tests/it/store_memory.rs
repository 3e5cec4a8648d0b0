//! A 64 MiB object streams through each store with the bytes held in memory never above a
//! fixed bound. Every heap allocation in this test process is counted (the in-process S3
//! server's too, so its buffering counts against the S3 store).

#![allow(unsafe_code)]
// The measured figures are printed for whoever reads the test log.
#![allow(clippy::print_stderr)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{Fixture, PatternReader, check_pattern};
use vigia_backup::PART_SIZE;

struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only updates counters.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The counters are process-wide: one measurement at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OBJECT: u64 = 64 * 1024 * 1024;

/// Peak heap growth while `work` runs.
async fn peak_growth<F: Future<Output = ()>>(work: F) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    work.await;
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

async fn stream_64_mib(fixture: &Fixture, bound: usize) {
    let store = fixture.store();
    let put = peak_growth(async {
        let meta = store
            .put("big/dump.age", Box::pin(PatternReader::new(OBJECT)))
            .await
            .unwrap();
        assert_eq!(meta.size_bytes, OBJECT);
    })
    .await;
    let get = peak_growth(async {
        assert_eq!(
            check_pattern(store.get("big/dump.age", None).await.unwrap(), 0).await,
            OBJECT
        );
    })
    .await;
    eprintln!(
        "{}: peak heap growth put {put} B, get {get} B (bound {bound} B)",
        store.location()
    );
    assert!(
        put <= bound,
        "put buffered {put} bytes, above the bound of {bound}"
    );
    assert!(
        get <= bound,
        "get buffered {get} bytes, above the bound of {bound}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_streams_64_mib_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    // The write buffer and one read buffer, with room for the runtime's own allocations.
    stream_64_mib(&Fixture::local(), 2 * 1024 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_streams_64_mib_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let fixture = Fixture::s3().await;
    // Two parts on the client (one uploading, one filling) plus what the server holds of
    // the part it receives: far below the 64 MiB object (measured: 19 MiB).
    stream_64_mib(&fixture, 3 * PART_SIZE).await;
}
