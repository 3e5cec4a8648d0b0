//! A deploy's journal, `state-dir/deploys/<id>/journal.jsonl`: what the deploy is (its
//! first line), then each step's start and end, each line synced before the next step
//! runs. Read back, it says which steps finished and which one a killed deploy was in, so
//! that a resume re-runs that step and a rollback knows what to undo from the journal alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigia_core::{Error, ErrorKind, Result};

/// What the deploy is, as its first line records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub id: String,
    pub from: String,
    pub to: String,
    pub database: String,
    /// The modules upgraded; empty: no upgrade.
    pub upgrade: Vec<String>,
    /// The copy made before the upgrade.
    pub copy_database: Option<String>,
    pub performer: String,
    /// The upgrade exactly as it runs (a resume runs the same one).
    #[serde(default)]
    pub upgrade_command: Option<String>,
    /// The new release's addon hashes, recorded after the upgrade.
    #[serde(default)]
    pub hashes: std::collections::BTreeMap<String, String>,
}

/// One line after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    Start {
        step: String,
        at: jiff::Timestamp,
    },
    End {
        step: String,
        at: jiff::Timestamp,
        ok: bool,
        detail: String,
    },
    /// A fact a rollback needs later (`copied_at`: the database's clock at the copy).
    Note {
        key: String,
        value: String,
    },
    /// The deploy's end: `deployed`, `rolled_back` or `failed`.
    Outcome {
        outcome: String,
        at: jiff::Timestamp,
    },
}

#[derive(Debug)]
pub struct Journal {
    file: std::fs::File,
    path: PathBuf,
}

impl Journal {
    /// `deploys_dir/<id>/journal.jsonl`.
    pub fn path(deploys_dir: &Path, id: &str) -> PathBuf {
        deploys_dir.join(id).join("journal.jsonl")
    }

    /// A new journal holding `header`; one already there is an error (a deploy id is
    /// used once).
    pub fn create(deploys_dir: &Path, header: &Header) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path(deploys_dir, &header.id);
        let dir = deploys_dir.join(&header.id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut journal = Self { file, path };
        journal.line(&serde_json::to_value(header).map_err(|e| Error::internal(e.to_string()))?)?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", &dir, e))?;
        Ok(journal)
    }

    /// Opens a journal to append to it (a resume, a rollback).
    pub fn append(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::File::options()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn start(&mut self, step: &str) -> Result<()> {
        self.entry(&Entry::Start {
            step: step.to_owned(),
            at: jiff::Timestamp::now(),
        })
    }

    pub fn end(&mut self, step: &str, ok: bool, detail: &str) -> Result<()> {
        self.entry(&Entry::End {
            step: step.to_owned(),
            at: jiff::Timestamp::now(),
            ok,
            detail: detail.to_owned(),
        })
    }

    pub fn note(&mut self, key: &str, value: &str) -> Result<()> {
        self.entry(&Entry::Note {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    pub fn outcome(&mut self, outcome: &str) -> Result<()> {
        self.entry(&Entry::Outcome {
            outcome: outcome.to_owned(),
            at: jiff::Timestamp::now(),
        })
    }

    fn entry(&mut self, entry: &Entry) -> Result<()> {
        self.line(&serde_json::to_value(entry).map_err(|e| Error::internal(e.to_string()))?)
    }

    /// One line, synced before the caller goes on.
    fn line(&mut self, value: &serde_json::Value) -> Result<()> {
        let mut text = value.to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub header: Header,
    /// Steps that ended, in order, with whether they went well.
    pub ended: Vec<(String, bool)>,
    /// The step that started and never ended: where a killed deploy was.
    pub interrupted: Option<String>,
    pub notes: std::collections::BTreeMap<String, String>,
    pub outcome: Option<String>,
}

impl Recorded {
    /// Whether `step` ended well.
    pub fn done(&self, step: &str) -> bool {
        self.ended.iter().any(|(s, ok)| s == step && *ok)
    }

    /// Whether a rollback step is where the deploy was killed.
    pub fn interrupted_in_rollback(&self) -> bool {
        self.interrupted
            .as_deref()
            .is_some_and(|s| s.starts_with("rollback."))
            || self.ended.iter().any(|(s, _)| s.starts_with("rollback."))
    }

    /// Whether `step` started (ended or not).
    pub fn started(&self, step: &str) -> bool {
        self.interrupted.as_deref() == Some(step) || self.ended.iter().any(|(s, _)| s == step)
    }
}

/// Reads the journal at `path`. A last line cut short (a kill mid-write) is left out; any
/// other line that does not parse is corruption, named with its number.
pub fn read(path: &Path) -> Result<Recorded> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let corrupt = |n: usize, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Integrity,
            format!(
                "{}: line {} is not a journal entry: {e}",
                path.display(),
                n + 1
            ),
        )
        .with_file(path)
    };
    let header_line = lines.first().ok_or_else(|| corrupt(0, &"empty"))?;
    let header: Header = serde_json::from_str(header_line).map_err(|e| corrupt(0, &e))?;
    let mut recorded = Recorded {
        header,
        ended: Vec::new(),
        interrupted: None,
        notes: std::collections::BTreeMap::new(),
        outcome: None,
    };
    for (n, line) in lines.iter().enumerate().skip(1) {
        let entry: Entry = match serde_json::from_str(line) {
            Ok(entry) => entry,
            Err(_) if n + 1 == lines.len() && !complete => break,
            Err(e) => return Err(corrupt(n, &e)),
        };
        match entry {
            Entry::Start { step, .. } => {
                // A step after an outcome: a rollback began, and has not ended yet.
                recorded.outcome = None;
                recorded.interrupted = Some(step);
            }
            Entry::End { step, ok, .. } => {
                recorded.interrupted = None;
                recorded.ended.push((step, ok));
            }
            Entry::Note { key, value } => {
                recorded.notes.insert(key, value);
            }
            Entry::Outcome { outcome, .. } => recorded.outcome = Some(outcome),
        }
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            id: "20261129T120000Z".into(),
            from: "v1".into(),
            to: "v2".into(),
            database: "odoo".into(),
            upgrade: vec!["l10n_cr_einvoice".into()],
            copy_database: Some("vigia_predeploy_20261129T120000Z".into()),
            performer: "root@erp".into(),
            upgrade_command: Some("./upgrade odoo".into()),
            hashes: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn a_killed_deploy_is_found_in_the_step_it_was_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), &header()).unwrap();
        journal.start("copy").unwrap();
        journal.end("copy", true, "").unwrap();
        journal.start("upgrade").unwrap();
        drop(journal);
        let path = Journal::path(dir.path(), "20261129T120000Z");
        let recorded = read(&path).unwrap();
        assert_eq!(recorded.header, header());
        assert!(recorded.done("copy") && !recorded.done("upgrade"));
        assert_eq!(recorded.interrupted.as_deref(), Some("upgrade"));
        assert_eq!(recorded.outcome, None);

        // Appended by a resume; a line cut short by a kill is left out.
        let mut again = Journal::append(&path).unwrap();
        again.end("upgrade", false, "exit 1").unwrap();
        again.outcome("rolled_back").unwrap();
        drop(again);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"event\":\"sta")
            .unwrap();
        let recorded = read(&path).unwrap();
        assert_eq!(recorded.interrupted, None);
        assert_eq!(recorded.outcome.as_deref(), Some("rolled_back"));
        assert_eq!(
            recorded.ended,
            [("copy".into(), true), ("upgrade".into(), false)]
        );
        assert!(
            Journal::create(dir.path(), &header()).is_err(),
            "an id is used once"
        );
    }

    #[test]
    fn a_garbled_line_inside_is_corruption_named_by_number() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::create(dir.path(), &header()).unwrap());
        let path = Journal::path(dir.path(), "20261129T120000Z");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("garbage\n{\"event\":\"outcome\",\"outcome\":\"deployed\",\"at\":\"2026-11-29T12:00:00Z\"}\n");
        std::fs::write(&path, text).unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(err.message().contains("line 2"), "{err}");
    }
}
