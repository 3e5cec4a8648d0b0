//! How a format 2 backup shares the tables among its data streams: largest first, each to
//! the stream with the fewest bytes so far, so that the streams end close together. The last
//! stream takes every table the others do not name (`--exclude-table`), which also brings
//! the sequences' values, large objects and the tables of extensions: nothing is left out.

use vigia_core::config::BackupConfig;
use vigia_pg::{DumpScope, TableName};

use crate::format::{FORMAT_ONE_ARCHIVE, FORMAT_PARTS};

/// How a backup stores its database (`[backup] format` and `jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpLayout {
    /// Format 1: one `pg_dump` archive.
    OneArchive,
    /// Format 2: the schema, and the rows in up to `streams` streams dumped side by side.
    Parts { streams: usize },
}

impl DumpLayout {
    pub fn from_config(backup: &BackupConfig) -> Self {
        match backup.format {
            FORMAT_ONE_ARCHIVE => Self::OneArchive,
            _ => Self::Parts {
                streams: usize::try_from(backup.jobs).unwrap_or(1),
            },
        }
    }

    /// The index's and manifest's `format`.
    pub fn format(self) -> u32 {
        match self {
            Self::OneArchive => FORMAT_ONE_ARCHIVE,
            Self::Parts { .. } => FORMAT_PARTS,
        }
    }
}

/// `streams` scopes (fewer when there are fewer tables), from `tables` with their sizes.
pub fn plan_streams(tables: &[(TableName, u64)], streams: usize) -> Vec<DumpScope> {
    let streams = streams.max(1);
    let mut shares: Vec<(u64, Vec<TableName>)> = vec![(0, Vec::new()); streams];
    let mut by_size: Vec<&(TableName, u64)> = tables.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (table, size) in by_size {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one stream");
        lightest.0 += size;
        lightest.1.push(table.clone());
    }
    // The last share's tables are the ones no other stream names.
    shares.pop();
    // An empty `--table` list would dump every table: a share with no table is no stream.
    let named: Vec<Vec<TableName>> = shares
        .into_iter()
        .map(|(_, tables)| tables)
        .filter(|tables| !tables.is_empty())
        .collect();
    let rest = DumpScope::RowsExcept(named.iter().flatten().cloned().collect());
    named
        .into_iter()
        .map(DumpScope::Rows)
        .chain(std::iter::once(rest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sizes: &[u64]) -> Vec<(TableName, u64)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| (TableName::new("public", &format!("t{i}")), *size))
            .collect()
    }

    fn names(scope: &DumpScope) -> Vec<String> {
        match scope {
            DumpScope::Rows(t) | DumpScope::RowsExcept(t) => {
                t.iter().map(|t| t.name.clone()).collect()
            }
            other => panic!("not a data scope: {other:?}"),
        }
    }

    #[test]
    fn the_largest_tables_go_to_the_lightest_stream_and_the_last_takes_the_rest() {
        let plan = plan_streams(&tables(&[100, 60, 50, 10, 5]), 2);
        assert_eq!(plan.len(), 2);
        // t0 (100) | t1 (60) + t2 (50) = 110; t3 to the lighter (110 | 110); t4 to the first.
        assert_eq!(names(&plan[0]), ["t0", "t3", "t4"]);
        assert!(matches!(plan[0], DumpScope::Rows(_)));
        assert!(matches!(plan[1], DumpScope::RowsExcept(_)));
        assert_eq!(
            names(&plan[1]),
            names(&plan[0]),
            "the last excludes what the others name"
        );
    }

    #[test]
    fn one_stream_dumps_every_table_and_more_streams_than_tables_leave_none_empty() {
        assert_eq!(
            plan_streams(&tables(&[5, 1]), 1),
            [DumpScope::RowsExcept(Vec::new())]
        );
        let plan = plan_streams(&tables(&[5]), 4);
        assert_eq!(plan.len(), 2);
        assert_eq!(names(&plan[0]), ["t0"]);
        assert_eq!(names(&plan[1]), ["t0"]);
        assert_eq!(plan_streams(&[], 3), [DumpScope::RowsExcept(Vec::new())]);
    }

    #[test]
    fn three_streams_share_evenly() {
        let plan = plan_streams(&tables(&[40, 30, 30, 20, 10, 10, 10]), 3);
        // 40 | 30 | 30, then 20 -> second (50), 10 -> third (40), 10 -> first (50),
        // 10 -> third (50): 50 bytes each.
        assert_eq!(names(&plan[0]), ["t0", "t5"]);
        assert_eq!(names(&plan[1]), ["t1", "t3"]);
        assert_eq!(names(&plan[2]), ["t0", "t5", "t1", "t3"]);
    }
}
