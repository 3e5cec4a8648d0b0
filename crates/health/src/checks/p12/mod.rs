//! `p12:<company id>`: the key each company signs its invoices with, read where Odoo keeps it
//! (the company's certificate attachment and PIN, DOMAIN.md 3), or `p12:config` from
//! `[hacienda] certificate` and `pin` when those are set. A `.p12` opens with its PIN (legacy
//! RC2-40 / 3DES and modern AES-256 alike), a PEM certificate goes with the company's
//! separate PEM private key; the key must match the certificate, the certificate must not
//! end within 30 / 7 days, and its subject's serialNumber must carry the company's cedula.
//! No PIN is ever shown.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use vigia_core::Config;
use vigia_core::config::HaciendaConfig;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_odoo::company_keys::{CompanyKeys, company_keys};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Pg, not_found, result, skipped, unknown, wanted, worst};

mod rounds;

pub(crate) const NAME: &str = "p12";
const NOT_INSTALLED: &str = "l10n_cr_einvoice not installed";

pub(super) fn check(config: &Config, pg: &Arc<Pg>) -> Arc<dyn Check> {
    Arc::new(P12 {
        pg: Arc::clone(pg),
        hacienda: config.hacienda.clone().filter(|h| h.certificate.is_some()),
        filestore: config
            .odoo
            .data_dir
            .as_ref()
            .map(|d| d.join("filestore").join(&config.odoo.database)),
    })
}

struct P12 {
    pg: Arc<Pg>,
    /// `[hacienda]` with a certificate: it overrides the companies' keys.
    hacienda: Option<HaciendaConfig>,
    /// The database's filestore folder.
    filestore: Option<PathBuf>,
}

#[async_trait]
impl Check for P12 {
    fn name(&self) -> &str {
        NAME
    }

    /// The worst of the keys (the runner asks for each: [`Check::run_all`]).
    async fn run(&self) -> CheckResult {
        worst(NAME, self.run_all(&[]).await)
    }

    async fn run_all(&self, items: &[String]) -> Vec<CheckResult> {
        let mut results = self.results(items).await;
        results.extend(not_found(NAME, items, &results));
        results
    }
}

impl P12 {
    async fn results(&self, items: &[String]) -> Vec<CheckResult> {
        if let Some(h) = &self.hacienda {
            if !wanted(items, "config") {
                return Vec::new();
            }
            return vec![from_config(h).await];
        }
        let (_slot, client) = match self.pg.session(NAME, CheckStatus::Unknown).await {
            Ok(session) => session,
            Err(failed) => return vec![failed],
        };
        let companies = match company_keys(&client).await {
            Ok(Some(companies)) => companies,
            Ok(None) => return vec![skipped(NAME, NOT_INSTALLED)],
            Err(e) => return vec![unknown(NAME, &e)],
        };
        if companies.is_empty() {
            return vec![skipped(
                NAME,
                "no company has the e-invoicing module configured",
            )];
        }
        let companies: Vec<CompanyKeys> = companies
            .into_iter()
            .filter(|c| wanted(items, &c.id.to_string()))
            .collect();
        // Off the async threads: opening a .p12 runs its key derivation, as many rounds as
        // the file says.
        let filestore = self.filestore.clone();
        let judged = vigia_core::task::blocking("p12", move || {
            let now = jiff::Timestamp::now();
            Ok(companies
                .iter()
                .map(|c| from_company(c, filestore.as_deref(), now))
                .collect::<Vec<_>>())
        })
        .await;
        judged.unwrap_or_else(|e| vec![unknown(NAME, &e)])
    }
}

async fn from_config(h: &HaciendaConfig) -> CheckResult {
    let name = format!("{NAME}:config");
    let Some(path) = h.certificate.clone() else {
        return skipped(&name, "[hacienda] certificate is not set");
    };
    let pin = match h.pin.clone() {
        Some(pin) => {
            match vigia_core::task::blocking("p12", move || pin.resolve("hacienda.pin")).await {
                Ok(pin) => Some(pin),
                Err(e) => return unknown(&name, &e),
            }
        }
        None => None,
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return result(
                &name,
                CheckStatus::Critical,
                format!("cannot read the key {}: {e}", path.display()),
                json!({ "file": path }),
            );
        }
    };
    let key = KeyMaterial {
        what: path.display().to_string(),
        certificate: bytes,
        private_key: None,
        pin: pin.as_ref().map(|p| p.expose().to_owned()),
        cedula: h.cedula.clone(),
    };
    let judged = vigia_core::task::blocking("p12", move || {
        Ok(evaluate(&name, &key, jiff::Timestamp::now()))
    })
    .await;
    judged.unwrap_or_else(|e| unknown(&format!("{NAME}:config"), &e))
}

fn from_company(
    c: &CompanyKeys,
    filestore: Option<&std::path::Path>,
    now: jiff::Timestamp,
) -> CheckResult {
    let name = format!("{NAME}:{}", c.id);
    let critical = |why: String| {
        result(
            &name,
            CheckStatus::Critical,
            format!("{}: {why}", c.name),
            json!({ "company": c.name }),
        )
    };
    let Some(certificate) = &c.certificate else {
        return critical("no certificate is attached (Settings > Companies)".to_owned());
    };
    let bytes = match certificate.read(filestore) {
        Ok(bytes) => bytes,
        Err(e) => return critical(format!("its certificate cannot be read: {}", e.message())),
    };
    let private_key = match &c.private_key {
        Some(a) => match a.read(filestore) {
            Ok(bytes) => Some(bytes),
            Err(e) => return critical(format!("its private key cannot be read: {}", e.message())),
        },
        None => None,
    };
    let key = KeyMaterial {
        what: format!("{}'s certificate (attachment {})", c.name, certificate.id),
        certificate: bytes,
        private_key,
        pin: c.pin.as_ref().map(|p| p.expose().to_owned()),
        cedula: c.vat.clone(),
    };
    evaluate(&name, &key, now)
}

/// A key to judge, wherever it came from.
struct KeyMaterial {
    /// For messages: a file or an attachment.
    what: String,
    /// A `.p12`, or a PEM certificate.
    certificate: Vec<u8>,
    /// The PEM private key that goes with a PEM certificate.
    private_key: Option<Vec<u8>>,
    pin: Option<String>,
    /// The cedula the subject must carry (digits are compared).
    cedula: Option<String>,
}

fn evaluate(name: &str, key: &KeyMaterial, now: jiff::Timestamp) -> CheckResult {
    let critical = |why: String| {
        result(
            name,
            CheckStatus::Critical,
            format!("{}: {why}", key.what),
            json!({ "key": key.what }),
        )
    };
    let opened = if is_pem(&key.certificate) {
        open_pem(key)
    } else {
        open_p12(key)
    };
    let (cert_der, private_key, format) = match opened {
        Ok(opened) => opened,
        Err(why) => return critical(why),
    };
    let Ok((_, cert)) = X509Certificate::from_der(&cert_der) else {
        return critical("its certificate cannot be read".to_owned());
    };
    let matches = keys_match(&private_key, cert.public_key().raw);
    let serial = cert
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == "2.5.4.5")
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    let not_after = cert.validity().not_after.timestamp();
    let left = (not_after - now.as_second()) as f64 / 86_400.0;
    let mut problems = Vec::new();
    if !matches {
        problems.push("the private key does not belong to the certificate".to_owned());
    }
    if cert.validity().not_before.timestamp() > now.as_second() {
        problems.push("the certificate is not valid yet".to_owned());
    } else if left <= 0.0 {
        problems.push(format!("the certificate expired {:.0} days ago", -left));
    } else if left <= 7.0 {
        problems.push(format!("the certificate ends in {left:.0} days"));
    }
    // The digits, without leading zeros: CPJ-3-101-123456 carries 3101123456.
    let digits = |s: &str| {
        s.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .trim_start_matches('0')
            .to_owned()
    };
    let mut unjudged = None;
    match key.cedula.as_deref().map(digits).filter(|c| !c.is_empty()) {
        Some(cedula) => {
            if serial.as_deref().map(digits).as_deref() != Some(cedula.as_str()) {
                problems.push(format!(
                    "its subject's serialNumber ({}) does not carry the cedula {cedula}",
                    serial.as_deref().unwrap_or("absent")
                ));
            }
        }
        None => unjudged = Some("no cedula to compare with (the company's vat is empty)"),
    }
    let status = if !problems.is_empty() {
        CheckStatus::Critical
    } else if left <= 30.0 || unjudged.is_some() {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    };
    let until = jiff::Timestamp::from_second(not_after).map_or_else(
        |_| not_after.to_string(),
        |t| t.strftime("%Y-%m-%d").to_string(),
    );
    let summary = if problems.is_empty() {
        let note = unjudged.map_or(String::new(), |n| format!("; {n}"));
        format!(
            "{}: {format}, valid until {until} ({:.0} days left){note}",
            key.what,
            left.floor()
        )
    } else {
        format!("{}: {}", key.what, problems.join("; "))
    };
    result(
        name,
        status,
        summary,
        json!({
            "key": key.what,
            "format": format,
            "subject": cert.subject().to_string(),
            "serial_number": serial,
            "not_after": until,
            "days_left": left.floor(),
            "key_matches": matches,
        }),
    )
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

type Opened = (Vec<u8>, PrivateKeyDer<'static>, &'static str);

/// More rounds than any tool writes (OpenSSL: 2048; PBKDF2 guidance: 600,000): a file
/// asking for more would keep a thread busy deriving keys, so it is refused unopened.
const MAX_ROUNDS: u64 = 2_000_000;

fn open_p12(key: &KeyMaterial) -> Result<Opened, String> {
    let Some(pin) = key.pin.as_deref() else {
        return Err("no PIN is configured for this .p12".to_owned());
    };
    if let Some(rounds) = rounds::most_rounds(&key.certificate).filter(|r| *r > MAX_ROUNDS) {
        return Err(format!(
            "asks for {rounds} key-derivation rounds (at most {MAX_ROUNDS} are run): not opened"
        ));
    }
    let store =
        p12_keystore::KeyStore::from_pkcs12(&key.certificate, pin).map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) => {
                "the PIN does not open it (a wrong PIN)".into()
            }
            p12_keystore::error::Error::DerError(_)
            | p12_keystore::error::Error::InvalidVersion => {
                format!("not a PKCS#12 file ({e})")
            }
            other => format!("cannot be opened as PKCS#12: {other}"),
        })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| "the .p12 holds no private key".to_owned())?;
    let leaf = chain
        .chain()
        .first()
        .ok_or_else(|| "the .p12 holds no certificate".to_owned())?;
    let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec()));
    Ok((leaf.as_der().to_vec(), private_key, "PKCS#12"))
}

fn open_pem(key: &KeyMaterial) -> Result<Opened, String> {
    let cert = CertificateDer::from_pem_slice(&key.certificate)
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let private = key
        .private_key
        .as_deref()
        .ok_or_else(|| "a PEM certificate needs its separate PEM private key".to_owned())?;
    let private_key = PrivateKeyDer::from_pem_slice(private)
        .map_err(|e| format!("the private key is not PEM: {e}"))?;
    Ok((cert.to_vec(), private_key, "PEM"))
}

/// The private key's public half is the certificate's public key.
fn keys_match(private_key: &PrivateKeyDer<'_>, certificate_spki: &[u8]) -> bool {
    rustls::crypto::aws_lc_rs::sign::any_supported_type(private_key)
        .ok()
        .and_then(|k| k.public_key().map(|spki| spki.as_ref() == certificate_spki))
        .unwrap_or(false)
}
