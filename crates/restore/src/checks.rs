//! What a copy is checked against: row counts (one rule, `count_differences`), and free
//! space before anything is written.

use std::collections::BTreeMap;
use std::path::Path;

use vigia_backup::format::count_differences;
use vigia_core::{Error, ErrorKind, Result};
use vigia_pg::{PgTarget, db_error, row_counts};

/// `counts` must equal `expected` (from `source`: the backup's manifest, or the copy
/// before the swap), table for table: `count_differences`' rule.
pub(crate) fn compare(
    database: &str,
    counts: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
    source: impl std::fmt::Display,
) -> Result<()> {
    let differ = count_differences(counts, expected, &source.to_string());
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Integrity,
        format!(
            "the restored database {database} does not match {source} (left for \
             inspection): {}",
            differ.join("; ")
        ),
    ))
}

/// Refuses to start when `dir`'s filesystem has less than `needed` bytes free.
pub(crate) fn ensure_free(dir: &Path, needed: u64, what: &str) -> Result<()> {
    let free =
        vigia_core::disk::free_bytes(dir).map_err(|e| Error::io("check free space on", dir, e))?;
    if free >= needed {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Io,
        format!(
            "not enough free space in {} for {what}: {needed} bytes needed, {free} free; free \
             some, or point it elsewhere",
            dir.display()
        ),
    ))
}

/// ANALYZE (Odoo's own restore skips it) and the exact row counts, as `target` (the copy's
/// owner until it is handed back) in two guarded sessions side by side: each scans on a core
/// of its own.
pub(crate) async fn analyze(target: &PgTarget, database: &str) -> Result<BTreeMap<String, u64>> {
    // Boxed: two sessions side by side would make every caller's future large.
    Box::pin(analyze_and_count(target, database)).await
}

async fn analyze_and_count(target: &PgTarget, database: &str) -> Result<BTreeMap<String, u64>> {
    let (analyzing, counting) = tokio::try_join!(
        target.connect_guarded(database),
        target.connect_guarded(database)
    )?;
    let analyzed = async {
        analyzing
            .batch_execute("ANALYZE")
            .await
            .map_err(|e| db_error(&format!("ANALYZE of {database} failed"), &e))
    };
    // Boxed: two sessions' futures side by side would make every caller's future large.
    let (analyzed, counts) =
        Box::pin(async { tokio::join!(analyzed, row_counts(&counting)) }).await;
    analyzed?;
    counts
}
