//! `vigia config show`: the settings in force, as TOML or JSON, with nothing secret in them.

use serde::Serialize;

use super::Config;

/// The merged settings of one environment. Secret fields hold references, never values;
/// URL userinfo (`smtp://user:pw@host`), the heartbeat URL's path and `cmd:` commands are
/// masked.
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

/// Masks what is secret in values that are not secret fields, and drops unset keys (TOML has
/// no null): URL userinfo, the heartbeat URL's path (a capability: whoever has it keeps the
/// dead man's switch green), and the command of a `cmd:` reference (it may hold the secret).
fn clean(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = mask(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(clean),
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v) {
                    ("heartbeat-url", serde_json::Value::String(url)) => *url = mask_path(url),
                    (_, v) => clean(v),
                }
            }
        }
        _ => {}
    }
}

fn mask(s: &str) -> String {
    if s.starts_with("cmd:") {
        return "cmd:<redacted>".to_owned();
    }
    mask_url_userinfo(s)
}

/// `scheme://user:secret@host` -> `scheme://***@host`: a user alone may be a token too.
pub(crate) fn mask_url_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => s.to_owned(),
    }
}

/// `https://hc.example.com/ping/abc?k=v` -> `https://hc.example.com/***`.
fn mask_path(s: &str) -> String {
    let masked = mask_url_userinfo(s);
    let Some((scheme, rest)) = masked.split_once("://") else {
        return "<redacted>".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}/***", &rest[..authority_end])
}

impl crate::envelope::Outcome for ConfigView {}

#[cfg(test)]
mod tests {
    use super::mask_url_userinfo;
    use crate::config::ConfigSource;

    /// Regression (issue 10 item 4): `config show` printed the heartbeat URL (a capability:
    /// whoever has it keeps the dead man's switch green), a token alone in a URL's userinfo,
    /// and the command of a `cmd:` secret (which may hold the secret itself).
    #[test]
    fn config_show_prints_no_capability_token_or_secret_command() {
        let text = "[odoo]\ndatabase = \"odoo\"\n\
                    [postgres]\npassword = \"cmd:echo hunter2\"\n\
                    [backup]\nheartbeat-url = \"https://hc.example.com/ping/c4p4b1l1ty?k=s3cr3t\"\n\
                    [alerting]\nsmtp-url = \"smtp://t0k3n@mail.example.cr:587\"\n";
        let config = ConfigSource::from_text(text, None)
            .unwrap()
            .load(None)
            .unwrap();
        let shown = serde_json::to_string(&config.view()).unwrap();
        for secret in ["c4p4b1l1ty", "s3cr3t", "t0k3n", "hunter2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("https://hc.example.com/"), "{shown}");
        assert!(shown.contains("cmd:"), "{shown}");
    }

    #[test]
    fn masks_the_userinfo_of_a_url() {
        assert_eq!(
            mask_url_userinfo("smtp://ops:hunter2@mail.example.cr:587"),
            "smtp://***@mail.example.cr:587"
        );
        assert_eq!(
            mask_url_userinfo("https://erp.example.cr/a@b"),
            "https://erp.example.cr/a@b"
        );
    }
}
