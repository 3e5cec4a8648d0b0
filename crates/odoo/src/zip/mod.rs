//! Backups made by Odoo's database manager (`/web/database/backup`, `odoo-bin db dump`): a zip
//! of `dump.sql` (plain SQL), `filestore/` and `manifest.json` (DOMAIN.md section 2). Read
//! without Odoo's weak spots: the SQL goes into `psql` with `ON_ERROR_STOP` in one
//! transaction, the zip's checksums are checked (a damaged entry kills psql before it can
//! commit), and every filestore file's sha1 must match its name.

mod restricted_sql;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use vigia_core::{Error, ErrorKind, Result};
use zip::ZipArchive;

use crate::filestore::NewFolder;
use restricted_sql::SqlCopyError;
pub use restricted_sql::copy_restricted;
use vigia_pg::{PgTarget, quote_ident};
use vigia_pg::{collect_stderr, tail};

const DUMP: &str = "dump.sql";
const MANIFEST: &str = "manifest.json";
const FILESTORE: &str = "filestore/";
/// manifest.json is a few kilobytes; more is not a manifest.
const MANIFEST_LIMIT: u64 = 4 << 20;

/// What the zip says it holds (its `manifest.json`), shown before anything happens.
#[derive(Debug, Clone, Serialize)]
pub struct OdooZipInfo {
    pub file: PathBuf,
    /// The database it was dumped from.
    pub db_name: Option<String>,
    /// Odoo's version, e.g. `19.0`.
    pub version: Option<String>,
    pub major_version: Option<String>,
    /// The PostgreSQL server it was dumped from.
    pub pg_version: Option<String>,
    /// Installed modules and their versions.
    pub modules: usize,
    /// `dump.sql`'s size.
    pub dump_bytes: u64,
    pub filestore_files: usize,
    pub filestore_bytes: u64,
}

/// `manifest.json` as Odoo writes it (`odoo/service/db.py` `dump_db_manifest`).
#[derive(Debug, Deserialize)]
struct Manifest {
    db_name: Option<String>,
    version: Option<String>,
    major_version: Option<String>,
    pg_version: Option<serde_json::Value>,
    #[serde(default)]
    modules: BTreeMap<String, serde_json::Value>,
}

impl OdooZipInfo {
    /// Opens the zip and reads its manifest; a zip without `dump.sql` or `manifest.json`, or
    /// whose manifest is not Odoo's, is refused.
    pub fn read(path: &Path) -> Result<Self> {
        let mut archive = open(path)?;
        let manifest: Manifest = {
            let mut entry = archive
                .by_name(MANIFEST)
                .map_err(|e| not_odoo(path, MANIFEST, &e))?;
            let mut text = String::new();
            (&mut entry)
                .take(MANIFEST_LIMIT + 1)
                .read_to_string(&mut text)
                .map_err(|e| damaged(path, MANIFEST, &e))?;
            if text.len() as u64 > MANIFEST_LIMIT {
                return Err(Error::invalid_input(format!(
                    "{}: {MANIFEST} is larger than {MANIFEST_LIMIT} bytes: not Odoo's manifest",
                    path.display()
                )));
            }
            serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!(
                    "{}: {MANIFEST} is not Odoo's manifest ({e}); is this a backup made by \
                     Odoo's database manager?",
                    path.display()
                ))
            })?
        };
        let dump_bytes = archive
            .by_name(DUMP)
            .map_err(|e| not_odoo(path, DUMP, &e))?
            .size();
        let (mut filestore_files, mut filestore_bytes) = (0, 0);
        for i in 0..archive.len() {
            let entry = archive.by_index_raw(i).map_err(|e| damaged(path, "", &e))?;
            let name = entry.name().map_err(|e| damaged(path, "", &e))?;
            if entry.is_file() && name.starts_with(FILESTORE) {
                filestore_files += 1;
                // Declared sizes are the zip's word: the free-space check must not wrap.
                filestore_bytes = u64::checked_add(filestore_bytes, entry.size())
                    .ok_or_else(|| damaged(path, "", &"its filestore sizes add up past 2^64"))?;
            }
        }
        Ok(Self {
            file: path.to_path_buf(),
            db_name: manifest.db_name,
            version: manifest.version,
            major_version: manifest.major_version,
            pg_version: manifest.pg_version.map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            modules: manifest.modules.len(),
            dump_bytes,
            filestore_files,
            filestore_bytes,
        })
    }

    /// One line for the operator, before anything happens.
    pub fn describe(&self) -> String {
        // What the zip says is printed escaped: no terminal escape sequence gets through.
        let or_unknown = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "unknown".into(), |v| v.escape_debug().to_string())
        };
        format!(
            "{}: Odoo {} backup of database {} (PostgreSQL {}), {} modules, dump.sql {} bytes, \
             {} filestore files",
            self.file.display(),
            or_unknown(&self.version),
            or_unknown(&self.db_name),
            or_unknown(&self.pg_version),
            self.modules,
            self.dump_bytes,
            self.filestore_files
        )
    }
}

/// Streams `dump.sql` into `psql` connected to the new, empty `database` as `target`'s user:
/// `ON_ERROR_STOP`, one transaction, no meta-command from the zip (see `restricted_sql`), as
/// `set_role` when given. Blocking.
pub fn import_sql(
    target: &PgTarget,
    database: &str,
    zip: &Path,
    set_role: Option<&str>,
) -> Result<()> {
    let mut command = target.client_command("psql", "vigia-restore");
    command
        .args(["--no-psqlrc", "--quiet", "--single-transaction"])
        .args(["--set", "ON_ERROR_STOP=1"])
        .arg(format!("--dbname={database}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(role) = set_role {
        command.arg(format!("--command=SET ROLE {}", quote_ident(role)));
    }
    command.arg("--file=-");
    let mut archive = open(zip)?;
    let entry = archive.by_name(DUMP).map_err(|e| not_odoo(zip, DUMP, &e))?;
    let mut child = target
        .spawn_client(&mut command, "psql")
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let stderr = collect_stderr(&mut child);
    let mut stdin = child.get_mut().stdin.take().expect("piped stdin");
    let key = hex::encode(vigia_core::random_bytes::<16>());
    let copied = copy_restricted(
        &mut std::io::BufReader::with_capacity(256 * 1024, entry),
        &mut stdin,
        &key,
    );
    let left = format!(
        "{database} is left for inspection and is not used; `vigia restore --cleanup --apply` \
         removes it"
    );
    let refused = match &copied {
        Err(SqlCopyError::Read(e)) => Some(damaged(zip, DUMP, e)),
        Err(SqlCopyError::MetaCommand { line, text }) => Some(Error::invalid_input(format!(
            "refusing {}: line {line} of {DUMP} is a psql meta-command (`{}`), and vigia \
             runs none from a zip (they can run a shell or reach another database); {left}",
            zip.display(),
            text.escape_debug()
        ))),
        Ok(()) | Err(SqlCopyError::Write(_)) => None,
    };
    if let Some(refused) = refused {
        // psql commits at the end of its input: it must never get there.
        child.kill();
        return Err(refused);
    }
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| Error::io("wait for", Path::new("psql"), e))?;
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        if let Err(SqlCopyError::Write(e)) = copied {
            return Err(Error::io("write to", Path::new("psql"), e));
        }
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Database,
        format!(
            "{DUMP} of {} into {database} failed ({status}) and psql stopped at the error; \
             {left}: {}",
            zip.display(),
            tail(&stderr, 5)
        ),
    ))
}

/// Writes the zip's `filestore/` into the new `folder`; a file named like Odoo's
/// content-addressed files (`xx/<sha1>`) must hash to its name. Returns the number of files.
/// Blocking.
pub fn extract_filestore(zip: &Path, folder: &NewFolder) -> Result<usize> {
    let mut archive = open(zip)?;
    let mut files = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| damaged(zip, "", &e))?;
        let name = entry.name().map_err(|e| damaged(zip, "", &e))?.into_owned();
        if name.strip_prefix(FILESTORE).is_none_or(str::is_empty) {
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        // A zip entry must never write outside the new folder.
        let Some(safe) = entry.enclosed_name() else {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{}: entry {} points outside the filestore; refusing the zip",
                    zip.display(),
                    name.escape_debug()
                ),
            ));
        };
        let within = safe
            .strip_prefix("filestore")
            .unwrap_or(&safe)
            .to_path_buf();
        // Checked by the name it is written as (`xx/./<sha1>` is `xx/<sha1>`), not the raw one.
        let relative = within.to_string_lossy().into_owned();
        let mut new = folder.create_file(&within)?;
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 64 * 1024];
        let written = loop {
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                Err(e) => break Err(damaged(zip, &name, &e)),
            };
            if n == 0 {
                break Ok(());
            }
            hasher.update(&buf[..n]);
            if let Err(e) = new.file.write_all(&buf[..n]) {
                break Err(Error::io("write", &folder.path().join(&within), e));
            }
        };
        let sha1 = hex::encode(hasher.finalize());
        let checked = written.and_then(|()| match content_name(&relative) {
            Some(named) if named != sha1 => Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{}: {} has sha1 {sha1}, its name says {named}; the zip is damaged",
                    zip.display(),
                    name.escape_debug()
                ),
            )),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            new.discard();
            return Err(e);
        }
        new.commit()
            .map_err(|e| Error::io("rename", &folder.path().join(&within), e))?;
        files += 1;
    }
    Ok(files)
}

/// The sha1 a content-addressed filestore path (`xx/<sha1>`) names.
fn content_name(relative: &str) -> Option<&str> {
    let (prefix, name) = relative.split_once('/')?;
    (prefix.len() == 2
        && name.len() == 40
        && name.starts_with(prefix)
        && name.bytes().all(|b| b.is_ascii_hexdigit()))
    .then_some(name)
}

fn open(path: &Path) -> Result<ZipArchive<File>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    ZipArchive::new(file).map_err(|e| {
        Error::invalid_input(format!(
            "{} is not a readable zip ({e}); --from-odoo-zip takes the file Odoo's database \
             manager downloads",
            path.display()
        ))
    })
}

fn not_odoo(path: &Path, entry: &str, e: &impl std::fmt::Display) -> Error {
    Error::invalid_input(format!(
        "{} has no {entry} ({e}): not a backup made by Odoo's database manager",
        path.display()
    ))
}

fn damaged(path: &Path, entry: &str, e: &impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Integrity,
        format!(
            "{} is damaged{}: {e}; nothing was restored from it",
            path.display(),
            if entry.is_empty() {
                String::new()
            } else {
                format!(" ({entry})")
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use sha1::{Digest, Sha1};
    use zip::write::SimpleFileOptions;

    use super::*;

    /// A zip of `entries` (name, content), with a minimal dump.sql and manifest.json unless
    /// given.
    fn zip_of(dir: &Path, entries: &[(&str, Vec<u8>)]) -> PathBuf {
        let path = dir.join("odoo.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = SimpleFileOptions::default();
        let mut all: Vec<(&str, Vec<u8>)> = entries.to_vec();
        if !entries.iter().any(|(n, _)| *n == MANIFEST) {
            all.push((
                MANIFEST,
                br#"{"db_name": "odoo", "version": "19.0"}"#.to_vec(),
            ));
        }
        all.push((DUMP, b"SELECT 1;\n".to_vec()));
        for (name, content) in all {
            zip.start_file(name, options).unwrap();
            zip.write_all(&content).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    /// Regression (issue 10 item 7): the sha1 was checked against the entry's raw name but
    /// the file written under its normalized name, so `xx/./<sha1>` landed unchecked.
    #[test]
    fn a_file_is_checked_under_the_name_it_is_written_as() {
        let dir = tempfile::tempdir().unwrap();
        let sha1 = hex::encode(Sha1::digest(b"the real content"));
        let name = format!("filestore/{}/./{sha1}", &sha1[..2]);
        let zip = zip_of(dir.path(), &[(&name, b"other content".to_vec())]);
        let folder = NewFolder::create(&dir.path().join("restored")).unwrap();
        let err = extract_filestore(&zip, &folder).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
        assert!(
            !dir.path()
                .join("restored")
                .join(&sha1[..2])
                .join(&sha1)
                .exists()
        );
    }

    /// Regression (issue 10 item 7): manifest.json was read whole into memory.
    #[test]
    fn a_huge_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let padding = " ".repeat(MANIFEST_LIMIT as usize + 1);
        let manifest = format!(r#"{{"db_name": "odoo"{padding}}}"#).into_bytes();
        let zip = zip_of(dir.path(), &[(MANIFEST, manifest)]);
        let err = OdooZipInfo::read(&zip).unwrap_err();
        assert!(err.message().contains("larger than"), "{}", err.message());
    }

    /// Found by review during the fuzzing of issue 10 (the fuzzer did not reach it): the
    /// filestore's size was the plain sum of the sizes the zip declares, which overflowed (a
    /// panic in a debug build; in a release build a wrapped, tiny size passed the free-space
    /// check).
    #[test]
    fn declared_sizes_that_overflow_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odoo.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let large = SimpleFileOptions::default().large_file(true);
        for (name, content) in [
            (MANIFEST, br#"{"db_name": "odoo"}"#.to_vec()),
            (DUMP, b"SELECT 1;\n".to_vec()),
            ("filestore/aa/1", b"one".to_vec()),
            ("filestore/aa/2", b"two".to_vec()),
        ] {
            zip.start_file(name, large).unwrap();
            zip.write_all(&content).unwrap();
        }
        zip.finish().unwrap();
        // Each central header's ZIP64 field starts with the uncompressed size: 2^63 each.
        let mut bytes = std::fs::read(&path).unwrap();
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
            let header = at + found;
            let name_len =
                usize::from(u16::from_le_bytes([bytes[header + 28], bytes[header + 29]]));
            let name = &bytes[header + 46..header + 46 + name_len];
            let extra = header + 46 + name_len;
            if name.starts_with(b"filestore/") {
                assert_eq!(&bytes[extra..extra + 2], &[1, 0], "a ZIP64 field");
                bytes[extra + 4..extra + 12].copy_from_slice(&(1u64 << 63).to_le_bytes());
            }
            at = header + 4;
        }
        std::fs::write(&path, bytes).unwrap();
        let err = OdooZipInfo::read(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.message());
    }

    /// Regression (issue 10 item 7): names from the zip reached the terminal raw, escape
    /// sequences included.
    #[test]
    fn names_from_a_zip_are_printed_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = br#"{"db_name": "odoo\u001b[2J\u001b]0;pwned\u0007", "version": "19.0"}"#;
        let zip = zip_of(dir.path(), &[(MANIFEST, manifest.to_vec())]);
        let described = OdooZipInfo::read(&zip).unwrap().describe();
        assert!(
            !described.contains('\u{1b}') && !described.contains('\u{7}'),
            "{described:?}"
        );
        assert!(described.contains("odoo"), "{described}");
    }
}
