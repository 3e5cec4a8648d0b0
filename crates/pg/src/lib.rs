//! PostgreSQL as Vigia uses it: connection targets (password, TLS), the client programs
//! (`pg_dump`, `pg_restore`, `psql`) run without a secret on their command line, an exported
//! snapshot that a dump and its row counts share, exact row counts, throwaway roles for SQL
//! vigia does not trust, and `PgAdmin`, the one place a database is created, renamed, closed
//! or dropped (the core `Database` port).

mod admin;
mod client;
mod dump;
mod pg_restore;
mod role;
mod rows;
mod snapshot;
mod target;
mod tls;

pub use admin::{DatabaseRow, MAINTENANCE_DB, PgAdmin};
pub use client::{ClientChild, collect_stderr, tail};
pub use dump::{DumpScope, PgDump};
pub use pg_restore::{
    Archive, RestoreMode, RestoreOptions, Section, pg_restore_file, pg_restore_stream,
};
pub use role::{
    THROWAWAY_PREFIX, ThrowawayRole, can_create_roles, drop_abandoned_role, role_exists,
};
pub use rows::{TableName, has_table, row_counts, table_sizes};
pub use snapshot::SnapshotSession;
pub use target::{PgTarget, db_error, quote_ident};
