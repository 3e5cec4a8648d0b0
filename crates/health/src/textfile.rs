//! `state-dir/vigia-health.prom`: the checks' results in Prometheus' classic text format, for
//! node_exporter's textfile collector. Written whole under a temporary name and renamed
//! (`write_durably`), so a scrape never reads half a file. A run of some checks (`--only`) replaces only their series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Error, Result};

pub const HEALTH_METRICS_FILE: &str = "vigia-health.prom";

const STATUS: &str = "vigia_check_status";
const DURATION: &str = "vigia_check_duration_seconds";

/// Writes `results` (skipped ones left out) into `path`; a `partial` run (`--only`) keeps
/// the series of the checks it did not include, a full one replaces the file.
pub fn write(path: &Path, results: &[CheckResult], partial: bool) -> Result<()> {
    let mut series: BTreeMap<(&str, String), String> = BTreeMap::new();
    let previous = if partial {
        std::fs::read_to_string(path).unwrap_or_default()
    } else {
        String::new()
    };
    let ran: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    for line in previous.lines() {
        if let Some((metric, check, value)) = parse(line)
            && !ran.contains(&check.as_str())
        {
            series.insert((metric, check), value.to_owned());
        }
    }
    for r in results.iter().filter(|r| r.status != CheckStatus::Skipped) {
        let code = r.status.plugin_code();
        series.insert((STATUS, r.name.clone()), code.to_string());
        let seconds = r.duration_ms as f64 / 1000.0;
        series.insert((DURATION, r.name.clone()), format!("{seconds:.3}"));
    }
    let mut text = String::new();
    for (metric, help) in [
        (
            STATUS,
            "Health check result: 0 ok, 1 warning, 2 critical, 3 unknown.",
        ),
        (DURATION, "How long the health check took."),
    ] {
        let _ = writeln!(text, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for ((_, check), value) in series.iter().filter(|((m, _), _)| *m == metric) {
            let _ = writeln!(text, "{metric}{{check=\"{}\"}} {value}", escape(check));
        }
    }
    replace(path, text.as_bytes())
}

/// `metric{check="name"} value` of one of ours.
fn parse(line: &str) -> Option<(&'static str, String, &str)> {
    let metric = [STATUS, DURATION]
        .into_iter()
        .find(|m| line.starts_with(&format!("{m}{{")))?;
    let rest = line.strip_prefix(metric)?.strip_prefix("{check=\"")?;
    let (label, value) = rest.rsplit_once("\"} ")?;
    Some((metric, unescape(label), value))
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The inverse of `escape`, in one pass (an escaped backslash before `n` is not a newline).
fn unescape(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    vigia_core::disk::write_durably(path, bytes).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: CheckStatus) -> CheckResult {
        CheckResult {
            name: name.into(),
            status,
            summary: String::new(),
            evidence: serde_json::Value::Null,
            duration_ms: 1500,
        }
    }

    #[test]
    fn a_partial_run_replaces_only_its_series_and_skipped_checks_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HEALTH_METRICS_FILE);
        write(
            &path,
            &[
                result("postgres", CheckStatus::Critical),
                result("disk:/srv", CheckStatus::Ok),
                result("odoo.public", CheckStatus::Skipped),
            ],
            false,
        )
        .unwrap();
        write(&path, &[result("postgres", CheckStatus::Ok)], true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("vigia_check_status{check=\"postgres\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("vigia_check_status{check=\"disk:/srv\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("vigia_check_duration_seconds{check=\"disk:/srv\"} 1.500\n"));
        assert!(!text.contains("odoo.public"), "{text}");
        assert_eq!(text.matches("# TYPE").count(), 2);
        // A full run replaces the file: a filesystem no longer measured leaves no series.
        write(&path, &[result("postgres", CheckStatus::Ok)], false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("disk:/srv"), "{text}");
    }

    #[test]
    fn labels_survive_escaping_and_back() {
        for label in ["disk:/srv", "a\\nb", "x\"y", "new\nline", "back\\"] {
            assert_eq!(unescape(&escape(label)), label);
        }
    }
}
