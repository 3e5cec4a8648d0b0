//! Checks that types alone cannot express, each naming its key.

use std::path::Path;
use std::str::FromStr;

use super::secret::{SecretRef, ValueOrRef};
use super::sections::{RuntimeKind, Settings, StoreKind};

/// Every problem found, as (key path, message).
#[allow(clippy::too_many_lines)] // one check per config key: long by nature
pub(crate) fn validate(s: &Settings) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, msg: String| problems.push((key.to_owned(), msg));

    if jiff::tz::TimeZone::get(&s.timezone).is_err() {
        bad(
            "timezone",
            format!(
                "`{}` is not a known time zone: use an IANA name such as America/Costa_Rica",
                s.timezone
            ),
        );
    }
    for (key, url) in [
        ("odoo.url", s.odoo.url.as_deref()),
        ("odoo.internal-url", s.odoo.internal_url.as_deref()),
        ("backup.heartbeat-url", s.backup.heartbeat_url.as_deref()),
    ] {
        if let Some(url) = url
            && !is_http_url(url)
        {
            bad(key, format!("`{url}` is not an http:// or https:// URL"));
        }
    }
    if let Err(msg) = check_database_name(&s.odoo.database) {
        bad("odoo.database", msg);
    }
    if let Some(root) = &s.postgres.sslrootcert {
        // libpq 16 reads `system` as "the system's CAs"; here it would be a file of that name.
        if root.as_os_str().is_empty() || root == Path::new("system") {
            bad(
                "postgres.sslrootcert",
                format!(
                    "`{}` is not a file: give the path of the CA certificate (PEM) that signed \
                     the server's, or leave the key out",
                    root.display()
                ),
            );
        }
    }
    match s.runtime.kind {
        RuntimeKind::Local if s.runtime.odoo_command.as_deref().is_none_or(str::is_empty) => bad(
            "runtime.odoo-command",
            "kind = \"local\" needs the command that starts Odoo, e.g. \
             \"/opt/odoo/odoo-bin -c /etc/odoo/odoo.conf\""
                .into(),
        ),
        RuntimeKind::Compose if s.runtime.compose_file.is_none() => bad(
            "runtime.compose-file",
            "kind = \"compose\" needs the compose file's path".into(),
        ),
        _ => {}
    }
    if let Some(var) = &s.runtime.release_variable
        && (var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        bad(
            "runtime.release-variable",
            format!("`{var}` is not a variable name (letters, digits, _), e.g. ODOO_IMAGE"),
        );
    }
    for (i, path) in s.runtime.image_addons.iter().enumerate() {
        let clean = path.starts_with('/')
            && !path.split('/').any(|c| c == "..")
            && !path.bytes().any(|b| b.is_ascii_control() || b == b'\\');
        if !clean {
            bad(
                &format!("runtime.image-addons[{i}]"),
                format!(
                    "`{path}` is not an absolute path inside the image, e.g. /mnt/extra-addons"
                ),
            );
        }
    }
    if let Some(services) = &s.runtime.services {
        let names = [
            ("odoo", &services.odoo),
            ("postgres", &services.postgres),
            ("nginx", &services.nginx),
            ("redis", &services.redis),
        ];
        for (part, name) in names {
            if let Some(name) = name.as_deref()
                && !compose_name(name)
            {
                bad(
                    &format!("runtime.services.{part}"),
                    format!("`{name}` is not a compose service name (a-z, 0-9, _, -, .)"),
                );
            }
        }
    }
    if let Some(enc) = &s.backup.encryption {
        if enc.recipients.is_empty() {
            bad(
                "backup.encryption.recipients",
                "needs at least one age public key (age1...): create one with `vigia init` or `age-keygen`".into(),
            );
        }
        for (i, r) in enc.recipients.iter().enumerate() {
            if age::x25519::Recipient::from_str(r).is_err() {
                bad(
                    &format!("backup.encryption.recipients[{i}]"),
                    format!("`{r}` is not an age x25519 public key (age1...)"),
                );
            }
        }
    }
    if let Some(s3) = &s.backup.s3 {
        if s3.bucket.is_empty() {
            bad("backup.s3.bucket", "must not be empty".into());
        }
        if let Some(endpoint) = &s3.endpoint
            && !is_http_url(endpoint)
        {
            bad(
                "backup.s3.endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL"),
            );
        }
    }
    if s.backup.store == Some(StoreKind::Local) && s.backup.path.is_none() {
        bad(
            "backup.path",
            "`store = \"local\"` needs `path`, the store's directory".into(),
        );
    }
    if s.backup.store == Some(StoreKind::S3) && s.backup.s3.is_none() {
        bad(
            "backup.s3",
            "`store = \"s3\"` needs a [backup.s3] table with `bucket`".into(),
        );
    }
    if let Some(e) = &s.einvoice {
        for (key, table) in [
            ("einvoice.documents-table", &e.documents_table),
            ("einvoice.retry-queue-table", &e.retry_queue_table),
            ("einvoice.pos-queue-table", &e.pos_queue_table),
        ] {
            let plain = table.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && table
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && table.len() <= 63;
            if !plain {
                bad(
                    key,
                    format!("`{table}` is not a table name: lower-case letters, digits and `_`"),
                );
            }
        }
    }
    if let Some(r) = &s.redis
        && r.url.strip_prefix("redis://").is_none_or(str::is_empty)
    {
        bad(
            "redis.url",
            format!("`{}` is not a redis://host:port URL", r.url),
        );
    }
    if let Some(d) = &s.deploy {
        if d.keep_releases < 2 {
            bad(
                "deploy.keep-releases",
                "must be at least 2 (the current release and the previous one)".into(),
            );
        }
        // A folder release is fetched into {dir}; an image (compose) is made as {ref}.
        let (needed, what) = if s.runtime.kind == RuntimeKind::Compose {
            (
                "{ref}",
                "the image it makes (under compose a release is an image)",
            )
        } else {
            (
                "{dir}",
                "the folder it fills (it becomes releases/<ref> once the command succeeds)",
            )
        };
        if d.fetch_command
            .as_deref()
            .is_some_and(|c| !c.contains(needed))
        {
            bad(
                "deploy.fetch-command",
                format!("must name {needed}, {what}"),
            );
        }
        for addons in &d.addons {
            let inside = addons.is_relative()
                && addons
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                bad(
                    "deploy.addons",
                    format!(
                        "`{}` must be a folder inside a release (relative, no ..)",
                        addons.display()
                    ),
                );
            }
        }
    }
    if s.smoke.min_score > 100 {
        bad("smoke.min-score", "must be 0 to 100".into());
    }
    if let Some(url) = &s.smoke.http_url
        && !url.starts_with("http://")
    {
        bad(
            "smoke.http-url",
            "must be an http:// URL (where plain HTTP is answered)".into(),
        );
    }
    if s.health.timeout.0.is_zero() {
        bad("health.timeout", "must be more than 0s".into());
    }
    if !(1..=2).contains(&s.backup.format) {
        bad(
            "backup.format",
            format!("`{}` is not a store format: 1 or 2", s.backup.format),
        );
    }
    if !(1..=super::MAX_DUMP_JOBS).contains(&s.backup.jobs) {
        bad(
            "backup.jobs",
            format!("must be 1 to {}", super::MAX_DUMP_JOBS),
        );
    }
    if s.restore.jobs == 0 {
        bad("restore.jobs", "must be at least 1".into());
    }
    if let Some(h) = &s.hacienda
        && let Some(cedula) = &h.cedula
    {
        let digits = cedula.chars().all(|c| c.is_ascii_digit());
        if !digits || !(9..=12).contains(&cedula.len()) {
            bad(
                "hacienda.cedula",
                format!("`{cedula}` is not a cedula: 9 to 12 digits, no dashes"),
            );
        }
    }
    if let Some(a) = &s.alerting {
        for (i, to) in a.email_to.iter().enumerate() {
            if !to.contains('@') {
                bad(
                    &format!("alerting.email-to[{i}]"),
                    format!("`{to}` is not an e-mail address"),
                );
            }
        }
        if !a.email_to.is_empty() {
            if a.email_from.is_none() {
                bad(
                    "alerting.email-from",
                    "alert e-mails need a sender: set email-from = \"vigia@example.cr\"".into(),
                );
            }
            if a.smtp_url.is_none() {
                bad(
                    "alerting.smtp-url",
                    "alert e-mails need a server: set smtp-url = \"smtp://mail.example.cr:587\""
                        .into(),
                );
            }
        }
        if let Some(from) = &a.email_from
            && !from.contains('@')
        {
            bad(
                "alerting.email-from",
                format!("`{from}` is not an e-mail address"),
            );
        }
        for (key, value) in [
            ("alerting.failure-threshold", a.failure_threshold),
            ("alerting.success-threshold", a.success_threshold),
        ] {
            if value == 0 {
                bad(key, "must be at least 1".into());
            }
        }
        if let Some(url) = &a.smtp_url {
            // Shown without its user part: a password written there must not be echoed.
            let shown = super::show::mask_url_userinfo(url);
            let userinfo = url
                .split_once("://")
                .map(|(_, rest)| &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())])
                .and_then(|authority| authority.rsplit_once('@'))
                .map(|(userinfo, _)| userinfo);
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bad(
                    "alerting.smtp-url",
                    format!("`{shown}` is not an smtp:// or smtps:// URL"),
                );
            } else if userinfo.is_some_and(|u| u.contains(':')) {
                bad(
                    "alerting.smtp-url",
                    format!(
                        "`{shown}` holds a password: keep only the user in the URL and put the \
                         password in smtp-password (a secret reference)"
                    ),
                );
            }
        }
    }
    problems
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// A PostgreSQL database name vigia accepts, as Odoo does (`^[A-Za-z0-9][A-Za-z0-9_.-]*$`),
/// at most 63 bytes (refused rather than silently truncated by PostgreSQL).
pub fn check_database_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "`{name}` is longer than PostgreSQL's 63-byte limit"
        ));
    }
    // Odoo's own rule; a first `.` or `-` would make `..` or an option of a name.
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("`{name}` must start with a letter or digit"));
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !ok {
        return Err(format!(
            "`{name}` may hold only letters, digits, `_`, `-` and `.`"
        ));
    }
    Ok(())
}

/// Makes every relative path relative to the config file's folder.
/// A compose service name: it goes on Compose's command line, so it may not start with `-`.
fn compose_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub(crate) fn anchor_paths(s: &mut Settings, base: &Path) {
    let anchor = |p: &mut std::path::PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    anchor(&mut s.state_dir);
    s.odoo.data_dir.as_mut().map(anchor);
    s.odoo.addons_paths.iter_mut().for_each(anchor);
    s.postgres.bin_dir.as_mut().map(anchor);
    s.postgres.sslrootcert.as_mut().map(anchor);
    s.runtime.compose_file.as_mut().map(anchor);
    s.backup.path.as_mut().map(anchor);
    s.health.disk_paths.iter_mut().for_each(anchor);
    if let Some(d) = &mut s.deploy {
        anchor(&mut d.root);
        d.maintenance_file.as_mut().map(anchor);
    }
    s.health.ca_file.as_mut().map(anchor);
    s.health.log_file.as_mut().map(anchor);
    for (_, secret) in secrets_mut(s) {
        secret.anchor(base);
    }
    if let Some(h) = &mut s.hacienda {
        h.certificate.as_mut().map(anchor);
    }
    if let Some(a) = &mut s.alerting {
        a.ca_file.as_mut().map(anchor);
    }
}

/// Every secret reference with its key. Mutable so that paths can be anchored; `config check`
/// calls it on a copy.
pub(crate) fn secrets_mut(s: &mut Settings) -> Vec<(&'static str, &mut SecretRef)> {
    let mut out = Vec::new();
    add(&mut out, "postgres.password", s.postgres.password.as_mut());
    add(&mut out, "backup.name-key", s.backup.name_key.as_mut());
    if let Some(s3) = &mut s.backup.s3 {
        add(&mut out, "backup.s3.access-key", s3.access_key.as_mut());
        add(&mut out, "backup.s3.secret-key", s3.secret_key.as_mut());
    }
    if let Some(enc) = &mut s.backup.encryption {
        add(
            &mut out,
            "backup.encryption.identity",
            enc.identity.as_mut(),
        );
    }
    if let Some(h) = &mut s.hacienda {
        if let Some(ValueOrRef::Ref(r)) = &mut h.username {
            add(&mut out, "hacienda.username", Some(r));
        }
        add(&mut out, "hacienda.password", h.password.as_mut());
        add(&mut out, "hacienda.pin", h.pin.as_mut());
    }
    if let Some(r) = &mut s.redis {
        add(&mut out, "redis.password", r.password.as_mut());
    }
    add(
        &mut out,
        "health.heartbeat-url",
        s.health.heartbeat_url.as_mut(),
    );
    if let Some(a) = &mut s.alerting {
        add(&mut out, "alerting.smtp-password", a.smtp_password.as_mut());
        add(&mut out, "alerting.webhook-url", a.webhook_url.as_mut());
    }
    out
}

fn add<'a>(
    out: &mut Vec<(&'static str, &'a mut SecretRef)>,
    key: &'static str,
    secret: Option<&'a mut SecretRef>,
) {
    out.extend(secret.map(|s| (key, s)));
}
