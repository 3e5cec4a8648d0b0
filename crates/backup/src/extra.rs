//! `backups/<id>/extra.age`: what a restore needs besides the database and filestore, as a
//! tar archive (`age -d | zstd -d | tar x` opens it): the config as given (its secrets are
//! references, never values), the Hacienda `.p12` certificate, and the compose file.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use vigia_core::{Config, Error, Result};

use crate::format::ExtraEntry;

/// A file larger than this is not a certificate or a config: refused rather than buffered.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One file of the bundle, before it is read.
#[derive(Debug, Clone)]
pub struct ExtraFile {
    /// Its name in the archive: `config/vigia.toml`, `hacienda/llave.p12`, ...
    pub name: String,
    pub source: ExtraSource,
}

#[derive(Debug, Clone)]
pub enum ExtraSource {
    File(PathBuf),
    Text(String),
}

/// The bundle `config` calls for.
pub fn extra_files(config: &Config) -> Vec<ExtraFile> {
    let mut files = vec![ExtraFile {
        name: "config/vigia.toml".into(),
        source: ExtraSource::Text(config.text.clone()),
    }];
    let named = |dir: &str, path: &PathBuf| ExtraFile {
        name: format!(
            "{dir}/{}",
            path.file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned())
        ),
        source: ExtraSource::File(path.clone()),
    };
    if let Some(p12) = config
        .hacienda
        .as_ref()
        .and_then(|h| h.certificate.as_ref())
    {
        files.push(named("hacienda", p12));
    }
    if let Some(compose) = &config.runtime.compose_file {
        files.push(named("runtime", compose));
    }
    files
}

/// The tar archive of `files`, with what it holds and what could not be read (a warning:
/// the database backup is still worth keeping).
pub fn bundle(files: &[ExtraFile]) -> Result<(Vec<u8>, Vec<ExtraEntry>, Vec<String>)> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    for file in files {
        let content = match &file.source {
            ExtraSource::Text(text) => text.clone().into_bytes(),
            ExtraSource::File(path) => match read_small(path) {
                Ok(content) => content,
                Err(problem) => {
                    missing.push(format!("{} ({}): {problem}", file.name, path.display()));
                    continue;
                }
            },
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &file.name, content.as_slice())
            .map_err(|e| Error::internal(format!("cannot build the extra bundle: {e}")))?;
        entries.push(ExtraEntry {
            name: file.name.clone(),
            size_bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(&content)),
        });
    }
    let archive = builder
        .into_inner()
        .map_err(|e| Error::internal(format!("cannot build the extra bundle: {e}")))?;
    Ok((archive, entries, missing))
}

/// What a bundle holds, as the manifest lists it.
pub fn extra_entries(archive: &[u8]) -> std::io::Result<Vec<ExtraEntry>> {
    let mut entries = Vec::new();
    for entry in tar::Archive::new(archive).entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content)?;
        entries.push(ExtraEntry {
            name,
            size_bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(&content)),
        });
    }
    Ok(entries)
}

fn read_small(path: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{} bytes, more than a certificate or config",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_what_it_can_and_names_what_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let p12 = dir.path().join("llave.p12");
        std::fs::write(&p12, b"\x30\x82certificate").unwrap();
        let files = vec![
            ExtraFile {
                name: "config/vigia.toml".into(),
                source: ExtraSource::Text("[odoo]\ndatabase = \"odoo\"\n".into()),
            },
            ExtraFile {
                name: "hacienda/llave.p12".into(),
                source: ExtraSource::File(p12),
            },
            ExtraFile {
                name: "runtime/docker-compose.yml".into(),
                source: ExtraSource::File(dir.path().join("nowhere.yml")),
            },
        ];
        let (archive, entries, missing) = bundle(&files).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["config/vigia.toml", "hacienda/llave.p12"]);
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0].starts_with("runtime/docker-compose.yml"),
            "{missing:?}"
        );
        assert_eq!(extra_entries(&archive).unwrap(), entries);
    }
}
