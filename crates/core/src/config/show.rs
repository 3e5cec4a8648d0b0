//! `vigia config show`: the settings in force, as TOML or JSON, with nothing secret in them.

use serde::Serialize;

use super::Config;

/// The merged settings of one environment. Secret fields hold references, never values;
/// passwords written into URLs (`smtp://user:pw@host`) are masked.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    pub environment: Option<String>,
    pub production: bool,
    pub file: Option<std::path::PathBuf>,
    pub settings: serde_json::Value,
}

impl Config {
    pub fn view(&self) -> ConfigView {
        let mut settings = serde_json::to_value(self.settings()).unwrap_or_default();
        clean(&mut settings);
        ConfigView {
            environment: self.environment.clone(),
            production: self.production,
            file: self.file.clone(),
            settings,
        }
    }
}

/// Masks URL passwords and drops unset keys (TOML has no null).
fn clean(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = mask_url_password(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(clean),
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(clean);
        }
        _ => {}
    }
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`.
fn mask_url_password(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return s.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => s.to_owned(),
    }
}

impl crate::envelope::Outcome for ConfigView {}

#[cfg(test)]
mod tests {
    use super::mask_url_password;

    #[test]
    fn masks_the_password_in_a_url() {
        assert_eq!(
            mask_url_password("smtp://ops:hunter2@mail.example.cr:587"),
            "smtp://ops:***@mail.example.cr:587"
        );
        assert_eq!(
            mask_url_password("https://erp.example.cr/a@b"),
            "https://erp.example.cr/a@b"
        );
    }
}
