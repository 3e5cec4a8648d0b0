//! `vigia init`: a working config for a local store, with fresh keys beside it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use serde::Serialize;

use crate::error::{Error, Result};

pub const CONFIG_FILE: &str = "vigia.toml";
pub const IDENTITY_FILE: &str = "backup.agekey";
pub const NAME_KEY_FILE: &str = "name.key";

#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub config: PathBuf,
    pub identity: PathBuf,
    pub name_key: PathBuf,
    /// The age public key backups are encrypted to.
    pub recipient: String,
}

/// What the written config says beyond the keys: where Odoo's data and PostgreSQL are.
#[derive(Debug, Clone)]
pub struct InitSettings {
    /// `[odoo] data-dir`; None: left commented out.
    pub data_dir: Option<PathBuf>,
    pub postgres_host: String,
    pub postgres_port: u16,
    pub postgres_user: String,
    pub postgres_bin_dir: Option<PathBuf>,
}

impl Default for InitSettings {
    fn default() -> Self {
        Self {
            data_dir: None,
            postgres_host: "localhost".into(),
            postgres_port: 5432,
            postgres_user: "odoo".into(),
            postgres_bin_dir: None,
        }
    }
}

/// Writes `dir/vigia.toml`, `dir/backup.agekey` and `dir/name.key` (mode 0600). Refuses if any
/// of them exists: an overwritten key makes every backup made with it unreadable.
pub fn init(dir: &Path) -> Result<InitReport> {
    init_with(dir, &InitSettings::default())
}

/// `init` with `settings` in the config (the demo points it at its throwaway cluster).
pub fn init_with(dir: &Path, settings: &InitSettings) -> Result<InitReport> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let paths = [CONFIG_FILE, IDENTITY_FILE, NAME_KEY_FILE].map(|f| dir.join(f));
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let created = jiff::Timestamp::now();
    let identity_text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    let name_key = format!("{}\n", hex::encode(crate::random_bytes::<32>()));
    let config_text = config_text(&recipient, settings);

    let [config, identity_path, name_key_path] = paths;
    write_new_files(
        &[
            (identity_path.clone(), identity_text.as_str()),
            (name_key_path.clone(), name_key.as_str()),
            (config.clone(), config_text.as_str()),
        ],
        0o600,
        " (a replaced key makes old backups unreadable)",
    )?;
    Ok(InitReport {
        config,
        identity: identity_path,
        name_key: name_key_path,
        recipient,
    })
}

/// Writes every file with `mode`, or none: refuses before writing when one exists (`why` says
/// what an overwrite would lose), and removes those written when a later one fails.
pub(crate) fn write_new_files(files: &[(PathBuf, &str)], mode: u32, why: &str) -> Result<()> {
    if let Some((existing, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Error::invalid_input(format!(
            "{} already exists; vigia init never overwrites{why}: choose another --dir or move \
             it away",
            existing.display()
        ))
        .with_file(existing));
    }
    let mut written: Vec<&Path> = Vec::new();
    for (path, text) in files {
        if let Err(e) = write_new(path, text, mode) {
            for path in written {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(())
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))
}

fn config_text(recipient: &str, settings: &InitSettings) -> String {
    let data_dir = settings.data_dir.as_ref().map_or_else(
        || {
            "# data-dir = \"/srv/odoo/data\"     # the filestore is <data-dir>/filestore/<database>"
                .to_owned()
        },
        |d| {
            format!(
                "data-dir = {}  # the filestore is <data-dir>/filestore/<database>",
                toml_string(d)
            )
        },
    );
    let bin_dir = settings
        .postgres_bin_dir
        .as_ref()
        .map(|d| format!("bin-dir = {}\n", toml_string(d)))
        .unwrap_or_default();
    let host = toml::Value::String(settings.postgres_host.clone());
    let user = toml::Value::String(settings.postgres_user.clone());
    let port = settings.postgres_port;
    format!(
        r#"# Written by `vigia init`. `vigia init --print` shows every key with its meaning.
# Relative paths are relative to this file's folder.
state-dir = "state"

[odoo]
# The database Odoo serves.
database = "odoo"
{data_dir}

[postgres]
host = {host}
port = {port}
user = {user}
{bin_dir}# password = "env:PGPASSWORD"

[backup]
store = "local"
path = "backups"
name-key = "file:{NAME_KEY_FILE}"

[backup.encryption]
recipients = ["{recipient}"]
# Needed only to verify fully and to restore. Keep a copy of it OFF this machine: without it
# no backup can be read.
identity = "file:{IDENTITY_FILE}"
"#
    )
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

impl crate::envelope::Outcome for InitReport {}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::ConfigSource;

    #[test]
    fn writes_a_config_that_checks_clean_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let report = init(dir.path()).unwrap();
        for path in [&report.config, &report.identity, &report.name_key] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let check = ConfigSource::from_file(&report.config)
            .unwrap()
            .check(None, true)
            .unwrap();
        assert!(check.warnings.is_empty(), "{:?}", check.warnings);
        let key = std::fs::read_to_string(&report.name_key).unwrap();
        assert_eq!(key.trim().len(), 64);
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NAME_KEY_FILE), "keep me").unwrap();
        let err = init(dir.path()).unwrap_err();
        assert!(err.message().contains("never overwrites"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(NAME_KEY_FILE)).unwrap(),
            "keep me"
        );
        assert!(!dir.path().join(CONFIG_FILE).exists());
    }
}
