//! What runs that died leave in the store: `backups/<id>/` without an index (objects written,
//! commit never reached) and temporary files or unfinished uploads (`clean_dead_writes`).

use std::collections::BTreeMap;

use vigia_core::Result;
use vigia_core::ports::store::{ObjectMeta, ObjectStore};

use crate::lock::{StoreLock, sweep_clock_probes};

/// The index-less `backups/<id>/` folders in `listing` (a LIST of `backups/`), by id.
pub fn index_less(listing: &[ObjectMeta]) -> BTreeMap<String, Vec<ObjectMeta>> {
    let mut dirs: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for meta in listing {
        if let Some((id, _)) = meta
            .key
            .strip_prefix("backups/")
            .and_then(|rest| rest.split_once('/'))
        {
            dirs.entry(id.to_owned()).or_default().push(meta.clone());
        }
    }
    dirs.retain(|_, files| !files.iter().any(|m| m.key.ends_with("/index.json")));
    dirs
}

/// Under a store lock no earlier holder can still write to: removes every index-less
/// `backups/<id>/` (and its verification records) and the dead writes. Returns the folders.
pub async fn sweep_dead_runs(store: &dyn ObjectStore, lock: &StoreLock) -> Result<Vec<String>> {
    let dirs = index_less(&store.list("backups/").await?);
    for (id, files) in &dirs {
        lock.ensure_held().await?;
        for meta in files {
            store.delete(&meta.key).await?;
        }
        for record in store.list(&format!("verifications/{id}/")).await? {
            store.delete(&record.key).await?;
        }
    }
    lock.ensure_held().await?;
    let cleaned = store.clean_dead_writes().await? + sweep_clock_probes(store).await?;
    let swept: Vec<String> = dirs.keys().map(|id| format!("backups/{id}/")).collect();
    if !swept.is_empty() || cleaned > 0 {
        tracing::info!(
            "swept what dead runs left: {} folders without an index ({}), {cleaned} unfinished writes",
            swept.len(),
            swept.join(", ")
        );
    }
    Ok(swept)
}
