//! One contract, both stores: the local directory and S3 (an s3s-fs server over HTTP).

use crate::common::{Fixture, PatternReader, check_pattern};
use bytes::Bytes;
use vigia_backup::PART_SIZE;
use vigia_core::ports::store::StoreError;

async fn round_trip_keeps_bytes_and_size(fixture: &Fixture) {
    let store = fixture.store();
    let meta = store
        .put("backups/a/index.json", Box::pin(PatternReader::new(1000)))
        .await
        .unwrap();
    assert_eq!(meta.size_bytes, 1000);
    assert_eq!(
        store.head("backups/a/index.json").await.unwrap().size_bytes,
        1000
    );
    assert_eq!(
        check_pattern(store.get("backups/a/index.json", None).await.unwrap(), 0).await,
        1000
    );
}

async fn put_replaces_an_existing_object(fixture: &Fixture) {
    let store = fixture.store();
    store
        .put_bytes("k/x", Bytes::from_static(b"first"))
        .await
        .unwrap();
    store
        .put_bytes("k/x", Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(store.get_bytes("k/x").await.unwrap(), b"second");
}

async fn missing_key_is_a_typed_not_found(fixture: &Fixture) {
    let store = fixture.store();
    let err = store
        .get("objects/nope", None)
        .await
        .err()
        .expect("get of a missing key fails");
    assert!(
        matches!(err, StoreError::NotFound { ref key, .. } if key == "objects/nope"),
        "{err:?}"
    );
    let err = store.head("objects/nope").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    store
        .delete("objects/nope")
        .await
        .expect("deleting a missing object is not an error");
}

async fn ranged_get_returns_exactly_the_range(fixture: &Fixture) {
    let store = fixture.store();
    store
        .put("r/obj", Box::pin(PatternReader::new(100_000)))
        .await
        .unwrap();
    let reader = store.get("r/obj", Some(4_000..10_000)).await.unwrap();
    assert_eq!(check_pattern(reader, 4_000).await, 6_000);
}

async fn small_put_that_fails_halfway_leaves_nothing(fixture: &Fixture) {
    let store = fixture.store();
    let err = store
        .put(
            "fail/small",
            Box::pin(PatternReader::failing_at(10_000, 5_000)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Source { .. }), "{err:?}");
    assert!(store.head("fail/small").await.unwrap_err().is_not_found());
    assert!(
        store.list("").await.unwrap().is_empty(),
        "nothing visible after a failed put"
    );
    assert_eq!(fixture.partial_writes(), Vec::<String>::new());
}

async fn multipart_put_that_fails_halfway_leaves_nothing(fixture: &Fixture) {
    let store = fixture.store();
    let len = 3 * PART_SIZE as u64;
    let err = store
        .put(
            "fail/large",
            Box::pin(PatternReader::failing_at(len, len / 2 + 17)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Source { .. }), "{err:?}");
    assert!(store.head("fail/large").await.unwrap_err().is_not_found());
    assert!(store.list("").await.unwrap().is_empty());
    assert_eq!(
        fixture.partial_writes(),
        Vec::<String>::new(),
        "the multipart upload was aborted"
    );
}

async fn multipart_round_trip(fixture: &Fixture) {
    let store = fixture.store();
    // Not a multiple of the part size, so the last part is short.
    let len = 2 * PART_SIZE as u64 + 12_345;
    assert_eq!(
        store
            .put("big/dump.age", Box::pin(PatternReader::new(len)))
            .await
            .unwrap()
            .size_bytes,
        len
    );
    assert_eq!(store.head("big/dump.age").await.unwrap().size_bytes, len);
    assert_eq!(
        check_pattern(store.get("big/dump.age", None).await.unwrap(), 0).await,
        len
    );
    let tail = store
        .get("big/dump.age", Some(len - 100..len))
        .await
        .unwrap();
    assert_eq!(check_pattern(tail, len - 100).await, 100);
}

async fn list_pages_past_a_thousand_keys_sorted(fixture: &Fixture) {
    let store = fixture.store();
    let keys: Vec<String> = (0..1100).map(|i| format!("objects/{i:05}")).collect();
    futures::future::try_join_all(
        keys.iter()
            .map(|k| store.put_bytes(k, Bytes::from_static(b"x"))),
    )
    .await
    .unwrap();
    store
        .put_bytes("backups/b/index.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let listed = store.list("objects/").await.unwrap();
    let listed: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(listed, keys.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(store.list("").await.unwrap().len(), 1101);
}

async fn list_filters_by_prefix_and_delete_removes(fixture: &Fixture) {
    let store = fixture.store();
    for key in [
        "backups/1/index.json",
        "backups/1/dump.age",
        "backups/2/index.json",
        "objects/aa",
    ] {
        store
            .put_bytes(key, Bytes::from_static(b"data"))
            .await
            .unwrap();
    }
    let keys = |v: Vec<vigia_core::ports::store::ObjectMeta>| {
        v.into_iter().map(|m| m.key).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.list("backups/1/").await.unwrap()),
        ["backups/1/dump.age", "backups/1/index.json"]
    );
    assert_eq!(keys(store.list("backups/").await.unwrap()).len(), 3);
    store.delete("backups/1/dump.age").await.unwrap();
    assert_eq!(
        keys(store.list("backups/1").await.unwrap()),
        ["backups/1/index.json"]
    );
    assert_eq!(
        store.list("backups/1/index.json").await.unwrap()[0].size_bytes,
        4
    );
}

async fn invalid_keys_are_refused(fixture: &Fixture) {
    let store = fixture.store();
    for key in ["../escape", "/abs", "a//b", ".partial/x"] {
        let err = store
            .put_bytes(key, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidKey { .. }),
            "{key}: {err:?}"
        );
    }
}

async fn conditional_writes_refuse_a_stale_view(fixture: &Fixture) {
    use vigia_core::ports::store::WriteCondition::{Absent, Matches};
    let store = fixture.store();
    let key = "locks/test.json";
    let missing = store
        .put_bytes_if(key, Bytes::from_static(b"x"), Matches("\"nope\"".into()))
        .await
        .unwrap_err();
    assert!(
        missing.is_condition_failed(),
        "If-Match on nothing: {missing:?}"
    );
    let created = store
        .put_bytes_if(key, Bytes::from_static(b"one"), Absent)
        .await
        .unwrap();
    let first = created
        .etag
        .clone()
        .expect("a conditional write answers its ETag");
    let again = store
        .put_bytes_if(key, Bytes::from_static(b"two"), Absent)
        .await
        .unwrap_err();
    assert!(again.is_condition_failed(), "{again:?}");
    let (bytes, meta) = store.get_bytes_meta(key).await.unwrap();
    assert_eq!(
        (bytes.as_slice(), meta.etag.as_deref()),
        (&b"one"[..], Some(first.as_str()))
    );
    assert!(meta.modified.is_some());
    let renewed = store
        .put_bytes_if(key, Bytes::from_static(b"three"), Matches(first.clone()))
        .await
        .unwrap();
    assert_ne!(renewed.etag.as_deref(), Some(first.as_str()));
    let stale = store
        .put_bytes_if(key, Bytes::from_static(b"four"), Matches(first))
        .await
        .unwrap_err();
    assert!(stale.is_condition_failed(), "{stale:?}");
    assert_eq!(store.get_bytes(key).await.unwrap(), b"three");
}

/// Anyone who can write to the store can plant a huge lock record; it is refused, not read.
async fn a_small_object_read_is_bounded(fixture: &Fixture) {
    let store = fixture.store();
    let max = vigia_core::ports::store::SMALL_OBJECT_MAX;
    let big = vec![b'x'; usize::try_from(max).unwrap() + 1];
    store
        .put_bytes("locks/store.json", big.into())
        .await
        .unwrap();
    let err = store.get_bytes_meta("locks/store.json").await.unwrap_err();
    assert!(err.to_string().contains("not vigia's"), "{err}");
    let fits = vec![b'x'; usize::try_from(max).unwrap()];
    store
        .put_bytes("locks/store.json", fits.into())
        .await
        .unwrap();
    assert_eq!(
        store
            .get_bytes_meta("locks/store.json")
            .await
            .unwrap()
            .0
            .len() as u64,
        max
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::local();
                    super::$name(&fixture).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::s3().await;
                    super::$name(&fixture).await;
                }
            )*
        }
    };
}

contract!(
    round_trip_keeps_bytes_and_size,
    put_replaces_an_existing_object,
    missing_key_is_a_typed_not_found,
    ranged_get_returns_exactly_the_range,
    small_put_that_fails_halfway_leaves_nothing,
    multipart_put_that_fails_halfway_leaves_nothing,
    multipart_round_trip,
    list_pages_past_a_thousand_keys_sorted,
    list_filters_by_prefix_and_delete_removes,
    invalid_keys_are_refused,
    conditional_writes_refuse_a_stale_view,
    a_small_object_read_is_bounded,
);
