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
];

/// The prefix of the per-filesystem names: `disk:/srv`.
pub const DISK: &str = "disk:";

/// Checks `only` (the `--only` values) against the known names; none: every check.
pub fn validate_only(only: &[String]) -> Result<()> {
    for name in only {
        let disk = name
            .strip_prefix(DISK)
            .is_some_and(|mount| mount.starts_with('/'));
        if !disk && !FIXED.contains(&name.as_str()) {
            return Err(Error::invalid_input(format!(
                "`{name}` is not a check: use {}, or disk:<mount>",
                FIXED.join(", ")
            )));
        }
    }
    Ok(())
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
    }
}
