//! The throwaway cluster: starts, answers SQL, runs beside others, and leaves nothing behind.

use vigia_sandbox::postgres::PgCluster;

#[test]
fn cluster_answers_sql_on_its_socket() {
    let cluster = PgCluster::start().unwrap();
    assert!(cluster.socket_dir().join(".s.PGSQL.5432").exists());
    assert!(
        cluster.socket_dir().as_os_str().len() < 40,
        "short socket path"
    );
    cluster.create_database("odoo").unwrap();
    cluster
        .psql(
            "odoo",
            "CREATE TABLE t (x int); INSERT INTO t VALUES (41), (1);",
        )
        .unwrap();
    assert_eq!(cluster.psql("odoo", "SELECT sum(x) FROM t").unwrap(), "42");
    let err = cluster.psql("odoo", "SELECT * FROM missing").unwrap_err();
    assert!(err.message().contains("missing"), "{}", err.message());
}

#[test]
fn dropping_the_cluster_stops_it_and_removes_its_files() {
    let cluster = PgCluster::start().unwrap();
    let dir = cluster.socket_dir().to_path_buf();
    let pid_file = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    let pid = pid_file.lines().next().unwrap().to_owned();
    drop(cluster);
    assert!(!dir.exists(), "{} removed", dir.display());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "postgres {pid} stopped"
    );
}

#[test]
fn clusters_run_side_by_side() {
    let a = PgCluster::start().unwrap();
    let b = PgCluster::start().unwrap();
    a.create_database("only_in_a").unwrap();
    let in_b = b
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'",
        )
        .unwrap();
    assert_eq!(in_b, "0");
}

/// A TLS cluster: psql over TCP gets in with TLS (the certificate checked against the
/// cluster's CA, for `localhost`) and is refused without it.
#[cfg(feature = "tls")]
#[test]
fn a_tls_cluster_accepts_tcp_with_tls_only() {
    let cluster = PgCluster::start_tls("s3cret").unwrap();
    let root = cluster.root_cert().unwrap().to_str().unwrap().to_owned();
    let psql = |sslmode: &str| {
        std::process::Command::new(cluster.bin_dir().join("psql"))
            .args(["-X", "-A", "-t", "-d"])
            .arg(format!(
                "host=localhost port={} user=postgres dbname=postgres sslmode={sslmode} \
                 sslrootcert={root}",
                cluster.port()
            ))
            .args([
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .env("PGPASSWORD", "s3cret")
            .output()
            .unwrap()
    };
    let out = psql("verify-full");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    let out = psql("disable");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no encryption"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The socket still works, for the fixtures' own psql.
    assert_eq!(cluster.psql("postgres", "SELECT 1").unwrap(), "1");
}
