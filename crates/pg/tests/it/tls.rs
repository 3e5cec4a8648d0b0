//! TLS for every PostgreSQL connection (issue 10 item 6): `[postgres] sslmode` and
//! `sslrootcert` with libpq's meaning, for tokio-postgres and for the client programs, against
//! a cluster that refuses TCP without TLS and whose certificate names `localhost` only.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use vigia_core::config::ConfigSource;
use vigia_pg::{PgDump, PgTarget, ThrowawayRole};
use vigia_sandbox::postgres::PgCluster;
use vigia_sandbox::tls::TestCa;

const PASSWORD: &str = "tls-s3cret";

/// A TLS-only cluster and a config folder holding the password file, the cluster's CA as
/// `root.crt` and an unrelated CA as `other-ca.crt`.
struct Tls {
    cluster: PgCluster,
    dir: tempfile::TempDir,
}

fn setup() -> Tls {
    let cluster = PgCluster::start_tls(PASSWORD).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::copy(cluster.root_cert().unwrap(), dir.path().join("root.crt")).unwrap();
    let other = TestCa::new("an unrelated CA").unwrap();
    std::fs::write(dir.path().join("other-ca.crt"), other.cert_pem()).unwrap();
    Tls { cluster, dir }
}

impl Tls {
    /// The target a config with `host` and the extra `[postgres]` lines `keys` gives.
    fn target(&self, host: &str, keys: &str) -> vigia_core::Result<PgTarget> {
        let text = format!(
            "[odoo]\ndatabase = \"odoo\"\n[postgres]\nhost = \"{host}\"\nport = {}\n\
             user = \"postgres\"\npassword = \"file:password\"\nbin-dir = \"{}\"\n{keys}\n",
            self.cluster.port(),
            self.cluster.bin_dir().display()
        );
        let config = ConfigSource::from_text(text, Some(self.dir.path()))?.load(None)?;
        PgTarget::from_config(&config)
    }

    fn socket(&self) -> String {
        self.cluster.socket_dir().display().to_string()
    }
}

/// Connects and asks the server whether this session uses TLS.
async fn session_uses_tls(target: &PgTarget) -> vigia_core::Result<bool> {
    let client = target.connect("postgres").await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

/// A whole `pg_dump` of `postgres` through the target's client command.
async fn dump(target: &PgTarget) -> std::io::Result<Vec<u8>> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        let mut dump = PgDump::spawn(&target, "postgres", None, &vigia_pg::DumpScope::Whole)?;
        let mut bytes = Vec::new();
        dump.read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_connects_with_tls_and_pg_dump_runs_over_it() {
    let s = setup();
    let target = s.target("localhost", "sslmode = \"require\"").unwrap();
    assert!(session_uses_tls(&target).await.unwrap());
    let bytes = dump(&target).await.unwrap();
    assert!(bytes.starts_with(b"PGDMP"), "a custom-format dump");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_the_default_connects_with_tls() {
    let s = setup();
    let target = s.target("localhost", "").unwrap();
    assert!(session_uses_tls(&target).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_ca_connects_to_the_name_the_certificate_holds() {
    let s = setup();
    // Relative to the config's folder, like every config path.
    let keys = "sslmode = \"verify-full\"\nsslrootcert = \"root.crt\"";
    let target = s.target("localhost", keys).unwrap();
    assert!(session_uses_tls(&target).await.unwrap());
    let bytes = dump(&target).await.unwrap();
    assert!(bytes.starts_with(b"PGDMP"));
    // A throwaway role's target is the same server the same way.
    let name = ThrowawayRole::new_name();
    let role = ThrowawayRole::create(&target, &name).await.unwrap();
    assert!(session_uses_tls(&role.target()).await.unwrap());
    role.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_ca_is_refused_naming_the_root_certificate() {
    let s = setup();
    let keys = "sslmode = \"verify-full\"\nsslrootcert = \"other-ca.crt\"";
    let target = s.target("localhost", keys).unwrap();
    let err = session_uses_tls(&target).await.unwrap_err();
    assert!(
        err.message().contains("not signed by a CA in") && err.message().contains("other-ca.crt"),
        "{}",
        err.message()
    );
    let err = dump(&target).await.unwrap_err();
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let s = setup();
    let keys = "sslmode = \"verify-full\"\nsslrootcert = \"root.crt\"";
    let target = s.target("127.0.0.1", keys).unwrap();
    let err = session_uses_tls(&target).await.unwrap_err();
    assert!(
        err.message().contains("does not name 127.0.0.1"),
        "{}",
        err.message()
    );
    let err = dump(&target).await.unwrap_err();
    assert!(
        err.to_string().contains("does not match host name"),
        "{err}"
    );

    let keys = "sslmode = \"verify-ca\"\nsslrootcert = \"root.crt\"";
    let target = s.target("127.0.0.1", keys).unwrap();
    assert!(session_uses_tls(&target).await.unwrap());
    assert!(dump(&target).await.unwrap().starts_with(b"PGDMP"));
    // ...but verify-ca still checks the chain.
    let keys = "sslmode = \"verify-ca\"\nsslrootcert = \"other-ca.crt\"";
    let target = s.target("127.0.0.1", keys).unwrap();
    assert!(session_uses_tls(&target).await.is_err());
}

/// libpq: with a root certificate, `require` verifies the chain like `verify-ca`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_with_a_root_certificate_verifies_the_chain() {
    let s = setup();
    let keys = "sslmode = \"require\"\nsslrootcert = \"other-ca.crt\"";
    let target = s.target("127.0.0.1", keys).unwrap();
    let err = session_uses_tls(&target).await.unwrap_err();
    assert!(
        err.message().contains("not signed by a CA in"),
        "{}",
        err.message()
    );
    assert!(dump(&target).await.is_err());
    let keys = "sslmode = \"require\"\nsslrootcert = \"root.crt\"";
    let target = s.target("127.0.0.1", keys).unwrap();
    assert!(session_uses_tls(&target).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_is_refused_by_a_server_that_wants_tls() {
    let s = setup();
    let target = s.target("localhost", "sslmode = \"disable\"").unwrap();
    let err = session_uses_tls(&target).await.unwrap_err();
    assert!(
        err.message().contains("no encryption")
            && err.message().contains("sslmode = \"verify-full\""),
        "{}",
        err.message()
    );
    let err = dump(&target).await.unwrap_err();
    assert!(err.to_string().contains("no encryption"), "{err}");
}

/// libpq never uses TLS on a Unix socket, whatever sslmode says (checked with psql 15):
/// neither does vigia, so the same config works on the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_never_uses_tls_whatever_sslmode_says() {
    let s = setup();
    let keys = "sslmode = \"verify-full\"\nsslrootcert = \"other-ca.crt\"";
    let target = s.target(&s.socket(), keys).unwrap();
    assert!(!session_uses_tls(&target).await.unwrap());
    assert!(dump(&target).await.unwrap().starts_with(b"PGDMP"));
}
