use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::error::ErrorKind;

fn source(text: &str) -> ConfigSource {
    ConfigSource {
        text: text.to_owned(),
        file: Some(PathBuf::from("/etc/vigia/vigia.toml")),
        base_dir: PathBuf::from("/etc/vigia"),
    }
}

const MINIMAL: &str = "[odoo]\ndatabase = \"odoo\"\n";

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = source(MINIMAL).load(None).unwrap();
    assert_eq!(c.timezone, "America/Costa_Rica");
    assert_eq!(c.state_dir, Path::new("/var/lib/vigia"));
    assert_eq!(
        (
            c.postgres.host.as_str(),
            c.postgres.port,
            c.postgres.user.as_str()
        ),
        ("localhost", 5432, "odoo")
    );
    assert_eq!(c.postgres.sslmode, SslMode::Prefer);
    assert_eq!(c.postgres.sslrootcert, None);
    assert_eq!(c.runtime.kind, RuntimeKind::None);
    let r = &c.backup.retention;
    assert_eq!(
        (r.keep_last, r.keep_daily, r.keep_weekly, r.keep_monthly),
        (7, 14, 8, 12)
    );
    assert_eq!(c.backup.grace_period.to_string(), "2d");
    assert_eq!(c.restore.jobs, 2);
    assert!(c.restore.no_owner);
    assert!(c.hacienda.is_none() && c.alerting.is_none());
    assert!(!c.production && c.environment.is_none());
}

#[test]
fn typo_in_a_key_names_file_line_and_key() {
    let err = source("[odoo]\ndatabase = \"odoo\"\n\n[backup.retention]\nkeep-lastt = 3\n")
        .load(None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.context().line, Some(5));
    assert_eq!(
        err.context().key.as_deref(),
        Some("backup.retention.keep-lastt")
    );
    assert!(
        err.message()
            .starts_with("/etc/vigia/vigia.toml:5: unknown key `backup.retention.keep-lastt`"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("keep-last"),
        "the message lists the expected keys: {}",
        err.message()
    );
}

#[test]
fn bad_value_says_what_is_expected() {
    let err = source("[odoo]\ndatabase = \"odoo\"\n[postgres]\nport = \"5432\"\n")
        .load(None)
        .unwrap_err();
    assert_eq!(err.context().line, Some(4));
    assert_eq!(err.context().key.as_deref(), Some("postgres.port"));
    assert!(err.message().contains("expected"), "{}", err.message());
}

#[test]
fn missing_database_is_named() {
    let err = source("[odoo]\nurl = \"https://erp.example.cr\"\n")
        .load(None)
        .unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("odoo.database"));
    assert!(
        err.message()
            .contains("missing required key `odoo.database`"),
        "{}",
        err.message()
    );
}

#[test]
fn bare_secret_is_refused_without_echoing_it() {
    let err = source("[odoo]\ndatabase = \"odoo\"\n[postgres]\npassword = \"hunter2\"\n")
        .load(None)
        .unwrap_err();
    assert_eq!(err.context().line, Some(4));
    assert_eq!(err.context().key.as_deref(), Some("postgres.password"));
    assert!(err.message().contains("env:NAME"), "{}", err.message());
    assert!(!err.message().contains("hunter2"));
}

#[test]
fn environment_overrides_the_base_and_may_be_production() {
    let text = "default-env = \"prod\"\n[odoo]\ndatabase = \"odoo\"\n\
                [environments.prod]\nproduction = true\n\
                [environments.staging]\nodoo.database = \"odoo_staging\"\n";
    let prod = source(text).load(None).unwrap();
    assert_eq!(prod.environment.as_deref(), Some("prod"));
    assert!(prod.production);
    let staging = source(text).load(Some("staging")).unwrap();
    assert_eq!(staging.odoo.database, "odoo_staging");
    assert!(!staging.production);
}

#[test]
fn error_inside_an_environment_points_at_its_line() {
    let text = "[odoo]\ndatabase = \"odoo\"\n[environments.staging]\nodoo.databse = \"x\"\n";
    let err = source(text).load(Some("staging")).unwrap_err();
    assert_eq!(err.context().line, Some(4));
    assert_eq!(err.context().key.as_deref(), Some("odoo.databse"));
    let err = source(text).check(None, false).unwrap_err();
    assert_eq!(err.context().line, Some(4), "check loads every environment");
}

#[test]
fn unknown_environment_lists_the_defined_ones() {
    let err = source("[odoo]\ndatabase = \"o\"\n[environments.staging]\n")
        .load(Some("prod"))
        .unwrap_err();
    assert!(
        err.message()
            .contains("`prod` is not defined; defined: staging"),
        "{}",
        err.message()
    );
}

#[test]
fn semantic_errors_name_the_key_and_line() {
    let text =
        "[odoo]\ndatabase = \"odoo\"\n[backup.encryption]\nrecipients = [\n  \"age1nope\",\n]\n";
    let err = source(text).load(None).unwrap_err();
    assert_eq!(
        err.context().key.as_deref(),
        Some("backup.encryption.recipients[0]")
    );
    assert_eq!(err.context().line, Some(5));
}

#[test]
fn relative_paths_are_relative_to_the_config_folder() {
    let text = "[odoo]\ndatabase = \"odoo\"\n[backup]\nstore = \"local\"\npath = \"backups\"\nname-key = \"file:name.key\"\n";
    let c = source(text).load(None).unwrap();
    assert_eq!(
        c.backup.path.as_deref(),
        Some(Path::new("/etc/vigia/backups"))
    );
    assert_eq!(
        c.backup.name_key,
        Some(SecretRef::File("/etc/vigia/name.key".into()))
    );
}

#[test]
fn check_warns_on_unset_variables_and_strict_makes_it_an_error() {
    let text =
        "[odoo]\ndatabase = \"odoo\"\n[postgres]\npassword = \"env:VIGIA_TEST_SURELY_UNSET\"\n";
    let report = source(text).check(None, false).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.key == "postgres.password" && w.message.contains("VIGIA_TEST_SURELY_UNSET"))
    );
    let err = source(text).check(None, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn backup_commands_name_the_missing_key() {
    let c = source(MINIMAL).load(None).unwrap();
    let err = c.backup_requirements().unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("backup.store"));
}

#[test]
fn template_parses_in_every_environment() {
    let src = source(TEMPLATE);
    for env in src.environments().unwrap() {
        src.load(Some(&env)).unwrap();
    }
    let c = src.load(None).unwrap();
    assert!(
        c.production,
        "the template's default environment is production"
    );
}

#[test]
fn template_names_every_key_of_the_schema() {
    let c = source(TEMPLATE).load(None).unwrap();
    let mut schema = BTreeSet::new();
    key_paths(
        "",
        &serde_json::to_value(c.settings()).unwrap(),
        &mut schema,
    );
    let doc: toml::Table = toml::from_str(TEMPLATE).unwrap();
    let mut documented = BTreeSet::new();
    key_paths("", &serde_json::to_value(&doc).unwrap(), &mut documented);
    let undocumented: Vec<_> = schema.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from the template: {undocumented:?}"
    );
}

fn key_paths(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_object() {
                key_paths(&path, v, out);
            } else if !v.is_null() {
                out.insert(path);
            }
        }
    }
}

#[test]
fn a_local_runtime_needs_the_command_that_starts_odoo() {
    let text = format!("{MINIMAL}[runtime]\nkind = \"local\"\n");
    let err = source(&text).load(None).unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("runtime.odoo-command"));
    let text = format!("{text}odoo-command = \"odoo-bin -c /etc/odoo.conf\"\n");
    let c = source(&text).load(None).unwrap();
    assert_eq!(
        c.runtime.odoo_command.as_deref(),
        Some("odoo-bin -c /etc/odoo.conf")
    );
}

#[test]
fn sslmode_takes_libpq_values_and_names_them_when_wrong() {
    let text =
        format!("{MINIMAL}[postgres]\nsslmode = \"verify-full\"\nsslrootcert = \"pg-ca.crt\"\n");
    let c = source(&text).load(None).unwrap();
    assert_eq!(c.postgres.sslmode, SslMode::VerifyFull);
    assert_eq!(
        c.postgres.sslrootcert.as_deref(),
        Some(Path::new("/etc/vigia/pg-ca.crt")),
        "relative to the config's folder"
    );
    let err = source(&format!("{MINIMAL}[postgres]\nsslmode = \"requir\"\n"))
        .load(None)
        .unwrap_err();
    assert_eq!(err.context().key.as_deref(), Some("postgres.sslmode"));
    assert_eq!(err.context().line, Some(4));
    for value in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
        assert!(err.message().contains(value), "{}", err.message());
    }
}

#[test]
fn sslrootcert_must_name_a_file() {
    for value in ["system", ""] {
        let text = format!("{MINIMAL}[postgres]\nsslrootcert = \"{value}\"\n");
        let err = source(&text).load(None).unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("postgres.sslrootcert"));
        assert!(
            err.message().contains("CA certificate"),
            "{}",
            err.message()
        );
    }
}

#[test]
fn config_show_displays_the_tls_keys() {
    let text = format!("{MINIMAL}[postgres]\nsslmode = \"require\"\nsslrootcert = \"pg-ca.crt\"\n");
    let view = source(&text).load(None).unwrap().view();
    assert_eq!(view.settings["postgres"]["sslmode"], "require");
    assert_eq!(
        view.settings["postgres"]["sslrootcert"],
        "/etc/vigia/pg-ca.crt"
    );
    let view = source(MINIMAL).load(None).unwrap().view();
    assert_eq!(
        view.settings["postgres"]["sslmode"], "prefer",
        "the default is shown"
    );
}

#[test]
fn an_smtp_password_in_the_url_is_refused_and_never_echoed() {
    for url in [
        "smtp://ops:hunter2@mail.example.cr:587",
        "smtpx://ops:hunter2@mail.example.cr",
    ] {
        let text = format!(
            "[odoo]\ndatabase = \"odoo\"\n[alerting]\nemail-to = [\"ops@example.cr\"]\n\
             email-from = \"vigia@example.cr\"\nsmtp-url = \"{url}\"\n"
        );
        let err = crate::ConfigSource::from_text(text, None)
            .unwrap()
            .load(None)
            .unwrap_err();
        assert_eq!(
            err.context().key.as_deref(),
            Some("alerting.smtp-url"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn deploy_addons_stay_inside_a_release_and_the_root_is_anchored() {
    let text = format!("{MINIMAL}[deploy]\nroot = \"srv\"\n");
    let c = source(&text).load(None).unwrap();
    let deploy = c.deploy.as_ref().unwrap();
    assert_eq!(deploy.root, Path::new("/etc/vigia/srv"));
    assert_eq!(deploy.addons, [Path::new("addons")]);
    for bad in ["\"../addons\"", "\"/opt/addons\"", "\"a/../../b\""] {
        let text = format!("{MINIMAL}[deploy]\nroot = \"/srv\"\naddons = [{bad}]\n");
        let err = source(&text).load(None).unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("deploy.addons"), "{bad}");
    }
}

#[test]
fn a_fetch_command_names_a_folder_locally_and_an_image_under_compose() {
    let deploy = |fetch: &str| format!("[deploy]\nroot = \"/srv\"\nfetch-command = \"{fetch}\"\n");
    let local = format!("{MINIMAL}[runtime]\nkind = \"local\"\nodoo-command = \"x\"\n");
    let compose =
        format!("{MINIMAL}[runtime]\nkind = \"compose\"\ncompose-file = \"/srv/c.yml\"\n");
    let key = |text: &str| source(text).load(None).unwrap_err().context().key.clone();
    assert_eq!(
        key(&format!("{local}{}", deploy("git clone r {ref}"))).as_deref(),
        Some("deploy.fetch-command")
    );
    source(&format!("{local}{}", deploy("git clone r {dir}")))
        .load(None)
        .unwrap();
    assert_eq!(
        key(&format!("{compose}{}", deploy("docker pull x"))).as_deref(),
        Some("deploy.fetch-command")
    );
    source(&format!("{compose}{}", deploy("docker build -t {ref} .")))
        .load(None)
        .unwrap();
}
