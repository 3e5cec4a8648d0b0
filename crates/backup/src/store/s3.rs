//! The S3 store on aws-sdk-s3: streaming multipart upload (bounded memory), ranged streaming
//! get, paginated list, retries with backoff on 5xx, throttling and connection resets.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use vigia_core::config::{S3Config, Secret};
use vigia_core::ports::store::{
    ObjectMeta, ObjectReader, ObjectStore, SMALL_OBJECT_MAX, StoreError, WriteCondition, too_large,
    validate_key,
};

use super::journal::{UploadEntry, UploadJournal};

/// Parts are this big, so at most two of them (one uploading, one filling) are in memory.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Attempts per request, backing off up to `MAX_BACKOFF` (with jitter) between them: a format
/// 2 backup uploads several objects at once, so a server shedding load (503 SlowDown) can
/// refuse one request several times in a row; 8 attempts ride that out in about 10 s.
const MAX_ATTEMPTS: u32 = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Prepended to every key; `prod/` keeps environments apart in one bucket.
    pub prefix: String,
    /// None for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    /// (access key, secret key); None uses the AWS default chain (environment, profile, IMDS).
    pub credentials: Option<(Secret, Secret)>,
}

impl S3Options {
    /// Builds the options from `[backup.s3]`, resolving its secrets.
    pub fn from_config(s3: &S3Config) -> vigia_core::Result<Self> {
        let credentials = match (&s3.access_key, &s3.secret_key) {
            (Some(a), Some(s)) => Some((
                a.resolve("backup.s3.access-key")?,
                s.resolve("backup.s3.secret-key")?,
            )),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(vigia_core::Error::config(
                    "`backup.s3.access-key` and `backup.s3.secret-key` go together: set both, or \
                     neither to use the AWS default credentials chain",
                )
                .with_key("backup.s3"));
            }
        };
        Ok(Self {
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            path_style: s3.path_style,
            credentials,
        })
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    journal: Option<UploadJournal>,
}

impl S3Store {
    pub async fn connect(options: S3Options) -> Self {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(MAX_BACKOFF);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_mins(2))
            .build();
        let mut builder = if let Some((access, secret)) = &options.credentials {
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    access.expose(),
                    secret.expose(),
                    None,
                    None,
                    "vigia-config",
                ))
        } else {
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(options.region.clone()))
                .load()
                .await;
            aws_sdk_s3::config::Builder::from(&shared)
        };
        builder = builder
            .region(Region::new(options.region.clone()))
            .force_path_style(options.path_style)
            .retry_config(retry)
            .timeout_config(timeouts)
            // Many S3-compatible servers do not implement the newer flexible checksums; vigia
            // hashes every object itself (sha256 in the index).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: options.bucket,
            prefix: options.prefix,
            journal: None,
        }
    }

    /// Records in-flight multipart uploads under `dir`, so that `clean_dead_writes` can abort
    /// a dead run's.
    #[must_use]
    pub fn with_upload_journal(mut self, dir: &std::path::Path) -> Self {
        self.journal = Some(UploadJournal::new(dir));
        self
    }

    async fn abort_upload(&self, full: &str, upload_id: &str) -> Result<(), String> {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .send()
            .await;
        match aborted {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(DisplayErrorContext(&e).to_string()),
        }
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn fail<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        action: &'static str,
        key: &str,
        err: &SdkError<E, R>,
    ) -> StoreError {
        // GetObject answers NoSuchKey; HeadObject has no body, and the SDK calls its 404 NotFound.
        let missing = matches!(err.code(), Some("NoSuchKey" | "NotFound"));
        StoreError::backend(
            self.location(),
            action,
            key,
            DisplayErrorContext(err).to_string(),
            missing,
        )
    }

    async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        first: Vec<u8>,
        body: ObjectReader,
    ) -> Result<u64, StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| self.fail("start upload of", key, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        if let Some(journal) = &self.journal {
            let entry = UploadEntry::new(self.location(), full.to_owned(), upload_id.clone());
            if let Err(e) = journal.record(&entry) {
                tracing::warn!("cannot record the multipart upload {upload_id} of {full}: {e}");
            }
        }
        let uploaded = self.upload_parts(key, full, &upload_id, first, body).await;
        let completed = match uploaded {
            Ok((parts, size)) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| size)
                .map_err(|e| self.fail("complete upload of", key, &e)),
            Err(e) => Err(e),
        };
        if completed.is_err() {
            // Parts of an unfinished upload are invisible but billed: drop them now.
            if let Err(e) = self.abort_upload(full, &upload_id).await {
                tracing::warn!("could not abort the multipart upload {upload_id} of {full}: {e}");
                // Left in the journal: the next run tries again.
                return completed;
            }
        }
        if let Some(journal) = &self.journal {
            journal.forget(&upload_id);
        }
        completed
    }

    /// Uploads part N while part N+1 is read, so reading and sending overlap with two parts
    /// in memory at most.
    async fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        first: Vec<u8>,
        mut body: ObjectReader,
    ) -> Result<(Vec<CompletedPart>, u64), StoreError> {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut chunk = first;
        let mut number = 1i32;
        while !chunk.is_empty() {
            size += chunk.len() as u64;
            let full_chunk = chunk.len() == PART_SIZE;
            let request = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(Bytes::from(chunk)))
                .send();
            let in_flight = tokio::spawn(request);
            let next = if full_chunk {
                read_part(&mut body, key).await
            } else {
                Ok(Vec::new())
            };
            let sent = in_flight.await.map_err(|e| StoreError::Backend {
                store: self.location(),
                action: "upload part of",
                key: key.to_owned(),
                message: e.to_string(),
            })?;
            let sent = sent.map_err(|e| self.fail("upload part of", key, &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(sent.e_tag().map(str::to_owned))
                    .build(),
            );
            if number == 1 {
                super::upload_failpoint(key)?;
            }
            chunk = next?;
            number += 1;
        }
        Ok((parts, size))
    }
}

/// Reads up to one part from `body`; shorter only at the end of the stream.
async fn read_part(body: &mut ObjectReader, key: &str) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::with_capacity(PART_SIZE);
    let mut limited = body.take(PART_SIZE as u64);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|source| StoreError::Source {
            key: key.to_owned(),
            source,
        })?;
    Ok(buf)
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, key: &str, mut body: ObjectReader) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key(key)?;
        let first = read_part(&mut body, key).await?;
        let size_bytes = if first.len() < PART_SIZE {
            let size = first.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .body(ByteStream::from(Bytes::from(first)))
                .send()
                .await
                .map_err(|e| self.fail("put", key, &e))?;
            size
        } else {
            self.put_multipart(key, &full, first, body).await?
        };
        Ok(ObjectMeta {
            key: key.to_owned(),
            size_bytes,
            modified: None,
            etag: None,
        })
    }

    async fn put_bytes_if(
        &self,
        key: &str,
        data: Bytes,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key(key)?;
        let size_bytes = data.len() as u64;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(data));
        let request = match condition {
            WriteCondition::Absent => request.if_none_match("*"),
            WriteCondition::Matches(etag) => request.if_match(etag),
        };
        let output = request.send().await.map_err(|e| {
            if lost_condition(&e) {
                StoreError::ConditionFailed {
                    store: self.location(),
                    key: key.to_owned(),
                }
            } else {
                self.fail("put", key, &e)
            }
        })?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size_bytes,
            modified: None,
            etag: output.e_tag().map(str::to_owned),
        })
    }

    async fn get_bytes_meta(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta), StoreError> {
        let full = self.full_key(key)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.fail("get", key, &e))?;
        let modified = output.last_modified().and_then(aws_time);
        let etag = output.e_tag().map(str::to_owned);
        let declared = output
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if declared > SMALL_OBJECT_MAX {
            return Err(too_large(self.location(), key, declared));
        }
        // Bounded even if the server sends more than it declared.
        let mut data = Vec::new();
        output
            .body
            .into_async_read()
            .take(SMALL_OBJECT_MAX + 1)
            .read_to_end(&mut data)
            .await
            .map_err(|e| StoreError::backend(self.location(), "read", key, e.to_string(), false))?;
        if data.len() as u64 > SMALL_OBJECT_MAX {
            return Err(too_large(self.location(), key, data.len() as u64));
        }
        let meta = ObjectMeta {
            key: key.to_owned(),
            size_bytes: data.len() as u64,
            modified,
            etag,
        };
        Ok((data, meta))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectReader, StoreError> {
        let full = self.full_key(key)?;
        let mut request = self.client.get_object().bucket(&self.bucket).key(&full);
        if let Some(range) = range {
            if range.end <= range.start {
                return Ok(Box::pin(tokio::io::empty()));
            }
            request = request.range(format!("bytes={}-{}", range.start, range.end - 1));
        }
        let output = request
            .send()
            .await
            .map_err(|e| self.fail("get", key, &e))?;
        Ok(Box::pin(output.body.into_async_read()))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key(key)?;
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.fail("head", key, &e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size_bytes: output
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            modified: output.last_modified().and_then(aws_time),
            etag: output.e_tag().map(str::to_owned),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail("list", prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_owned(),
                    size_bytes: object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    modified: object.last_modified().and_then(aws_time),
                    etag: object.e_tag().map(str::to_owned),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Aborts the multipart uploads this store's dead runs recorded in the journal.
    async fn clean_dead_writes(&self) -> Result<u64, StoreError> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        let mut aborted = 0;
        let store = self.location();
        for entry in journal.entries() {
            if !entry.is_dead_write_of(&store) {
                continue;
            }
            match self.abort_upload(&entry.key, &entry.upload_id).await {
                Ok(()) => {
                    journal.forget(&entry.upload_id);
                    aborted += 1;
                }
                Err(e) => tracing::warn!(
                    "could not abort the dead multipart upload {} of {}: {e}",
                    entry.upload_id,
                    entry.key
                ),
            }
        }
        Ok(aborted)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let full = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.fail("delete", key, &e))?;
        Ok(())
    }
}

/// A conditional write that lost: 412 PreconditionFailed; 409 ConditionalRequestConflict
/// (AWS, a concurrent conditional write); 404 when `If-Match` names a key now gone.
fn lost_condition<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err.code() {
        Some(code) => matches!(
            code,
            "PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey"
        ),
        // A server that answers without an error code: judge by the status alone.
        None => err
            .raw_response()
            .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)),
    }
}

fn aws_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.secs(), t.subsec_nanos().try_into().ok()?).ok()
}
