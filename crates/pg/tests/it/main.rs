//! vigia-pg's integration tests, one binary: throwaway roles and TLS against a real cluster.

mod throwaway_role;
mod tls;

use vigia_pg::PgTarget;
use vigia_sandbox::postgres::PgCluster;

/// The cluster as a target (Unix socket, its own client binaries).
fn target(cluster: &PgCluster) -> PgTarget {
    PgTarget::unix_socket(
        cluster.socket_dir(),
        cluster.port(),
        cluster.user(),
        Some(cluster.bin_dir()),
    )
}
