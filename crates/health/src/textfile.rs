//! `state-dir/vigia-health.prom` and `vigia-smoke.prom`: the checks' results in Prometheus'
//! classic text format, for node_exporter's textfile collector. Each file has its own metric
//! names, so that the `tls` both runs report is never one series twice. Written whole under
//! a temporary name and renamed (`write_durably`), so a scrape never reads half a file. A run of some checks (`--only`)
//! replaces only their series. The e-invoice counts are gauges of their own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use vigia_core::ports::check::{CheckResult, CheckStatus};
use vigia_core::{Error, Result};

pub const HEALTH_METRICS_FILE: &str = "vigia-health.prom";
pub const SMOKE_METRICS_FILE: &str = "vigia-smoke.prom";

/// A run's file and the names of its two series per check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub file: &'static str,
    status: &'static str,
    duration: &'static str,
    /// What the run is called in the HELP lines.
    run: &'static str,
}

pub const HEALTH: Metrics = Metrics {
    file: HEALTH_METRICS_FILE,
    status: "vigia_check_status",
    duration: "vigia_check_duration_seconds",
    run: "Health",
};

pub const SMOKE: Metrics = Metrics {
    file: SMOKE_METRICS_FILE,
    status: "vigia_smoke_status",
    duration: "vigia_smoke_duration_seconds",
    run: "Smoke",
};

/// A gauge taken from a check's evidence: one series per field, labelled `label`.
struct Gauge {
    metric: &'static str,
    help: &'static str,
    /// The check whose evidence holds it (and whose `--only` run replaces it).
    check: &'static str,
    label: &'static str,
    /// (evidence key, label value).
    fields: &'static [(&'static str, &'static str)],
}

const GAUGES: [Gauge; 2] = [
    Gauge {
        metric: "vigia_einvoice_documents",
        help: "E-invoice documents: failed within [einvoice] failed-window, stuck past \
               stuck-after, accepted without their e-mail.",
        check: "einvoice.documents",
        label: "state",
        fields: &[
            ("failed", "failed"),
            ("stuck", "stuck"),
            ("email_backlog", "email_backlog"),
        ],
    },
    Gauge {
        metric: "vigia_einvoice_queue_backlog",
        help: "Rows waiting in the e-invoicing module's queues.",
        check: "einvoice.queues",
        label: "queue",
        fields: &[("retry_backlog", "retry"), ("pos_backlog", "pos")],
    },
];

/// One sample: its metric and rendered labels, and the check that owns it.
type Series = BTreeMap<(&'static str, String), (String, String)>;

/// Writes `results` (skipped ones left out) into `path`; a `partial` run (`--only`) keeps
/// the series of the checks it did not include, a full one replaces the file.
pub fn write(path: &Path, names: Metrics, results: &[CheckResult], partial: bool) -> Result<()> {
    let (status, duration) = (names.status, names.duration);
    let mut series = Series::new();
    let previous = if partial {
        std::fs::read_to_string(path).unwrap_or_default()
    } else {
        String::new()
    };
    let ran: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    for line in previous.lines() {
        if let Some((metric, labels, owner, value)) = parse(line, names)
            && !ran.contains(&owner.as_str())
        {
            series.insert((metric, labels), (owner, value.to_owned()));
        }
    }
    for r in results.iter().filter(|r| r.status != CheckStatus::Skipped) {
        let mut add = |metric, value: String| {
            let labels = format!("check=\"{}\"", escape(&r.name));
            series.insert((metric, labels), (r.name.clone(), value));
        };
        add(status, r.status.plugin_code().to_string());
        add(duration, format!("{:.3}", r.duration_ms as f64 / 1000.0));
        for gauge in GAUGES.iter().filter(|g| g.check == r.name) {
            for (key, label) in gauge.fields {
                if let Some(n) = r.evidence.get(key).and_then(serde_json::Value::as_i64) {
                    let labels = format!("{}=\"{label}\"", gauge.label);
                    series.insert((gauge.metric, labels), (r.name.clone(), n.to_string()));
                }
            }
        }
    }
    let mut text = String::new();
    let metrics = [
        (
            status,
            format!(
                "{} check result: 0 ok, 1 warning, 2 critical, 3 unknown.",
                names.run
            ),
        ),
        (
            duration,
            format!("How long the {} check took.", names.run.to_lowercase()),
        ),
    ]
    .into_iter()
    .chain(GAUGES.iter().map(|g| (g.metric, g.help.to_owned())));
    for (metric, help) in metrics {
        let samples: Vec<_> = series.iter().filter(|((m, _), _)| *m == metric).collect();
        if samples.is_empty() && ![status, duration].contains(&metric) {
            continue;
        }
        let _ = writeln!(text, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for ((_, labels), (_, value)) in samples {
            let _ = writeln!(text, "{metric}{{{labels}}} {value}");
        }
    }
    replace(path, text.as_bytes())
}

/// `metric{labels} value` of one of ours: the metric, the labels as written, the check that
/// owns the sample, and the value.
fn parse(line: &str, names: Metrics) -> Option<(&'static str, String, String, &str)> {
    let (name, rest) = line.split_once('{')?;
    let (labels, value) = rest.rsplit_once("} ")?;
    if let Some(metric) = [names.status, names.duration]
        .into_iter()
        .find(|m| *m == name)
    {
        let check = labels.strip_prefix("check=\"")?.strip_suffix('"')?;
        return Some((metric, labels.to_owned(), unescape(check), value));
    }
    let gauge = GAUGES.iter().find(|g| g.metric == name)?;
    Some((
        gauge.metric,
        labels.to_owned(),
        gauge.check.to_owned(),
        value,
    ))
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
            HEALTH,
            &[
                result("postgres", CheckStatus::Critical),
                result("disk:/srv", CheckStatus::Ok),
                result("odoo.public", CheckStatus::Skipped),
            ],
            false,
        )
        .unwrap();
        write(&path, HEALTH, &[result("postgres", CheckStatus::Ok)], true).unwrap();
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
        write(&path, HEALTH, &[result("postgres", CheckStatus::Ok)], false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("disk:/srv"), "{text}");
    }

    #[test]
    fn e_invoice_counts_are_gauges_owned_by_their_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HEALTH_METRICS_FILE);
        let mut documents = result("einvoice.documents", CheckStatus::Warning);
        documents.evidence = serde_json::json!({"failed": 3, "stuck": 0, "email_backlog": 12});
        let mut queues = result("einvoice.queues", CheckStatus::Ok);
        queues.evidence = serde_json::json!({"retry_backlog": 4, "pos_backlog": null});
        write(&path, HEALTH, &[documents, queues], false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("vigia_einvoice_documents{state=\"failed\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("vigia_einvoice_documents{state=\"email_backlog\"} 12\n"));
        assert!(text.contains("vigia_einvoice_queue_backlog{queue=\"retry\"} 4\n"));
        assert!(
            !text.contains("queue=\"pos\""),
            "no table, no series: {text}"
        );
        // An --only run of another check keeps them; a run of their check replaces them.
        write(&path, HEALTH, &[result("memory", CheckStatus::Ok)], true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("vigia_einvoice_documents{state=\"failed\"} 3\n"),
            "{text}"
        );
        let mut documents = result("einvoice.documents", CheckStatus::Ok);
        documents.evidence = serde_json::json!({"failed": 0, "stuck": 0, "email_backlog": 0});
        write(&path, HEALTH, &[documents], true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("vigia_einvoice_documents{state=\"failed\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("vigia_einvoice_queue_backlog{queue=\"retry\"} 4\n"));
        assert_eq!(
            text.matches("# TYPE vigia_einvoice_documents gauge")
                .count(),
            1
        );
    }

    #[test]
    fn labels_survive_escaping_and_back() {
        for label in ["disk:/srv", "a\\nb", "x\"y", "new\nline", "back\\"] {
            assert_eq!(unescape(&escape(label)), label);
        }
    }
}
