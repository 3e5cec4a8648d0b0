//! Modules as an upgrade sees them (DOMAIN.md 2, "Modules and upgrades"): a manifest's
//! version compared as Odoo compares it (the series prefixed when missing, then numeric
//! parts: Odoo cannot downgrade), the modules an upgrade left unfinished, and the addon
//! hashes a database was last upgraded with (`ir_config_parameter` `vigia.addon_hashes`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tokio_postgres::GenericClient;
use vigia_core::{Error, Result};
use vigia_pg::{db_error, has_table};

/// The `ir_config_parameter` key holding the addon hashes a database was upgraded with.
pub const APPLIED_HASHES: &str = "vigia.addon_hashes";

/// The states an upgrade must leave no module in.
pub const UNFINISHED: [&str; 3] = ["to upgrade", "to install", "to remove"];

/// The `version` of a `__manifest__.py` (a Python dict literal, read without running it);
/// None when it names none (Odoo then takes `1.0`).
pub fn manifest_version(manifest: &str) -> Option<String> {
    for key in ["'version'", "\"version\""] {
        let mut rest = manifest;
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            let Some(value) = rest.trim_start().strip_prefix(':') else {
                continue;
            };
            let value = value.trim_start();
            let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let end = value[1..].find(quote)?;
            return Some(value[1..=end].trim().to_owned());
        }
    }
    None
}

/// A module version as Odoo stores it: `serie.` prefixed unless it is already there
/// (`1.2` -> `19.0.1.2`, `19.0.1.2` stays).
pub fn adapt_version(version: &str, serie: &str) -> String {
    if version == serie || !version.starts_with(&format!("{serie}.")) {
        format!("{serie}.{version}")
    } else {
        version.to_owned()
    }
}

/// Two adapted versions compared by their numeric parts (`19.0.1.10` > `19.0.1.9`; a
/// missing part is 0).
pub fn compare_versions(a: &str, b: &str) -> Result<Ordering> {
    let parts = |v: &str| -> Result<Vec<u64>> {
        v.split('.')
            .map(|p| {
                p.parse::<u64>().map_err(|_| {
                    Error::invalid_input(format!("module version `{v}` is not dotted numbers"))
                })
            })
            .collect()
    };
    let (a, b) = (parts(a)?, parts(b)?);
    let len = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    Ok((0..len)
        .map(|i| at(&a, i).cmp(&at(&b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal))
}

/// Modules left `to upgrade`, `to install` or `to remove` (name, state): an upgrade that
/// leaves any did not finish.
pub async fn unfinished(client: &impl GenericClient) -> Result<Vec<(String, String)>> {
    if !has_table(client, "ir_module_module").await? {
        return Ok(Vec::new());
    }
    let states: Vec<&str> = UNFINISHED.to_vec();
    let rows = client
        .query(
            "SELECT name, state FROM ir_module_module WHERE state = ANY($1) ORDER BY name",
            &[&states],
        )
        .await
        .map_err(|e| db_error("cannot read the modules' states", &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The addon hashes the database was last upgraded with; None when vigia never wrote them.
pub async fn applied_hashes(
    client: &impl GenericClient,
) -> Result<Option<BTreeMap<String, String>>> {
    if !has_table(client, "ir_config_parameter").await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT value FROM ir_config_parameter WHERE key = $1",
            &[&APPLIED_HASHES],
        )
        .await
        .map_err(|e| db_error("cannot read the applied addon hashes", &e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: String = row.get(0);
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::invalid_input(format!(
            "ir_config_parameter {APPLIED_HASHES} is not a JSON object of hashes ({e}): \
             delete it and the next deploy takes the current release's as applied"
        ))
    })
}

/// Records `hashes` as the ones the database is upgraded with.
pub async fn record_hashes(
    client: &impl GenericClient,
    hashes: &BTreeMap<String, String>,
) -> Result<()> {
    let text = serde_json::to_string(hashes).map_err(|e| Error::internal(e.to_string()))?;
    client
        .execute(
            "INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&APPLIED_HASHES, &text],
        )
        .await
        .map_err(|e| db_error("cannot record the applied addon hashes", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_read_without_running_it() {
        let manifest = r#"{
            'name': "Facturación electrónica CR",
            'summary': "mentions 'version' in passing",
            "version" : "1.4.2",
            'depends': ['account'],
        }"#;
        assert_eq!(manifest_version(manifest).as_deref(), Some("1.4.2"));
        assert_eq!(manifest_version("{'name': 'x'}"), None);
        assert_eq!(
            manifest_version("{'version':'19.0.2.0'}").as_deref(),
            Some("19.0.2.0")
        );
    }

    #[test]
    fn versions_are_adapted_and_compared_as_odoo_does() {
        assert_eq!(adapt_version("1.2", "19.0"), "19.0.1.2");
        assert_eq!(adapt_version("19.0.1.2", "19.0"), "19.0.1.2");
        assert_eq!(adapt_version("19.0", "19.0"), "19.0.19.0");
        assert_eq!(adapt_version("19.01", "19.0"), "19.0.19.01");
        let cmp = |a, b| compare_versions(a, b).unwrap();
        assert_eq!(cmp("19.0.1.10", "19.0.1.9"), Ordering::Greater);
        assert_eq!(cmp("19.0.1.0", "19.0.1"), Ordering::Equal);
        assert_eq!(cmp("19.0.1.0", "19.0.1.0.1"), Ordering::Less);
        assert!(compare_versions("19.0.1.a", "19.0.1").is_err());
    }
}
