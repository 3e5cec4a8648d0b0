//! What each command asks for, as the CLI's flags and the C ABI's `args_json` both say it
//! (serde, unknown fields refused, every field optional): one request per command, turned
//! into its job by the job's `from_config`.

use serde::Deserialize;
use vigia_core::{Error, Result};

use crate::format::{BackupId, VerifyLevel};

/// `vigia backup [--allow-missing-files]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupRequest {
    /// Back up the rest when referenced filestore files are missing or damaged.
    pub allow_missing_files: bool,
}

/// Which backups to verify.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    #[default]
    Newest,
    One(BackupId),
    /// Every backup in the store, and every damaged index.
    All,
}

/// `vigia verify [ID | --all] [--level quick|full|drill]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyRequest {
    /// The backup to verify; none: the newest.
    pub id: Option<String>,
    /// Every backup in the store.
    pub all: bool,
    /// `quick`, `full` or `drill`; none: full with an identity configured, else quick.
    pub level: Option<String>,
}

impl VerifyRequest {
    /// Which backups: one id, all, or the newest.
    pub fn selection(&self) -> Result<Selection> {
        match (&self.id, self.all) {
            (Some(_), true) => Err(Error::invalid_input("give `id` or `all`, not both")),
            (_, true) => Ok(Selection::All),
            (Some(id), false) => Ok(Selection::One(id.parse()?)),
            (None, false) => Ok(Selection::Newest),
        }
    }

    pub fn level(&self) -> Result<Option<VerifyLevel>> {
        self.level.as_deref().map(str::parse).transpose()
    }
}

/// `vigia prune [--dry-run]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneRequest {
    /// The plan only: what is kept and why, what would be deleted.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_request_names_one_backup_all_or_the_newest() {
        let parse = |json: &str| serde_json::from_str::<VerifyRequest>(json).unwrap();
        assert_eq!(parse("{}").selection().unwrap(), Selection::Newest);
        assert_eq!(
            parse(r#"{"all": true}"#).selection().unwrap(),
            Selection::All
        );
        let one = parse(r#"{"id": "20261128T021530Z-k3f9"}"#)
            .selection()
            .unwrap();
        assert!(matches!(one, Selection::One(id) if id.as_str() == "20261128T021530Z-k3f9"));
        let both = parse(r#"{"id": "20261128T021530Z-k3f9", "all": true}"#);
        assert!(both.selection().is_err());
        assert!(parse(r#"{"level": "deep"}"#).level().is_err());
        assert_eq!(
            parse(r#"{"level": "drill"}"#).level().unwrap(),
            Some(VerifyLevel::Drill)
        );
        assert!(serde_json::from_str::<VerifyRequest>(r#"{"levle": "quick"}"#).is_err());
    }
}
