//! The e-invoicing module's company settings that sign and submit invoices (DOMAIN.md
//! section 3): each company's Hacienda environment, username, the `.p12` PIN, and the key
//! attachments (`ir_attachment` rows of `res.company`, field `l10n_cr_certificate` or
//! `l10n_cr_private_key`, the bytes in the filestore, or in `db_datas`).

use std::io::Read;
use std::path::Path;

use sha1::{Digest, Sha1};
use tokio_postgres::GenericClient;
use vigia_core::config::Secret;
use vigia_core::{Error, ErrorKind, Result};
use vigia_pg::db_error;

use crate::filestore;

/// A key file is a few KiB; anything larger is not one.
const MAX_KEY_BYTES: u64 = 1 << 20;

/// One company with the module configured (a certificate attachment, a PIN or a user).
#[derive(Debug)]
pub struct CompanyKeys {
    pub id: i32,
    pub name: String,
    /// The company's identification (`vat`), the cedula its certificate must carry.
    pub vat: Option<String>,
    pub hacienda_env: Option<String>,
    pub username: Option<String>,
    /// `l10n_cr_hacienda_password`.
    pub password: Option<Secret>,
    /// `l10n_cr_key_password`: the `.p12`'s PIN.
    pub pin: Option<Secret>,
    pub certificate: Option<Attachment>,
    pub private_key: Option<Attachment>,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i32,
    pub store_fname: Option<String>,
    pub db_datas: Option<Vec<u8>>,
}

/// Every company with the module configured; None when `res_company` has not the module's
/// columns (the module is not installed).
pub async fn company_keys(client: &impl GenericClient) -> Result<Option<Vec<CompanyKeys>>> {
    let installed: bool = client
        .query_one(
            "SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = 'res_company' \
             AND column_name IN ('l10n_cr_key_password', 'l10n_cr_hacienda_env')",
            &[],
        )
        .await
        .map_err(|e| {
            db_error(
                "cannot look for the e-invoicing module's company fields",
                &e,
            )
        })?
        .get(0);
    if !installed {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT c.id, c.name::text, c.vat::text, c.l10n_cr_hacienda_env::text, \
               c.l10n_cr_hacienda_username::text, c.l10n_cr_key_password::text, \
               c.l10n_cr_hacienda_password::text, \
               cert.id, cert.store_fname::text, cert.db_datas, \
               pkey.id, pkey.store_fname::text, pkey.db_datas \
             FROM res_company c \
             LEFT JOIN LATERAL (SELECT id, store_fname, db_datas FROM ir_attachment a \
               WHERE a.res_model = 'res.company' AND a.res_field = 'l10n_cr_certificate' \
               AND a.res_id = c.id ORDER BY a.id DESC LIMIT 1) cert ON true \
             LEFT JOIN LATERAL (SELECT id, store_fname, db_datas FROM ir_attachment a \
               WHERE a.res_model = 'res.company' AND a.res_field = 'l10n_cr_private_key' \
               AND a.res_id = c.id ORDER BY a.id DESC LIMIT 1) pkey ON true \
             WHERE cert.id IS NOT NULL OR coalesce(c.l10n_cr_key_password, '') <> '' \
               OR coalesce(c.l10n_cr_hacienda_username, '') <> '' \
             ORDER BY c.id",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the companies' Hacienda settings", &e))?;
    let attachment = |row: &tokio_postgres::Row, at: usize| {
        row.get::<_, Option<i32>>(at).map(|id| Attachment {
            id,
            store_fname: row.get(at + 1),
            db_datas: row.get(at + 2),
        })
    };
    Ok(Some(
        rows.iter()
            .map(|r| CompanyKeys {
                id: r.get(0),
                name: r.get(1),
                vat: r.get(2),
                hacienda_env: r.get(3),
                username: r.get(4),
                pin: r.get::<_, Option<String>>(5).map(Secret::new),
                password: r.get::<_, Option<String>>(6).map(Secret::new),
                certificate: attachment(r, 7),
                private_key: attachment(r, 10),
            })
            .collect(),
    ))
}

impl Attachment {
    /// The bytes: `db_datas`, else the filestore file under `filestore` (the database's
    /// folder), read without following a link, at most 1 MiB, and only if its sha1 is the
    /// one its name gives (Odoo's user can write that folder).
    pub fn read(&self, filestore: Option<&Path>) -> Result<Vec<u8>> {
        if let Some(bytes) = &self.db_datas {
            return Ok(bytes.clone());
        }
        let id = self.id;
        let name = self.store_fname.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                format!("attachment {id} has neither a filestore file nor data"),
            )
        })?;
        if !filestore::is_odoo_name(name) {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("attachment {id} names `{name}`, which is not a filestore file name"),
            ));
        }
        let dir = filestore.ok_or_else(|| {
            Error::config(format!(
                "attachment {id} is in the filestore: set [odoo] data-dir so vigia can read it"
            ))
            .with_key("odoo.data-dir")
        })?;
        let file = filestore::open(dir, name)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "attachment {id}'s file {name} is missing from {}",
                    dir.display()
                ),
            )
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &dir.join(name), e))?;
        if bytes.len() as u64 > MAX_KEY_BYTES {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("attachment {id}'s file {name} is over 1 MiB: not a key"),
            ));
        }
        let sha1 = hex::encode(Sha1::digest(&bytes));
        if name.rsplit('/').next() != Some(sha1.as_str()) {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("attachment {id}'s file {name} does not hold the bytes its name says"),
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filestore_file_is_read_only_when_its_bytes_match_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"-----BEGIN CERTIFICATE-----";
        let sha1 = hex::encode(Sha1::digest(bytes));
        let name = format!("{}/{sha1}", &sha1[..2]);
        std::fs::create_dir_all(dir.path().join(&sha1[..2])).unwrap();
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        let good = Attachment {
            id: 7,
            store_fname: Some(name.clone()),
            db_datas: None,
        };
        assert_eq!(good.read(Some(dir.path())).unwrap(), bytes);
        std::fs::write(dir.path().join(&name), b"swapped").unwrap();
        let e = good.read(Some(dir.path())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        let escape = Attachment {
            id: 8,
            store_fname: Some("../../etc/passwd".into()),
            db_datas: None,
        };
        assert!(escape.read(Some(dir.path())).is_err());
        let inline = Attachment {
            id: 9,
            store_fname: None,
            db_datas: Some(b"pem".to_vec()),
        };
        assert_eq!(inline.read(None).unwrap(), b"pem");
    }
}
