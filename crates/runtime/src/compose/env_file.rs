//! The release of a compose stack is one variable of the `.env` beside its compose file
//! (`[runtime] release-variable`, e.g. `ODOO_IMAGE=registry.example.cr/erp:2026.11`). Read
//! and rewritten here as text: only that one line changes, the rest (comments, other
//! variables, their order) stays byte for byte. The value is an image reference, checked, so
//! that nothing written can break the file or another variable.

use std::fmt::Write as _;

use vigia_core::{Error, Result};

/// The value of `name` in `text`, unquoted; None when no line sets it.
pub fn value_of(text: &str, name: &str) -> Option<String> {
    // The last line that sets it wins, as in Compose.
    text.lines()
        .rev()
        .find_map(|line| assignment(line, name))
        .map(|value| unquote(value.trim()).to_owned())
}

/// `text` with the line (or lines) that set `name` now setting `value`; a config error naming
/// `runtime.release-variable` when no line sets it (vigia never adds one: the file is the
/// operator's).
pub fn with_value(text: &str, name: &str, value: &str) -> Result<String> {
    check_image(value)?;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if assignment(body, name).is_some() {
            found = true;
            let indent = &body[..body.len() - body.trim_start().len()];
            let export = if body.trim_start().starts_with("export ") {
                "export "
            } else {
                ""
            };
            let _ = write!(out, "{indent}{export}{name}={value}");
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    if !found {
        return Err(Error::config(format!(
            "no line of the compose file's .env sets {name}: add `{name}=<image>` there (the \
             compose file must use ${{{name}}})"
        ))
        .with_key("runtime.release-variable"));
    }
    Ok(out)
}

/// An image reference: `[registry/]name[:tag][@digest]` characters only.
pub fn check_image(value: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    // First a letter or digit: the value goes on Docker's command line (never an option).
    let first = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first || value.len() > 255 || !value.chars().all(allowed) {
        return Err(Error::invalid_input(format!(
            "`{}` is not an image reference (letters, digits and . _ - / : @, starting with a \
             letter or digit)",
            value.escape_default()
        )));
    }
    Ok(())
}

/// The value part when `line` sets `name` (`NAME=..`, `export NAME=..`, spaces around `=`).
fn assignment<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let rest = line.strip_prefix(name)?;
    rest.trim_start().strip_prefix('=')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "# the stack\nPOSTGRES_DB=odoo\nODOO_IMAGE=\"localhost/odoo:v1\"\n\
                       ODOO_IMAGE_OLD=x\r\nexport TZ=America/Costa_Rica\n";

    #[test]
    fn one_line_changes_and_the_rest_stays_byte_for_byte() {
        assert_eq!(
            value_of(ENV, "ODOO_IMAGE").as_deref(),
            Some("localhost/odoo:v1")
        );
        let new = with_value(ENV, "ODOO_IMAGE", "localhost/odoo:v2").unwrap();
        assert_eq!(
            new,
            ENV.replace(
                "ODOO_IMAGE=\"localhost/odoo:v1\"",
                "ODOO_IMAGE=localhost/odoo:v2"
            )
        );
        assert_eq!(value_of(&new, "ODOO_IMAGE_OLD").as_deref(), Some("x"));
        let tz = with_value(ENV, "TZ", "a/b").unwrap();
        assert!(tz.ends_with("export TZ=a/b\n"), "{tz}");
    }

    #[test]
    fn a_missing_line_names_the_key_and_odd_values_are_refused() {
        let err = with_value(ENV, "ODOO_TAG", "v2").unwrap_err();
        assert_eq!(
            err.context().key.as_deref(),
            Some("runtime.release-variable")
        );
        for bad in [
            "",
            "v2\nPOSTGRES_DB=evil",
            "v 2",
            "$(id)",
            "v2\"",
            "--help",
            "/abs:1",
            &"a".repeat(256),
        ] {
            assert!(with_value(ENV, "ODOO_IMAGE", bad).is_err(), "{bad:?}");
        }
    }
}
