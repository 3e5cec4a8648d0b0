//! Sealed objects: zstd + age to the store and back, readable by the Go `age` CLI and `zstd`,
//! refused to the wrong identity, and never stored when the source fails.

use std::io::Read;
use std::process::Command;

use crate::common::Fixture;
use sha2::{Digest, Sha256};
use vigia_backup::{Identity, open_sealed, put_sealed};
use vigia_core::ErrorKind;

const MARKER: &str = "FACTURA-ELECTRONICA-SECRETA-4242";

/// Compressible text with a marker, like a dump.
fn plain_text() -> Vec<u8> {
    use std::fmt::Write;
    let mut text = String::new();
    for i in 0..60_000 {
        let _ = writeln!(text, "{i}\t{MARKER}\tcliente {}", i % 97);
    }
    text.into_bytes()
}

fn source(data: Vec<u8>) -> impl FnOnce() -> std::io::Result<Box<dyn Read>> + Send + 'static {
    move || Ok(Box::new(std::io::Cursor::new(data)) as Box<dyn Read>)
}

async fn read_back(
    fixture: &Fixture,
    key: &str,
    identity: &Identity,
) -> vigia_core::Result<Vec<u8>> {
    let mut reader = open_sealed(fixture.store(), key, identity).await?;
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map(|_| out)
    })
    .await
    .unwrap()
    .map_err(|e| vigia_core::Error::new(ErrorKind::Io, e.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_compresses_encrypts_and_hashes_the_stored_bytes() {
    let fixture = Fixture::local();
    let identity = Identity::generate();
    let plain = plain_text();
    let sealed = put_sealed(
        fixture.store(),
        "backups/x/dump.age",
        &identity.recipients(),
        source(plain.clone()),
    )
    .await
    .unwrap();
    assert_eq!(sealed.plain_bytes, plain.len() as u64);
    assert!(
        sealed.size_bytes < sealed.plain_bytes / 5,
        "compressed: {sealed:?}"
    );
    let stored = fixture
        .store()
        .get_bytes("backups/x/dump.age")
        .await
        .unwrap();
    assert_eq!(stored.len() as u64, sealed.size_bytes);
    assert_eq!(hex::encode(Sha256::digest(&stored)), sealed.sha256);
    assert!(
        !stored.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "no plain text stored"
    );
    assert_eq!(
        read_back(&fixture, "backups/x/dump.age", &identity)
            .await
            .unwrap(),
        plain
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_age_and_zstd_read_what_vigia_wrote() {
    let fixture = Fixture::local();
    let identity = Identity::generate();
    let plain = plain_text();
    put_sealed(
        fixture.store(),
        "backups/x/dump.age",
        &identity.recipients(),
        source(plain.clone()),
    )
    .await
    .unwrap();
    let Fixture::Local(dir, store) = &fixture else {
        unreachable!()
    };
    let key_file = dir.path().join("identity.txt");
    std::fs::write(&key_file, identity.to_file_text()).unwrap();
    let stored = store.path_of("backups/x/dump.age").unwrap();
    let script = format!(
        "age -d -i '{}' '{}' | zstd -d -c",
        key_file.display(),
        stored.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "age or zstd failed (install the Debian packages `age` and `zstd`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == plain,
        "age | zstd -d gives back the plain bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_identity_cannot_decrypt() {
    let fixture = Fixture::local();
    put_sealed(
        fixture.store(),
        "k/dump.age",
        &Identity::generate().recipients(),
        source(plain_text()),
    )
    .await
    .unwrap();
    let err = read_back(&fixture, "k/dump.age", &Identity::generate())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto);
    assert!(
        err.message().contains("this identity cannot decrypt"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_stores_nothing() {
    let fixture = Fixture::s3().await;
    let failing = || -> std::io::Result<Box<dyn Read>> {
        let good = std::io::Cursor::new(plain_text());
        let bad = FailAfter;
        Ok(Box::new(good.chain(bad)))
    };
    let err = put_sealed(
        fixture.store(),
        "k/dump.age",
        &Identity::generate().recipients(),
        failing,
    )
    .await
    .unwrap_err();
    assert!(
        err.message().contains("pg_dump exited with status 1"),
        "{}",
        err.message()
    );
    assert!(
        fixture
            .store()
            .head("k/dump.age")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A reader that fails the way a dying pg_dump looks to the pipeline.
struct FailAfter;

impl Read for FailAfter {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("pg_dump exited with status 1"))
    }
}
