//! Throwaway local servers for Vigia's demo, tests and benchmarks.
//!
//! - [`postgres::PgCluster`] (feature `postgres`, the default, std only): a PostgreSQL cluster
//!   from the system's `initdb`, on a Unix socket under a short /tmp path, removed on drop.
//!   With feature `tls`, [`postgres::PgCluster::start_tls`] also listens on loopback TCP,
//!   TLS only, with a certificate from a CA made for it ([`tls::TestCa`]).
//! - [`odoo`]: an Odoo-shaped database and filestore on such a cluster; [`fixture`] (feature
//!   `fixture`, for tests only): the Odoo stack the library and binary tests share.
//! - [`s3::S3Server`] (feature `s3`): an S3 server (s3s + s3s-fs) on a free loopback port.
//! - [`moto::MotoServer`] (feature `s3`): moto's S3 server (PyPI `moto[server]`), whose
//!   conditional writes are atomic.
//! - [`odoo_http::OdooServer`] (feature `web`): HTTP endpoints that answer like Odoo's, on a
//!   main and an evented port; [`odoo_site::Site`] picks the smoke test's failure modes.
//! - [`redis::RedisServer`] (feature `redis`): Debian's redis-server with a password.
//!
//! - [`engine::Engine`] (feature `engine`, std only): the container engine DOCKER_HOST names
//!   (podman's Docker API) and the images the compose tests run.
//!
//! A missing system dependency is an error naming the Debian package, never a silent skip.

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "fixture")]
pub mod fixture;
#[cfg(feature = "hacienda")]
pub mod hacienda;
#[cfg(any(feature = "s3", feature = "redis", feature = "smtp", feature = "nginx"))]
mod local_server;
#[cfg(feature = "s3")]
pub mod moto;
#[cfg(feature = "nginx")]
pub mod nginx;
#[cfg(feature = "postgres")]
pub mod odoo;
#[cfg(feature = "web")]
pub mod odoo_http;
#[cfg(feature = "web")]
pub mod odoo_site;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "web")]
pub mod webhook;

/// The vigia-sandbox binary beside the running test's executable (`target/<profile>/`, the
/// test being in `deps/`): built by `cargo build --workspace --all-features`.
pub fn sandbox_beside_tests() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps")
        .join("vigia-sandbox");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-features`",
        path.display()
    );
    path
}
