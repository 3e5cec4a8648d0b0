//! TLS for every PostgreSQL connection, with libpq's `sslmode` meaning: tokio-postgres over
//! rustls here, the client programs through PGSSLMODE / PGSSLROOTCERT (see `client.rs`).
//!
//! What libpq does, checked with psql 15, and vigia with it:
//! - a Unix socket host never uses TLS, whatever sslmode says (even verify-full);
//! - `disable`: no TLS; `prefer`: TLS when the server offers it; `require`: TLS or nothing;
//! - a root certificate (`sslrootcert`, else `~/.postgresql/root.crt` when it exists) makes
//!   `prefer` and `require` verify the chain as `verify-ca` does; without one they verify
//!   nothing;
//! - `verify-ca` checks the chain but not the name, `verify-full` both; without a root
//!   certificate both fail.
//!
//! One difference: when a TLS handshake fails under `prefer` libpq tries again without TLS;
//! vigia fails, saying why.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use vigia_core::config::SslMode;
use vigia_core::{Error, ErrorKind, Result};

use crate::PgTarget;

/// A host that names a Unix socket directory, as libpq and tokio-postgres read it.
fn is_socket(host: &str) -> bool {
    host.starts_with('/')
}

/// The root certificate libpq would use: `configured`, else `~/.postgresql/root.crt` when
/// it exists. Resolved once, so the client programs are given the very same file.
pub(crate) fn root_cert(configured: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    configured.map(Path::to_path_buf).or_else(|| {
        home.map(|h| h.join(".postgresql/root.crt"))
            .filter(|p| p.exists())
    })
}

/// tokio-postgres' mode and the connector that does what `target.sslmode` means.
pub(crate) fn connector(target: &PgTarget) -> Result<(PgSslMode, MakeRustlsConnect)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    if is_socket(&target.host) || target.sslmode == SslMode::Disable {
        let none = config(&provider, Arc::new(AnyCertificate(provider.clone())))?;
        return Ok((PgSslMode::Disable, MakeRustlsConnect::new(none)));
    }
    let mode = match target.sslmode {
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    };
    let root = target.sslrootcert.as_deref();
    let verifier: Arc<dyn ServerCertVerifier> = match (target.sslmode, root) {
        (SslMode::Prefer | SslMode::Require, None) => Arc::new(AnyCertificate(provider.clone())),
        (SslMode::VerifyFull, Some(root)) => webpki(root, &provider)?,
        (_, Some(root)) => Arc::new(ChainOnly(webpki(root, &provider)?)),
        (mode, None) => {
            return Err(Error::config(format!(
                "sslmode = \"{mode}\" needs the CA certificate to verify the server's with: set \
                 [postgres] sslrootcert to its file (libpq's default ~/.postgresql/root.crt does \
                 not exist)"
            ))
            .with_key("postgres.sslrootcert"));
        }
    };
    Ok((mode, MakeRustlsConnect::new(config(&provider, verifier)?)))
}

fn config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The chain-and-name verifier over the certificates in `root`.
fn webpki(root: &Path, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let unreadable = |what: String| {
        Error::config(format!(
            "cannot use [postgres] sslrootcert {}: {what}; it must hold the PEM certificate \
             of the CA that signed the server's",
            root.display()
        ))
        .with_key("postgres.sslrootcert")
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).map_err(|e| unreadable(e.to_string()))? {
        let cert = cert.map_err(|e| unreadable(e.to_string()))?;
        roots.add(cert).map_err(|e| unreadable(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(unreadable("no certificate in it".into()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| unreadable(e.to_string()))
}

/// `verify-ca`: the chain as WebPKI checks it, any host name. The name is WebPKI's last
/// check, so "not valid for this name" means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate: any certificate, as libpq; the
/// handshake's signatures are still checked, so the session is bound to the key the server
/// showed (and SCRAM's channel binding to that certificate).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The environment a client program gets for TLS: the config's sslmode and root certificate,
/// and none of the variables vigia itself was started with that would override them: every
/// PGSSL* (a PGSSLROOTCERT would make `require` verify against another CA), PGREQUIRESSL,
/// and PGSERVICE (a service file's sslmode beats PGSSLMODE: checked with psql 15).
pub(crate) fn client_env(
    target: &PgTarget,
    inherited: impl Iterator<Item = OsString>,
) -> Vec<(OsString, Option<OsString>)> {
    let mut env: Vec<(OsString, Option<OsString>)> = inherited
        .filter(|name| {
            let name = name.to_string_lossy();
            name.starts_with("PGSSL") || name == "PGREQUIRESSL" || name == "PGSERVICE"
        })
        .map(|name| (name, None))
        .collect();
    env.push(("PGSSLMODE".into(), Some(target.sslmode.as_str().into())));
    if let Some(root) = &target.sslrootcert {
        env.push(("PGSSLROOTCERT".into(), Some(root.clone().into_os_string())));
    }
    env
}

/// What to do about a connection error TLS caused, when it did.
pub(crate) fn hint(e: &tokio_postgres::Error, target: &PgTarget) -> Option<String> {
    let refused_plain = e
        .as_db_error()
        .is_some_and(|db| db.message().contains("no encryption"));
    if target.sslmode == SslMode::Disable && refused_plain {
        return Some(
            "the server accepts this connection over TLS only: set [postgres] sslmode = \
             \"verify-full\" (with sslrootcert) or \"require\""
                .into(),
        );
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(cert)) = inner {
            return Some(certificate_hint(cert, target));
        }
        if err.to_string() == "server does not support TLS" {
            return Some(format!(
                "the server does not offer TLS, which sslmode \"{}\" needs: turn `ssl` on in \
                 its postgresql.conf",
                target.sslmode
            ));
        }
        source = err.source();
    }
    None
}

fn certificate_hint(error: &CertificateError, target: &PgTarget) -> String {
    let root = target
        .sslrootcert
        .as_deref()
        .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
    match error {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate does not name {}: set [postgres] host to a name the \
                 certificate holds, or use sslmode = \"verify-ca\" (the chain only)",
                target.host
            )
        }
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is not signed by a CA in {root} ([postgres] sslrootcert): \
             point sslrootcert at the CA that signed it"
        ),
        other => format!(
            "the server's certificate was refused ({other:?}), checked against {root} \
             ([postgres] sslrootcert)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_the_configured_one_else_libpqs_default_when_it_exists() {
        let home = tempfile::tempdir().unwrap();
        let configured = Path::new("/etc/vigia/pg-ca.crt");
        assert_eq!(
            root_cert(Some(configured), Some(home.path())).as_deref(),
            Some(configured)
        );
        assert_eq!(root_cert(None, Some(home.path())), None);
        assert_eq!(root_cert(None, None), None);
        let default = home.path().join(".postgresql/root.crt");
        std::fs::create_dir_all(default.parent().unwrap()).unwrap();
        std::fs::write(&default, "").unwrap();
        assert_eq!(root_cert(None, Some(home.path())), Some(default));
    }

    fn target(host: &str, sslmode: SslMode, sslrootcert: Option<&str>) -> PgTarget {
        PgTarget {
            host: host.into(),
            port: 5432,
            user: "odoo".into(),
            password: None,
            bin_dir: None,
            sslmode,
            sslrootcert: sslrootcert.map(PathBuf::from),
        }
    }

    #[test]
    fn verify_modes_without_a_root_certificate_name_the_key() {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let Err(err) = connector(&target("db.example.cr", mode, None)) else {
                panic!("{mode} without a root certificate connected");
            };
            assert_eq!(err.context().key.as_deref(), Some("postgres.sslrootcert"));
            assert!(
                err.message().contains("~/.postgresql/root.crt"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn an_unreadable_root_certificate_is_a_config_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [empty, dir.path().join("missing.crt")] {
            let t = target("db.example.cr", SslMode::Require, path.to_str());
            let Err(err) = connector(&t) else {
                panic!("{} was used", path.display());
            };
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(
                err.message().contains(path.to_str().unwrap()),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn client_programs_follow_the_config_not_the_inherited_environment() {
        let inherited = [
            "PATH",
            "PGSSLMODE",
            "PGSSLROOTCERT",
            "PGSSLCERT",
            "PGSSLMINPROTOCOLVERSION",
            "PGREQUIRESSL",
            "PGSERVICE",
            "PGAPPNAME",
        ]
        .map(OsString::from);
        let t = target(
            "db.example.cr",
            SslMode::VerifyFull,
            Some("/etc/vigia/pg-ca.crt"),
        );
        let env = client_env(&t, inherited.clone().into_iter());
        // Applied in order, as Command::env / env_remove do: the last word wins.
        let last = |name: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(last("PGSSLMODE"), Some(Some("verify-full".into())));
        assert_eq!(
            last("PGSSLROOTCERT"),
            Some(Some("/etc/vigia/pg-ca.crt".into()))
        );
        for removed in [
            "PGSSLCERT",
            "PGSSLMINPROTOCOLVERSION",
            "PGREQUIRESSL",
            "PGSERVICE",
        ] {
            assert_eq!(last(removed), Some(None), "{removed}");
        }
        for kept in ["PATH", "PGAPPNAME"] {
            assert_eq!(last(kept), None, "{kept} untouched");
        }
        // Without sslrootcert, an inherited PGSSLROOTCERT is removed, not kept.
        let t = target("db.example.cr", SslMode::Require, None);
        let env = client_env(&t, inherited.into_iter());
        assert_eq!(
            env.iter()
                .rev()
                .find(|(n, _)| n == "PGSSLROOTCERT")
                .map(|(_, v)| v.clone()),
            Some(None)
        );
    }

    #[test]
    fn a_socket_never_uses_tls_and_reads_no_file() {
        let t = target(
            "/var/run/postgresql",
            SslMode::VerifyFull,
            Some("/nonexistent/ca.crt"),
        );
        assert_eq!(connector(&t).unwrap().0, PgSslMode::Disable);
    }
}
