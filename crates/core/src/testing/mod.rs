//! Test doubles of the ports (feature `testing`, for the unit tests of the crates above;
//! integration tests use the real servers): an in-memory store, a fault-injecting wrapper
//! around any store, and a runtime that records what it was asked. The fixed clock is
//! `ports::clock::FixedClock`.

mod faulty_store;
mod memory_store;
mod recording_runtime;

pub use faulty_store::FaultyStore;
pub use memory_store::MemoryStore;
pub use recording_runtime::RecordingRuntime;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::ports::store::{ObjectStore, WriteCondition};

    #[tokio::test]
    async fn the_memory_store_honours_conditions_and_logs_every_call() {
        let store = MemoryStore::default();
        let first = store
            .put_bytes_if("locks/a", "1".into(), WriteCondition::Absent)
            .await
            .unwrap();
        let again = store
            .put_bytes_if("locks/a", "2".into(), WriteCondition::Absent)
            .await
            .unwrap_err();
        assert!(again.is_condition_failed());
        let stale = WriteCondition::Matches("\"nope\"".into());
        let err = store.put_bytes_if("locks/a", "3".into(), stale).await;
        assert!(err.unwrap_err().is_condition_failed());
        let current = WriteCondition::Matches(first.etag.unwrap());
        store
            .put_bytes_if("locks/a", "4".into(), current)
            .await
            .unwrap();
        assert_eq!(store.get_bytes("locks/a").await.unwrap(), b"4");
        assert_eq!(store.ops().len(), 5);
    }

    #[tokio::test]
    async fn the_faulty_store_fails_the_nth_put_and_cuts_only_what_is_longer() {
        let memory = Arc::new(MemoryStore::default());
        let faulty = FaultyStore::new(memory);
        faulty.fail_put(2);
        faulty.put_bytes("a", "12345".into()).await.unwrap();
        faulty.put_bytes("b", "12345".into()).await.unwrap_err();
        faulty.put_bytes("b", "12345".into()).await.unwrap();
        faulty.cut_gets_after(5);
        let mut whole = Vec::new();
        let mut reader = faulty.get("a", None).await.unwrap();
        reader.read_to_end(&mut whole).await.unwrap();
        assert_eq!(whole, b"12345");
        faulty.cut_gets_after(4);
        let mut reader = faulty.get("a", None).await.unwrap();
        assert!(reader.read_to_end(&mut Vec::new()).await.is_err());
    }
}
