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

    /// A CA signed by this one: what a public CA's leaf certificates are issued by, and what
    /// a server must send along with its leaf.
    /// `valid_days`: from and to, in days from now; None: rcgen's default.
    pub fn intermediate(&self, name: &str, valid_days: Option<(i64, i64)>) -> Result<Self> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| cert_error(&e))?;
        if let Some((from, to)) = valid_days {
            params.not_before = days_from_now(from)?;
            params.not_after = days_from_now(to)?;
        }
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let issuer =
            CertifiedIssuer::signed_by(params, key, &self.issuer).map_err(|e| cert_error(&e))?;
        Ok(Self { issuer })
    }

    /// A leaf certificate for `names` (host names or IP addresses), signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> Result<ServerCert> {
        self.leaf(&Leaf {
            names,
            common_name: names.first().copied(),
            valid_days: None,
        })
    }

    /// A leaf as `leaf` describes it.
    pub fn leaf(&self, leaf: &Leaf<'_>) -> Result<ServerCert> {
        let names: Vec<String> = leaf.names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(|e| cert_error(&e))?;
        if let Some(cn) = leaf.common_name {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some((from, to)) = leaf.valid_days {
            params.not_before = days_from_now(from)?;
            params.not_after = days_from_now(to)?;
        }
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

/// A leaf certificate to make.
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'a> {
    /// Its subject alternative names (none: a certificate only a common name identifies).
    pub names: &'a [&'a str],
    pub common_name: Option<&'a str>,
    /// Valid from and to, in days from now (negative: in the past); None: rcgen's default.
    pub valid_days: Option<(i64, i64)>,
}

fn days_from_now(days: i64) -> Result<time::OffsetDateTime> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Error::internal(e.to_string()))?;
    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX) + days * 86_400;
    time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| Error::internal(e.to_string()))
}

fn cert_error(e: &rcgen::Error) -> Error {
    Error::new(
        ErrorKind::Crypto,
        format!("cannot make a test certificate: {e}"),
    )
}
