//! Loading the config: one TOML file, environments over a shared base, secrets by reference.

mod check;
mod document;
mod duration;
mod secret;
mod sections;
mod show;
mod template;
mod validate;

use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use check::{CheckReport, ConfigWarning};
pub use duration::HumanDuration;
pub use secret::{Probe, Secret, SecretRef, ValueOrRef};
pub use sections::{
    AlertOn, AlertingConfig, BackupConfig, ComposeServices, DEFAULT_IDP_URL, DeployConfig,
    EinvoiceConfig, EncryptionConfig, HaciendaConfig, HaciendaEnvironment, HealthConfig,
    OdooConfig, PostgresConfig, RedisConfig, RestoreConfig, RetentionConfig, RuntimeConfig,
    RuntimeKind, S3Config, Settings, SmokeConfig, SslMode, StoreKind,
};
pub use show::ConfigView;
pub use template::TEMPLATE;
pub use validate::check_database_name;

/// The most `[backup] jobs` (data streams of a format 2 backup) vigia writes, and reads.
pub const MAX_DUMP_JOBS: u32 = 16;

use crate::error::{Error, Result};
use document::Located;

/// Where `vigia` looks for its config: `--config`, else `VIGIA_CONFIG`, else `./vigia.toml`.
pub fn default_config_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("VIGIA_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("vigia.toml"))
}

/// The config text and where it came from, before an environment is picked.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    text: String,
    file: Option<PathBuf>,
    base_dir: PathBuf,
}

/// The settings in force for one environment, with relative paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    settings: Settings,
    /// The environment picked (`--env`, else `default-env`), or none for the base alone.
    pub environment: Option<String>,
    /// True when the environment says `production = true`.
    pub production: bool,
    /// The config file, when the config came from one.
    pub file: Option<PathBuf>,
    /// The folder relative paths are relative to.
    pub base_dir: PathBuf,
    /// The TOML as given (secrets in it are references only): kept in each backup's
    /// `extra.age`.
    pub text: String,
}

impl Deref for Config {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl ConfigSource {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; create one with `vigia init`, or pass --config PATH or set VIGIA_CONFIG"
            } else {
                ""
            };
            Error::config(format!("cannot read config {}: {e}{hint}", path.display()))
                .with_file(path)
        })?;
        let absolute = std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))?;
        let base_dir = absolute
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        Ok(Self {
            text,
            file: Some(path.to_path_buf()),
            base_dir,
        })
    }

    /// A config given as text (the FFI); relative paths are relative to `base_dir`, else to the
    /// current directory.
    pub fn from_text(text: impl Into<String>, base_dir: Option<&Path>) -> Result<Self> {
        let base_dir = match base_dir {
            Some(dir) => std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?,
            None => std::env::current_dir().map_err(|e| Error::io("read", Path::new("."), e))?,
        };
        Ok(Self {
            text: text.into(),
            file: None,
            base_dir,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The environments the file defines.
    pub fn environments(&self) -> Result<Vec<String>> {
        let doc = document::parse(&self.text).map_err(|l| self.error(l))?;
        document::environment_names(doc.get_ref()).map_err(|l| self.error(l))
    }

    /// The settings for `env` (`None`: `default-env`, else the base alone).
    pub fn load(&self, env: Option<&str>) -> Result<Config> {
        let doc = document::parse(&self.text).map_err(|l| self.error(l))?;
        let names = document::environment_names(doc.get_ref()).map_err(|l| self.error(l))?;
        let default = document::default_env(doc.get_ref()).map_err(|l| self.error(l))?;
        if let Some(name) = &default
            && !names.contains(name)
        {
            let span = document::locate(doc.get_ref(), "default-env");
            return Err(self.error(Located {
                key: Some("default-env".into()),
                span,
                message: format!(
                    "`default-env` names `{name}`, which is not defined; defined: {}",
                    list(&names)
                ),
            }));
        }
        let environment = env.map(str::to_owned).or(default);
        if let Some(name) = &environment
            && !names.contains(name)
        {
            return Err(self.error(Located {
                key: None,
                span: None,
                message: format!(
                    "environment `{name}` is not defined; defined: {}",
                    list(&names)
                ),
            }));
        }
        let (table, production) =
            document::effective(&doc, environment.as_deref()).map_err(|l| self.error(l))?;
        let merged = table.get_ref().clone();
        let de = toml::de::Deserializer::from(table);
        let mut settings: Settings = serde_path_to_error::deserialize(de)
            .map_err(|e| self.error(document::from_serde(&e)))?;
        if let Some((key, message)) = validate::validate(&settings).into_iter().next() {
            let span = document::locate(&merged, &key);
            return Err(self.error(Located {
                key: Some(key),
                span,
                message,
            }));
        }
        validate::anchor_paths(&mut settings, &self.base_dir);
        Ok(Config {
            settings,
            environment,
            production,
            file: self.file.clone(),
            base_dir: self.base_dir.clone(),
            text: self.text.clone(),
        })
    }

    /// A config error naming the file, the line and the key.
    fn error(&self, located: Located) -> Error {
        let line = located.span.map(|s| document::line_of(&self.text, s.start));
        let place = match (&self.file, line) {
            (Some(f), Some(l)) => format!("{}:{l}: ", f.display()),
            (Some(f), None) => format!("{}: ", f.display()),
            (None, Some(l)) => format!("config line {l}: "),
            (None, None) => String::new(),
        };
        let mut err = Error::config(format!("{place}{}", located.message));
        if let Some(f) = &self.file {
            err = err.with_file(f);
        }
        if let Some(l) = line {
            err = err.with_line(l);
        }
        if let Some(k) = located.key {
            err = err.with_key(k);
        }
        err
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl Config {
    /// Loads `path` for `env` in one step.
    pub fn load(path: &Path, env: Option<&str>) -> Result<Self> {
        ConfigSource::from_file(path)?.load(env)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The environment variables this config's secrets come from (`env:NAME`): never passed
    /// on to a command vigia runs for the operator (a hook, a fetch, a build, the upgrade).
    pub fn secret_env_names(&self) -> Vec<String> {
        let mut copy = self.settings.clone();
        validate::secrets_mut(&mut copy)
            .into_iter()
            .filter_map(|(_, secret)| match secret {
                SecretRef::Env(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Fails naming the first missing key that the backup, verify, prune and restore commands
    /// need; a config without them is valid for everything else.
    pub fn backup_requirements(&self) -> Result<()> {
        let missing = |key: &str, what: &str| {
            Err(Error::config(format!("missing `{key}`: {what}")).with_key(key))
        };
        match self.backup.store {
            None => return missing("backup.store", "\"local\" or \"s3\""),
            Some(StoreKind::Local) if self.backup.path.is_none() => {
                return missing("backup.path", "the local store's directory");
            }
            Some(StoreKind::S3) if self.backup.s3.is_none() => {
                return missing("backup.s3.bucket", "the S3 bucket");
            }
            Some(_) => {}
        }
        if self.backup.name_key.is_none() {
            return missing(
                "backup.name-key",
                "a reference to the 64-hex-character name key",
            );
        }
        if self.backup.encryption.is_none() {
            return missing(
                "backup.encryption.recipients",
                "the age public keys backups are encrypted to",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
