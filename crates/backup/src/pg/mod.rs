//! PostgreSQL for backups: a connection holding an exported snapshot, and `pg_dump` reading
//! that snapshot, so the dump, the filestore list and the row counts are one point in time.

mod dump;
mod snapshot;
mod target;

pub use dump::PgDump;
pub use snapshot::SnapshotSession;
pub use target::PgTarget;
