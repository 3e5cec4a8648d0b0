//! vigia-pg's integration tests, one binary: throwaway roles and TLS against a real cluster.

mod throwaway_role;
mod tls;

use vigia_core::config::SslMode;
use vigia_pg::PgTarget;
use vigia_sandbox::postgres::PgCluster;

/// The cluster as a target (Unix socket, its own client binaries).
fn target(cluster: &PgCluster) -> PgTarget {
    PgTarget {
        host: cluster.socket_dir().to_str().unwrap().to_owned(),
        port: cluster.port(),
        user: cluster.user().to_owned(),
        password: None,
        bin_dir: Some(cluster.bin_dir().to_path_buf()),
        sslmode: SslMode::Prefer,
        sslrootcert: None,
    }
}
