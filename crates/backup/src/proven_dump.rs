//! A backup's database proven before pg_restore reads a byte of it, then restored. Format 2:
//! the schema decrypted into memory (a memfd, never on a disk) once its sha256 matched the
//! index, the data streams spooled still encrypted and proven the same way; then pre-data,
//! the data streams side by side (each decrypted on its way into its own pg_restore), and
//! post-data with `-j`. Format 1: the archive spooled encrypted, proven, and streamed into
//! one pg_restore.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vigia_core::meminfo::Meminfo;
use vigia_core::ports::store::ObjectStore;
use vigia_core::task::blocking;
use vigia_core::{Error, ErrorKind, Result};
use vigia_pg::{
    Archive, PgTarget, RestoreMode, RestoreOptions, Section, pg_restore_file, pg_restore_stream,
};

use futures::StreamExt;

use crate::format::{BackupId, BackupManifest, DumpObjects, Problem, SealedObject};
use crate::keys::Identity;
use crate::seal::{Damage, ProvenSpool, read_back};

/// The dump, every byte of it proven to be the one the index vouches for.
#[derive(Debug)]
pub struct ProvenDump {
    kind: Kind,
    /// No stream may decompress past the manifest's dump size.
    max_plain: u64,
}

/// Objects fetched into the spool at once: a hostile index may list many.
const FETCH_AT_ONCE: usize = 4;

#[derive(Debug)]
enum Kind {
    OneArchive(ProvenSpool),
    Parts {
        schema: Arc<File>,
        schema_key: String,
        data: Vec<ProvenSpool>,
    },
}

impl ProvenDump {
    /// Fetches and proves every object of `objects`: the encrypted ones into unnamed files in
    /// `spool_dir`, the schema decrypted into memory, at most the manifest's `schema_bytes`
    /// of it (refused first when that is more than half the memory available: a zstd bomb
    /// fails here, not in the OOM killer). Outer `Err`: the store, the disk or the memory;
    /// inner: an object is not the one the index vouches for.
    pub async fn fetch(
        store: &dyn ObjectStore,
        objects: DumpObjects<'_>,
        identity: &Identity,
        spool_dir: &Path,
        manifest: &BackupManifest,
    ) -> Result<std::result::Result<Self, Problem>> {
        // A manifest older than `dump_bytes` (format 1) gives no bound: its drill streams into
        // pg_restore as it always did.
        let max_plain = match manifest.dump_bytes {
            0 => u64::MAX,
            bytes => bytes,
        };
        let spool = async |object: &SealedObject| {
            let spooled = ProvenSpool::fetch(store, object, spool_dir).await?;
            Ok::<_, Error>(spooled.map_err(|damage| Problem::new(&object.key, damage)))
        };
        let kind = match objects {
            DumpObjects::OneArchive(dump) => match spool(dump).await? {
                Ok(spooled) => Kind::OneArchive(spooled),
                Err(problem) => return Ok(Err(problem)),
            },
            DumpObjects::Parts { schema, data } => {
                let max_schema = match manifest.schema_bytes {
                    0 => max_plain,
                    bytes => bytes,
                };
                ensure_memory(&manifest.id, max_schema)?;
                let spools = futures::stream::iter(data.iter().map(spool))
                    .buffered(FETCH_AT_ONCE)
                    .collect::<Vec<_>>();
                let (schema_file, data) = tokio::join!(
                    schema_in_memory(store, schema, identity, max_schema),
                    spools,
                );
                let schema_file = schema_file?;
                let data = data.into_iter().collect::<Result<Vec<_>>>()?;
                let schema_file = match schema_file {
                    Ok(file) => file,
                    Err(damage) => return Ok(Err(Problem::new(&schema.key, damage))),
                };
                match data.into_iter().collect::<std::result::Result<Vec<_>, _>>() {
                    Ok(data) => Kind::Parts {
                        schema: Arc::new(schema_file),
                        schema_key: schema.key.clone(),
                        data,
                    },
                    Err(problem) => return Ok(Err(problem)),
                }
            }
        };
        Ok(Ok(Self { kind, max_plain }))
    }

    /// Restores the dump into the existing, empty `database` as `target`. Outer `Err`:
    /// pg_restore or PostgreSQL failed (`database` kind, saying which object); inner: an
    /// object's bytes do not decrypt or decompress.
    pub async fn restore(
        self,
        target: &PgTarget,
        database: &str,
        options: &RestoreOptions,
        identity: &Identity,
    ) -> Result<std::result::Result<(), Problem>> {
        let (schema, schema_key, data) = match self.kind {
            Kind::OneArchive(spool) => {
                let streams = Streams::new(target, database, Section::All, options);
                return streams.run(vec![spool], identity, self.max_plain).await;
            }
            Kind::Parts {
                schema,
                schema_key,
                data,
            } => (schema, schema_key, data),
        };
        let schema_step = |section| {
            let (target, database) = (target.clone(), database.to_owned());
            let (options, schema) = (options.clone(), Arc::clone(&schema));
            let key = schema_key.clone();
            async move {
                blocking("restore", move || {
                    let archive = Archive::Open(&schema);
                    pg_restore_file(&target, &database, archive, section, &options)
                })
                .await
                .map_err(|e| {
                    Error::new(e.kind(), format!("{key}: {}", e.message())).with_object(&key)
                })
            }
        };
        schema_step(Section::PreData).await?;
        let streams = Streams::new(target, database, Section::Data, options);
        if let Err(problem) = streams.run(data, identity, self.max_plain).await? {
            return Ok(Err(problem));
        }
        schema_step(Section::PostData).await?;
        Ok(Ok(()))
    }
}

/// pg_restores of `section` of one archive each, from stdin.
struct Streams {
    target: PgTarget,
    database: String,
    mode: RestoreMode,
    /// How many run at once (`[restore] jobs`), whatever the index lists.
    jobs: usize,
}

impl Streams {
    fn new(target: &PgTarget, database: &str, section: Section, options: &RestoreOptions) -> Self {
        Self {
            target: target.clone(),
            database: database.to_owned(),
            mode: RestoreMode::Into {
                database: database.to_owned(),
                section,
                options: options.clone(),
            },
            jobs: usize::try_from(options.jobs).unwrap_or(1).max(1),
        }
    }

    /// Each spool decrypted (at most `max_plain` bytes) into its own pg_restore, `jobs` at a
    /// time; the first failure stops the others.
    async fn run(
        &self,
        spools: Vec<ProvenSpool>,
        identity: &Identity,
        max_plain: u64,
    ) -> Result<std::result::Result<(), Problem>> {
        let stop = Arc::new(AtomicBool::new(false));
        let streams = spools.into_iter().map(|spool| {
            let key = spool.key().to_owned();
            let (target, mode) = (self.target.clone(), self.mode.clone());
            let stop = Arc::clone(&stop);
            async move {
                let end = stream_into(spool, target, mode, identity, max_plain, &stop).await;
                if !matches!(end, Ok(Ok(StreamEnd::Done))) {
                    stop.store(true, Ordering::Relaxed);
                }
                (key, end)
            }
        });
        let ends: Vec<_> = futures::stream::iter(streams)
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        // What went wrong first is what is reported; a stream stopped for it says nothing more.
        let mut failed = None;
        for (key, end) in ends {
            match end? {
                Err(damage) => return Ok(Err(Problem::new(&key, damage))),
                Ok(StreamEnd::Failed(e)) => failed = failed.or(Some((key, e))),
                Ok(StreamEnd::Done | StreamEnd::Stopped) => {}
            }
        }
        match failed {
            Some((key, e)) => Err(Error::new(
                ErrorKind::Database,
                format!("{key}: restoring it into {} failed: {e}", self.database),
            )
            .with_object(&key)),
            None => Ok(Ok(())),
        }
    }
}

/// `spool` decrypted on its way into a pg_restore from stdin.
async fn stream_into(
    spool: ProvenSpool,
    target: PgTarget,
    mode: RestoreMode,
    identity: &Identity,
    max_plain: u64,
    stop: &Arc<AtomicBool>,
) -> Result<std::result::Result<StreamEnd, Damage>> {
    let stop = Arc::clone(stop);
    spool
        .read(identity, move |plain| {
            let mut watched = Watched {
                inner: plain,
                left: max_plain,
                unreadable: false,
                stop: &stop,
                started: false,
            };
            match pg_restore_stream(&target, &mode, &mut watched) {
                Ok(_) => Ok(StreamEnd::Done),
                Err(e) if watched.unreadable => Err(e),
                Err(_) if stop.load(Ordering::Relaxed) => Ok(StreamEnd::Stopped),
                Err(e) => Ok(StreamEnd::Failed(e.to_string())),
            }
        })
        .await
}

/// How one stream's pg_restore ended, its bytes having read back whole.
#[derive(Debug)]
enum StreamEnd {
    Done,
    /// Another stream failed first.
    Stopped,
    /// pg_restore failed: what it said.
    Failed(String),
}

/// The plain bytes on their way to pg_restore: tells an object that does not read back or
/// decompresses past the manifest's size (its fault) from pg_restore failing, and ends early
/// when another stream failed.
struct Watched<'r> {
    inner: &'r mut dyn Read,
    /// Bytes it may still give.
    left: u64,
    unreadable: bool,
    stop: &'r AtomicBool,
    /// pg_restore is running once it is asked for a byte: where a crash test kills vigia.
    started: bool,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !std::mem::replace(&mut self.started, true) {
            vigia_core::failpoint::hit("restore.stream")
                .map_err(|e| io::Error::other(e.message().to_owned()))?;
        }
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: another data stream failed"));
        }
        let n = self
            .inner
            .read(buf)
            .inspect_err(|_| self.unreadable = true)?;
        let Some(left) = self.left.checked_sub(n as u64) else {
            self.unreadable = true;
            return Err(io::Error::other(
                "it decompresses to more than the dump size its manifest gives",
            ));
        };
        self.left = left;
        Ok(n)
    }
}

/// Refuses a schema that could not be held in memory: more than half of what is available.
fn ensure_memory(id: &BackupId, bytes: u64) -> Result<()> {
    let available = Meminfo::read()
        .ok()
        .map(|m| m.available.saturating_mul(1024));
    match available {
        Some(available) if bytes > available / 2 => Err(Error::new(
            ErrorKind::Io,
            format!(
                "backup {id}: its schema is {bytes} bytes decrypted, more than half of the \
                 {available} bytes of memory available, where a restore holds it: free memory or \
                 restore on a larger host"
            ),
        )),
        _ => Ok(()),
    }
}

/// The schema object read back into a memfd, returned once its sha256 matched; at most
/// `max_plain` bytes of plain text.
async fn schema_in_memory(
    store: &dyn ObjectStore,
    schema: &SealedObject,
    identity: &Identity,
    max_plain: u64,
) -> Result<std::result::Result<File, Damage>> {
    let mut file = File::from(
        rustix::fs::memfd_create("vigia-schema", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| Error::io("create", Path::new("a memfd"), e.into()))?,
    );
    read_back(store, schema, identity, move |plain| {
        let copied = io::copy(&mut plain.take(max_plain.saturating_add(1)), &mut file)?;
        if copied > max_plain {
            return Err(io::Error::other(format!(
                "it decompresses to more than the {max_plain} bytes its manifest gives"
            )));
        }
        file.flush()?;
        Ok(file)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched<'r>(inner: &'r mut dyn Read, left: u64, stop: &'r AtomicBool) -> Watched<'r> {
        Watched {
            inner,
            left,
            unreadable: false,
            stop,
            started: false,
        }
    }

    #[test]
    fn a_stream_past_the_manifest_size_is_the_objects_fault_and_ends_there() {
        let stop = AtomicBool::new(false);
        let mut bomb = io::repeat(0).take(1 << 20);
        let mut reader = watched(&mut bomb, 1000, &stop);
        let err = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("more than the dump size"), "{err}");
        assert!(reader.unreadable);

        let mut fits = io::repeat(0).take(1000);
        let mut reader = watched(&mut fits, 1000, &stop);
        assert_eq!(io::copy(&mut reader, &mut io::sink()).unwrap(), 1000);
    }

    #[test]
    fn a_stream_stops_when_another_failed_without_blaming_its_object() {
        let stop = AtomicBool::new(true);
        let mut fits = io::repeat(0).take(10);
        let mut reader = watched(&mut fits, 10, &stop);
        assert!(io::copy(&mut reader, &mut io::sink()).is_err());
        assert!(!reader.unreadable);
    }

    #[test]
    fn a_schema_larger_than_half_the_memory_is_refused_before_it_is_read() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        let err = ensure_memory(&id, u64::MAX).unwrap_err();
        assert!(
            err.message()
                .contains("free memory or restore on a larger host")
        );
        ensure_memory(&id, 1 << 20).unwrap();
    }
}
