//! Odoo's server log: `2026-11-29 12:00:00,123 4242 ERROR odoo odoo.addons.x: message`, one
//! record per line starting with its time (UTC in Odoo's containers), followed by traceback
//! continuation lines that do not.

use jiff::Timestamp;
use jiff::civil::DateTime;

/// The ERROR and CRITICAL records of `lines` at or after `since`, not counting werkzeug's
/// access lines (a 500 is logged by the handler that failed) or traceback continuations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogErrors {
    pub count: usize,
    /// The first three, as they read.
    pub first: Vec<String>,
}

pub fn errors_since(lines: &[String], since: Timestamp) -> LogErrors {
    let mut found = LogErrors::default();
    for line in lines {
        let Some((at, level, logger)) = parse(line) else {
            continue;
        };
        if at < since || !matches!(level, "ERROR" | "CRITICAL") || logger == "werkzeug:" {
            continue;
        }
        found.count += 1;
        if found.first.len() < 3 {
            found.first.push(line.chars().take(300).collect());
        }
    }
    found
}

/// (time, level, logger) of a record line; None for anything else.
fn parse(line: &str) -> Option<(Timestamp, &str, &str)> {
    let stamp = line.get(..19)?;
    let at = jiff::tz::TimeZone::UTC
        .to_timestamp(stamp.replacen(' ', "T", 1).parse::<DateTime>().ok()?)
        .ok()?;
    // `,123 4242 ERROR database logger: message`
    let mut fields = line.get(19..)?.split_whitespace();
    let _millis = fields.next()?;
    let _pid = fields.next()?;
    let level = fields.next()?;
    let _database = fields.next()?;
    let logger = fields.next()?;
    Some((at, level, logger))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_once_without_access_lines_or_tracebacks() {
        let lines: Vec<String> = [
            "2026-11-29 10:00:00,001 42 ERROR odoo odoo.addons.base: too old",
            "2026-11-29 12:00:00,001 42 INFO odoo odoo.modules: loaded",
            "2026-11-29 12:00:01,001 42 ERROR odoo odoo.addons.l10n_cr_einvoice: signing failed",
            "Traceback (most recent call last):",
            "  File \"x.py\", line 1, in <module>",
            "2026-11-29 12:00:02,001 42 INFO odoo werkzeug: 127.0.0.1 GET /web 500 -",
            "2026-11-29 12:00:02,500 42 ERROR odoo werkzeug: 127.0.0.1 GET /web 500 -",
            "2026-11-29 12:00:03,001 42 CRITICAL odoo odoo.service.server: worker died",
        ]
        .map(str::to_owned)
        .into();
        let since: Timestamp = "2026-11-29T11:00:00Z".parse().unwrap();
        let found = errors_since(&lines, since);
        assert_eq!(found.count, 2);
        assert!(found.first[0].contains("signing failed"));
        assert!(found.first[1].contains("worker died"));
    }
}
