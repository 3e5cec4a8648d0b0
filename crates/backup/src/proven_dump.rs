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

use vigia_core::ports::store::ObjectStore;
use vigia_core::task::blocking;
use vigia_core::{Error, ErrorKind, Result};
use vigia_pg::{
    Archive, PgTarget, RestoreMode, RestoreOptions, Section, pg_restore_file, pg_restore_stream,
};

use crate::format::{DumpObjects, Problem, SealedObject};
use crate::keys::Identity;
use crate::seal::{Damage, ProvenSpool, read_back};

/// The dump, every byte of it proven to be the one the index vouches for.
#[derive(Debug)]
pub struct ProvenDump {
    kind: Kind,
}

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
    /// `spool_dir`, the schema decrypted into memory, at most `max_plain` bytes of it (the
    /// manifest's dump size: a zstd bomb fails here). Outer `Err`: the store or the disk
    /// failed; inner: an object is not the one the index vouches for.
    pub async fn fetch(
        store: &dyn ObjectStore,
        objects: DumpObjects<'_>,
        identity: &Identity,
        spool_dir: &Path,
        max_plain: u64,
    ) -> Result<std::result::Result<Self, Problem>> {
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
                let (schema_file, data) = tokio::try_join!(
                    schema_in_memory(store, schema, identity, max_plain),
                    futures::future::try_join_all(data.iter().map(spool)),
                )?;
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
        Ok(Ok(Self { kind }))
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
                return restore_streams(
                    vec![spool],
                    target,
                    database,
                    Section::All,
                    options,
                    identity,
                )
                .await;
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
        let streamed = restore_streams(data, target, database, Section::Data, options, identity);
        if let Err(problem) = streamed.await? {
            return Ok(Err(problem));
        }
        schema_step(Section::PostData).await?;
        Ok(Ok(()))
    }
}

/// Each spool decrypted into its own pg_restore of `section`, side by side; the first failure
/// stops the others.
async fn restore_streams(
    spools: Vec<ProvenSpool>,
    target: &PgTarget,
    database: &str,
    section: Section,
    options: &RestoreOptions,
    identity: &Identity,
) -> Result<std::result::Result<(), Problem>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mode = RestoreMode::Into {
        database: database.to_owned(),
        section,
        options: options.clone(),
    };
    let streams = spools.into_iter().map(|spool| {
        let key = spool.key().to_owned();
        let run = stream_into(
            spool,
            target.clone(),
            mode.clone(),
            identity,
            Arc::clone(&stop),
        );
        let stop = Arc::clone(&stop);
        async move {
            let end = run.await;
            if !matches!(end, Ok(Ok(StreamEnd::Done))) {
                stop.store(true, Ordering::Relaxed);
            }
            (key, end)
        }
    });
    let ends = futures::future::join_all(streams).await;
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
            format!("{key}: restoring it into {database} failed: {e}"),
        )
        .with_object(&key)),
        None => Ok(Ok(())),
    }
}

/// `spool` decrypted on its way into a pg_restore from stdin.
async fn stream_into(
    spool: ProvenSpool,
    target: PgTarget,
    mode: RestoreMode,
    identity: &Identity,
    stop: Arc<AtomicBool>,
) -> Result<std::result::Result<StreamEnd, Damage>> {
    spool
        .read(identity, move |plain| {
            let mut watched = Watched {
                inner: plain,
                unreadable: false,
                stop: &stop,
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

/// The plain bytes on their way to pg_restore: tells an object that does not read back
/// (its fault) from pg_restore failing, and ends early when another stream failed.
struct Watched<'r> {
    inner: &'r mut dyn Read,
    unreadable: bool,
    stop: &'r AtomicBool,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: another data stream failed"));
        }
        self.inner.read(buf).inspect_err(|_| self.unreadable = true)
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
        let copied = io::copy(&mut plain.take(max_plain + 1), &mut file)?;
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
