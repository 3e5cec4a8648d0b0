//! Certificates for TLS tests: a throwaway CA and the server certificates it signs.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use vigia_core::{Error, ErrorKind, Result};

/// A certificate authority that exists for one test.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> Result<Self> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| cert_error(&e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| cert_error(&e))?;
        Ok(Self { issuer })
    }

    /// The CA's certificate, what a client is given as its root (libpq's `sslrootcert`).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `names` (host names or IP addresses), signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> Result<ServerCert> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(|e| cert_error(&e))?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| cert_error(&e))?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn cert_error(e: &rcgen::Error) -> Error {
    Error::new(
        ErrorKind::Crypto,
        format!("cannot make a test certificate: {e}"),
    )
}
