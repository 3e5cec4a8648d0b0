//! The check names: interface (metric label, alert key, `--only` value). `disk:<mount>` has
//! one name per measured filesystem.

use vigia_core::{Error, Result};

/// Every fixed name, in the order checks are reported.
pub const FIXED: &[&str] = &[
    "services.odoo",
    "services.postgres",
    "services.nginx",
    "services.redis",
    "odoo.internal",
    "odoo.public",
    "tls",
    "postgres",
    "memory",
    "backup.age",
    "backup.verified",
    "redis",
    "odoo.log",
    "odoo.cron",
    "odoo.mail",
    "einvoice.documents",
    "einvoice.queues",
    "p12",
    "hacienda",
];

/// `vigia smoke`'s checks, in the order they are reported (`tls` is health's, of the smoke's
/// url).
pub const SMOKE: &[&str] = &[
    "tls",
    "smoke.health",
    "smoke.login",
    "smoke.websocket",
    "smoke.version",
    "smoke.dbmanager",
    "smoke.latency",
    "smoke.tls",
    "smoke.headers",
    "smoke.score",
];

/// Checks with one result per company: `p12:<company id>`, `hacienda:<company id>` (or
/// `:config` from `[hacienda]`). `--only p12` runs them all, `--only p12:1` one.
pub const PER_ITEM: &[&str] = &["p12", "hacienda"];

/// The prefix of the per-filesystem names: `disk:/srv`.
pub const DISK: &str = "disk:";

/// Checks `only` (the `--only` values) against the known names; none: every check.
pub fn validate_only(only: &[String]) -> Result<()> {
    for name in only {
        let disk = name
            .strip_prefix(DISK)
            .is_some_and(|mount| mount.starts_with('/'));
        let item = family(name).is_some_and(|(_, item)| {
            item == "config" || (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
        });
        if !disk && !item && !FIXED.contains(&name.as_str()) {
            return Err(Error::invalid_input(format!(
                "`{name}` is not a check: use {}, disk:<mount>, p12:<company id> or hacienda:<company id>",
                FIXED.join(", ")
            )));
        }
    }
    Ok(())
}

/// `p12:1` -> ("p12", "1") for a per-item check.
pub fn family(name: &str) -> Option<(&str, &str)> {
    let (family, item) = name.split_once(':')?;
    PER_ITEM.contains(&family).then_some((family, item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_naming_the_known_ones() {
        validate_only(&["postgres".into(), "disk:/srv".into()]).unwrap();
        let err = validate_only(&["odoo".into()]).unwrap_err();
        assert!(err.message().contains("odoo.internal"), "{err}");
        assert!(validate_only(&["disk:srv".into()]).is_err());
        validate_only(&["p12".into(), "p12:12".into(), "p12:config".into()]).unwrap();
        assert!(validate_only(&["p12:x".into()]).is_err());
        assert!(validate_only(&["p12:".into()]).is_err());
    }
}
