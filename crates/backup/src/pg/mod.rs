//! PostgreSQL for backups: a connection holding an exported snapshot, `pg_dump` reading that
//! snapshot (so the dump, the filestore list and the row counts are one point in time), and
//! `pg_restore` reading a dump back.

mod client;
mod dump;
mod restore;
mod restore_file;
mod role;
mod rows;
mod snapshot;
mod target;
mod tls;

pub(crate) use client::{collect_stderr, tail};
pub use dump::PgDump;
pub use restore::{RestoreMode, pg_restore_stream};
pub use restore_file::{RestoreOptions, pg_restore_file};
pub use role::{
    THROWAWAY_PREFIX, ThrowawayRole, can_create_roles, drop_leftover_role, role_exists,
};
pub(crate) use rows::has_table;
pub use rows::row_counts;
pub use snapshot::SnapshotSession;
pub use target::PgTarget;
pub(crate) use target::{db_error, quote_ident};
