//! Sealed objects: plain bytes -> zstd -> age (every recipient) -> sha256 -> the store, in one
//! streaming pass with bounded memory; and the way back.
//!
//! Compression and encryption are synchronous (zstd, age), so they run on a thread of their
//! own that hands fixed-size chunks to the async upload through a small bounded channel.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;
use vigia_core::ports::store::ObjectStore;
use vigia_core::task::blocking;
use vigia_core::{Error, ErrorKind, Result};

use crate::format::{Problem, SealedObject};
use crate::keys::{Identity, Recipients};

const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the sealing thread and the upload: 4 x 256 KiB.
const CHANNEL_DEPTH: usize = 4;
/// Fast enough to keep up with pg_dump, and most of zstd's ratio on SQL dumps.
pub const ZSTD_LEVEL: i32 = 1;

/// Streams what `open_source` returns, on a dedicated thread, into `key`. The source is opened
/// on that thread so that a child process reading for it (pg_dump) is tied to a thread that
/// lives as long as the stream (its parent-death signal follows the spawning thread).
pub async fn put_sealed<F>(
    store: &dyn ObjectStore,
    key: &str,
    recipients: &Recipients,
    open_source: F,
) -> Result<SealedObject>
where
    F: FnOnce() -> io::Result<Box<dyn Read>> + Send + 'static,
{
    let encryptor = recipients.encryptor()?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_DEPTH);
    let sealing_thread = std::thread::Builder::new()
        .name("vigia-seal".into())
        .spawn(move || {
            vigia_core::process::lower_thread_priority();
            let result = seal(open_source, encryptor, ChannelWriter::new(tx.clone()));
            if let Err(e) = &result {
                // The upload sees the failure as a read error and stores nothing.
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            result
        })
        .map_err(|e| Error::internal(format!("cannot start the sealing thread: {e}")))?;
    let uploaded = store
        .put(
            key,
            Box::pin(ChannelReader {
                rx,
                pending: Bytes::new(),
            }),
        )
        .await;
    let sealed = sealing_thread
        .join()
        .map_err(|_| Error::internal("the sealing thread panicked"))?;
    match (uploaded, sealed) {
        (Ok(meta), Ok((sha256, stored, plain))) => {
            if meta.size_bytes != stored {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "{key}: the store took {} bytes of {stored}",
                        meta.size_bytes
                    ),
                )
                .with_object(key));
            }
            Ok(SealedObject {
                key: key.to_owned(),
                size_bytes: stored,
                sha256,
                plain_bytes: plain,
            })
        }
        // The source's own error says more than the store's "reading the data failed".
        (Err(_), Err(e)) => Err(Error::new(ErrorKind::Io, format!("{key}: {e}")).with_object(key)),
        (Err(e), Ok(_)) => Err(e.into()),
        (Ok(_), Err(e)) => Err(Error::internal(format!(
            "{key}: stored although sealing failed: {e}"
        ))),
    }
}

/// Returns (sha256 hex of the sealed bytes, sealed size, plain size).
fn seal<F>(
    open_source: F,
    encryptor: age::Encryptor,
    sink: ChannelWriter,
) -> io::Result<(String, u64, u64)>
where
    F: FnOnce() -> io::Result<Box<dyn Read>>,
{
    let mut source = open_source()?;
    let encrypted = encryptor.wrap_output(sink)?;
    let mut compressed = zstd::Encoder::new(encrypted, ZSTD_LEVEL)?;
    let plain = io::copy(&mut source, &mut compressed)?;
    let sink = compressed.finish()?.finish()?;
    let (sha256, size) = sink.finish()?;
    Ok((sha256, size, plain))
}

/// Hashes and counts what it is given, and sends it on in `CHUNK`-sized pieces.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn finish(mut self) -> io::Result<(String, u64)> {
        self.send()?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The async end of the channel, as the body of a store upload.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    pending: Bytes,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.pending = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// Reads a sealed object back: a blocking reader of the plain bytes, for a blocking thread
/// (`tokio::task::spawn_blocking` or a thread of its own). Fails with `crypto` when
/// `identity` is not one of the object's recipients.
pub async fn open_sealed(
    store: &dyn ObjectStore,
    key: &str,
    identity: &Identity,
) -> Result<Box<dyn Read + Send>> {
    let body = store.get(key, None).await?;
    let bridge = tokio_util::io::SyncIoBridge::new(body);
    let identity = identity.clone();
    let key = key.to_owned();
    blocking("decrypting", move || -> Result<Box<dyn Read + Send>> {
        let decryptor = age::Decryptor::new(bridge).map_err(|e| crypto_error(&key, &e))?;
        let plain = decryptor
            .decrypt(std::iter::once(identity.as_age()))
            .map_err(|e| crypto_error(&key, &e))?;
        let decoder = zstd::Decoder::new(plain)
            .map_err(|e| Error::io("decompress", std::path::Path::new(&key), e))?;
        Ok(Box::new(decoder))
    })
    .await
}

fn crypto_error(key: &str, err: &age::DecryptError) -> Error {
    let message = match err {
        age::DecryptError::NoMatchingKeys => {
            format!("{key}: this identity cannot decrypt it (it was encrypted to other recipients)")
        }
        other => format!("{key}: cannot decrypt: {other}"),
    };
    Error::new(ErrorKind::Crypto, message).with_object(key)
}

/// What reading an object back found wrong with it (not a failure of the store itself).
pub type Damage = String;

/// Bytes asked of the store at a time when reading an object back.
const READ_BUFFER: usize = 256 * 1024;

/// Reads `expected.key` back in one pass: the stored bytes counted and hashed against the
/// index's size and sha256, decrypted and decompressed into `consume`. Outer `Err`: the store
/// failed (nothing is known about the object); inner `Err`: the object is damaged, and how.
pub async fn read_back<T, F>(
    store: &dyn ObjectStore,
    expected: &SealedObject,
    identity: &Identity,
    consume: F,
) -> Result<std::result::Result<T, Damage>>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Read) -> io::Result<T> + Send + 'static,
{
    let body = store.get(&expected.key, None).await?;
    // Large reads: every read of the bridge is a round trip to the async store (for the
    // local store, a blocking-pool task), and age and zstd ask for small pieces.
    let bridge = io::BufReader::with_capacity(READ_BUFFER, tokio_util::io::SyncIoBridge::new(body));
    let identity = identity.clone();
    let expected = expected.clone();
    blocking("reading", move || {
        read_back_blocking(bridge, &expected, &identity, consume)
    })
    .await
}

/// The stored bytes hashed to their end and checked against the index, and the plain bytes
/// `consume` left decrypted to the end too (age authenticates every chunk).
fn read_back_blocking<T>(
    body: impl Read,
    expected: &SealedObject,
    identity: &Identity,
    consume: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> Result<std::result::Result<T, Damage>> {
    let mut stored = HashingReader::new(body);
    let (outcome, wrong_identity) = decrypt_into(&mut stored, &expected.key, identity, |plain| {
        let value = consume(plain)?;
        io::copy(plain, &mut io::sink())?;
        Ok(value)
    });
    // The rest of the stored bytes, so that the checksum covers them all.
    let _ = io::copy(&mut stored, &mut io::sink());
    if let Some(damage) = stored.finish(expected)? {
        return Ok(Err(damage));
    }
    // Intact bytes that this key cannot open: the identity is wrong, not the object.
    if let Some(e) = wrong_identity {
        return Err(e);
    }
    Ok(outcome)
}

/// Decrypts and decompresses `stored` into `consume`: what it returned or how the bytes are
/// damaged, and the crypto error when `identity` is not one of the recipients.
fn decrypt_into<T>(
    stored: impl Read,
    key: &str,
    identity: &Identity,
    consume: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> (std::result::Result<T, Damage>, Option<Error>) {
    let mut wrong_identity = None;
    let outcome = (|| {
        let decryptor = age::Decryptor::new(stored).map_err(|e| format!("cannot decrypt: {e}"))?;
        let plain = decryptor
            .decrypt(std::iter::once(identity.as_age()))
            .map_err(|e| {
                if matches!(e, age::DecryptError::NoMatchingKeys) {
                    wrong_identity = Some(crypto_error(key, &e));
                }
                format!("cannot decrypt: {e}")
            })?;
        let mut decoder =
            zstd::Decoder::new(plain).map_err(|e| format!("cannot decompress: {e}"))?;
        consume(&mut decoder).map_err(|e| format!("cannot read it back: {e}"))
    })();
    (outcome, wrong_identity)
}

/// An object's stored bytes, still encrypted, in an unnamed temporary file (gone when dropped,
/// and when vigia dies), their size and sha256 proven against the index before anything reads
/// them: what must not act on a byte the index does not vouch for (a drill's pg_restore)
/// reads from here instead of from the store.
#[derive(Debug)]
pub(crate) struct ProvenSpool {
    file: std::fs::File,
    object: SealedObject,
}

impl ProvenSpool {
    /// Copies `expected` from the store into a temporary file in `dir`. Outer `Err`: the store
    /// or the disk failed; inner `Err`: the stored bytes are not the ones the index vouches
    /// for, and how (nothing else was read).
    pub async fn fetch(
        store: &dyn ObjectStore,
        expected: &SealedObject,
        dir: &std::path::Path,
    ) -> Result<std::result::Result<Self, Damage>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let mut file =
            tempfile::tempfile_in(dir).map_err(|e| Error::io("create a spool file in", dir, e))?;
        let body = store.get(&expected.key, None).await?;
        let bridge =
            io::BufReader::with_capacity(READ_BUFFER, tokio_util::io::SyncIoBridge::new(body));
        let object = expected.clone();
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut stored = HashingReader::new(bridge);
            // One byte past the size the index gives is enough to tell it is wrong.
            let copied = io::copy(&mut (&mut stored).take(object.size_bytes + 1), &mut file);
            // The store failing comes first, then the disk, then what the bytes are.
            let damage = stored.finish(&object)?;
            copied.map_err(|e| Error::io("write a spool file in", &dir, e))?;
            if let Some(damage) = damage {
                return Ok(Err(damage));
            }
            io::Seek::rewind(&mut file).map_err(|e| Error::io("read a spool file in", &dir, e))?;
            Ok(Ok(Self { file, object }))
        })
        .await
        .map_err(|e| Error::internal(format!("the spooling task failed: {e}")))?
    }

    /// The object's key.
    pub fn key(&self) -> &str {
        &self.object.key
    }

    /// Decrypts and decompresses the spooled bytes into `consume`, like [`read_back`].
    pub async fn read<T, F>(
        self,
        identity: &Identity,
        consume: F,
    ) -> Result<std::result::Result<T, Damage>>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Read) -> io::Result<T> + Send + 'static,
    {
        let identity = identity.clone();
        let file = io::BufReader::with_capacity(READ_BUFFER, self.file);
        // Proven when fetched: not hashed again, and a consumer that stopped early
        // (pg_restore failed) does not wait for the rest to be decrypted.
        tokio::task::spawn_blocking(move || {
            let (outcome, wrong_identity) =
                decrypt_into(file, &self.object.key, &identity, consume);
            match wrong_identity {
                Some(e) => Err(e),
                None => Ok(outcome),
            }
        })
        .await
        .map_err(|e| Error::internal(format!("the reading task failed: {e}")))?
    }
}

/// Counts and hashes what passes through; remembers an error of the underlying reader, which
/// is the store failing rather than the object being damaged.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    source_error: Option<io::Error>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            source_error: None,
        }
    }
}

impl<R> HashingReader<R> {
    /// Once every stored byte went through: Err when the store failed, Ok(Some) when the
    /// bytes are not the ones the index vouches for (their size or sha256 differs).
    fn finish(&mut self, expected: &SealedObject) -> Result<Option<Damage>> {
        if let Some(e) = self.source_error.take() {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("reading {} from the store failed: {e}", expected.key),
            )
            .with_object(&expected.key));
        }
        let sha256 = hex::encode(self.hasher.finalize_reset());
        if self.bytes != expected.size_bytes {
            return Ok(Some(format!(
                "size: {} bytes stored, the index says {}",
                self.bytes, expected.size_bytes
            )));
        }
        if sha256 != expected.sha256 {
            return Ok(Some(format!(
                "sha256 mismatch: the stored bytes hash to {sha256}, the index says {}",
                expected.sha256
            )));
        }
        Ok(None)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.source_error = Some(e);
                Err(copy)
            }
        }
    }
}

/// A small object (manifest, extra bundle) read back whole into memory.
pub(crate) async fn read_small(
    store: &dyn ObjectStore,
    object: &SealedObject,
    identity: &Identity,
) -> Result<std::result::Result<Vec<u8>, Problem>> {
    let content = read_back(store, object, identity, |r| {
        let mut out = Vec::new();
        r.read_to_end(&mut out).map(|_| out)
    })
    .await?;
    Ok(content.map_err(|damage| Problem::new(&object.key, damage)))
}
