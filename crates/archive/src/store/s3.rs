//! Objects in an S3-compatible bucket, through the `object_store` crate.
//!
//! MinIO, Ceph RGW and the cloud buckets all speak S3; `object_store` (the
//! Apache Arrow project's client) signs, retries and streams for us, so this
//! file only maps the archive's contract onto it:
//!
//! - **publish** is one PUT for an object up to [`SINGLE_PUT_LIMIT`], a
//!   multipart upload in [`PART_SIZE`] parts above it, read from the staging
//!   file part by part (a 2 GB cine loop costs one part of memory). An upload
//!   that fails is aborted. When `publish` returns, the bucket has the object:
//!   S3 acknowledges a PUT once it is durable.
//! - **reader** serves byte ranges: a ranged GET per read that misses its
//!   buffer, reading at least [`READ_AHEAD`] ahead, so WADO frames and the
//!   lazy frame reader fetch what they read, not the whole object.
//! - The contract is blocking; the HTTP client runs on a small runtime of its
//!   own ([`io_runtime`]), so a call works from any thread (a blocking-pool
//!   thread, a rayon imaging worker) without nesting runtimes.
//!
//! Retries and requests are bounded ([`RETRY_TIMEOUT`], [`REQUEST_TIMEOUT`]):
//! while the bucket is down a sender hears of it within seconds (C-STORE
//! `0xA700` with the reason), rather than after `object_store`'s default
//! three minutes.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
use object_store::path::Path as BucketPath;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};
use serde::Deserialize;

use super::{BlobStore, ObjectKey, ObjectReader, StoreError};

/// Objects up to this size are one PUT.
pub const SINGLE_PUT_LIMIT: u64 = 16 * 1024 * 1024;
/// Parts of a multipart upload (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// A read that misses the buffer fetches at least this much.
pub const READ_AHEAD: u64 = 1024 * 1024;
/// How long one request is retried before the caller hears it failed.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take: a part of [`PART_SIZE`] crosses a
/// centre's LAN in well under a second; a server that accepted the
/// connection and went silent is given up on after this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the bucket may take to assemble a multipart upload's parts:
/// S3 may answer CompleteMultipartUpload only after minutes for a large
/// object (moto takes over 15 s for 1 GiB), so this one request is given
/// longer than the others.
pub const COMPLETE_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the bucket is and how to reach it (`[storage.s3]` in the
/// configuration file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `http://minio.local:9000`; unset: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// `us-east-1` when unset (what MinIO and Ceph expect by default).
    pub region: Option<String>,
    /// Unset: taken from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow an `http://` endpoint (a bucket on the centre's own network).
    pub allow_http: bool,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`:
    /// what MinIO and Ceph RGW serve without wildcard DNS. Default true.
    pub path_style: Option<bool>,
}

impl std::fmt::Display for S3Config {
    /// Where the bucket is, without its credentials: for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{} at {}", self.bucket, self.endpoint.as_deref().unwrap_or("AWS"))
    }
}

/// An S3-compatible bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Store {
    bucket: Arc<AmazonS3>,
    /// The same bucket, for the one request allowed [`COMPLETE_TIMEOUT`].
    assembling: Arc<AmazonS3>,
}

/// The runtime the HTTP client runs on: two threads, started once per
/// process, never shut down (it would be dropped from inside whatever
/// runtime dropped the last store).
fn io_runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store-io")
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("object-store-runtime".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("a thread starts");
        handle
    })
}

/// Runs `future` on [`io_runtime`] and waits for it on this thread.
fn run<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    io_runtime().spawn(async move {
        let _ = done.send(future.await);
    });
    result.recv().expect("the object store's runtime never stops")
}

fn remote_error(key: &ObjectKey, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound { key: key.to_string() },
        e => StoreError::Unavailable { key: key.to_string(), reason: e.to_string() },
    }
}

impl S3Store {
    /// Configures the client; no request is made (see [`S3Store::check`]).
    pub fn connect(config: &S3Config) -> Result<S3Store, StoreError> {
        if config.bucket.is_empty() {
            return Err(StoreError::Config("storage.s3.bucket is empty".into()));
        }
        // reqwest is built without a default TLS provider; ours is ring, as
        // for the centre's own HTTPS and DICOM TLS. Installing twice is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = |timeout: Duration| {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&config.bucket)
                .with_region(config.region.as_deref().unwrap_or("us-east-1"))
                // Client options first: they carry `allow_http` too.
                .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(timeout))
                .with_allow_http(config.allow_http)
                .with_virtual_hosted_style_request(!config.path_style.unwrap_or(true))
                .with_retry(RetryConfig { max_retries: 3, retry_timeout: RETRY_TIMEOUT, backoff: Default::default() });
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            let from_env = |name: &str| std::env::var(name).ok();
            if let Some(id) = config.access_key_id.clone().or_else(|| from_env("AWS_ACCESS_KEY_ID")) {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = config.secret_access_key.clone().or_else(|| from_env("AWS_SECRET_ACCESS_KEY")) {
                builder = builder.with_secret_access_key(secret);
            }
            builder.build().map(Arc::new).map_err(|e| StoreError::Config(e.to_string()))
        };
        Ok(S3Store { bucket: client(REQUEST_TIMEOUT)?, assembling: client(COMPLETE_TIMEOUT)? })
    }

    /// Asks the bucket for a key that does not exist: `Ok` when the bucket
    /// answers (not found), the reason when it cannot be reached or refuses
    /// the credentials. For a clear error at start rather than at the first
    /// C-STORE.
    pub fn check(&self) -> Result<(), StoreError> {
        let key = ObjectKey::new("telediag-startup-check").expect("a valid key");
        match self.size(&key) {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One PUT of `bytes`, taken without a copy.
    fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError> {
        let (bucket, path, payload) = (self.bucket.clone(), Self::path(key), PutPayload::from(bytes));
        run(async move { bucket.put(&path, payload).await }).map(|_| ()).map_err(|e| remote_error(key, e))
    }

    fn path(key: &ObjectKey) -> BucketPath {
        BucketPath::from(key.as_str())
    }

    /// A multipart upload of the file at `staged`, one part in memory at a
    /// time; the parts within [`REQUEST_TIMEOUT`] each, their assembly
    /// within [`COMPLETE_TIMEOUT`].
    fn upload_in_parts(&self, key: &ObjectKey, staged: &Path) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io { key: key.to_string(), source };
        let mut file = std::fs::File::open(staged).map_err(io_err)?;
        let path = Self::path(key);
        let (bucket, at) = (self.bucket.clone(), path.clone());
        let id = run(async move { bucket.create_multipart(&at).await }).map_err(|e| remote_error(key, e))?;
        let uploaded = (|| {
            let mut parts = Vec::new();
            loop {
                let mut part = Vec::with_capacity(PART_SIZE);
                (&mut file).take(PART_SIZE as u64).read_to_end(&mut part).map_err(io_err)?;
                if part.is_empty() {
                    break;
                }
                let (bucket, at, id, index) = (self.bucket.clone(), path.clone(), id.clone(), parts.len());
                let sent = run(async move { bucket.put_part(&at, &id, index, PutPayload::from(part)).await });
                parts.push(sent.map_err(|e| remote_error(key, e))?);
            }
            Ok(parts)
        })();
        let (assembling, bucket, at) = (self.assembling.clone(), self.bucket.clone(), path.clone());
        match uploaded {
            Ok(parts) => {
                let (completing, completed_at) = (id.clone(), at.clone());
                let completed = run(async move { assembling.complete_multipart(&completed_at, &completing, parts).await.map(|_| ()) });
                completed.map_err(|e| {
                    // Its parts would otherwise stay in the bucket, unseen.
                    let _ = run(async move { bucket.abort_multipart(&at, &id).await });
                    remote_error(key, e)
                })
            }
            Err(e) => {
                let _ = run(async move { bucket.abort_multipart(&at, &id).await });
                Err(e)
            }
        }
    }
}

impl BlobStore for S3Store {
    fn publish(&self, key: &ObjectKey, staged: &Path) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io { key: key.to_string(), source };
        let size = std::fs::metadata(staged).map_err(io_err)?.len();
        if size > SINGLE_PUT_LIMIT {
            return self.upload_in_parts(key, staged);
        }
        self.put(key, std::fs::read(staged).map_err(io_err)?)
    }

    fn reader(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        let size = self.size(key)?;
        Ok(Box::new(RangeReader {
            bucket: self.bucket.clone(),
            key: key.clone(),
            size,
            position: 0,
            buffer: Default::default(),
            buffer_start: 0,
        }))
    }

    fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        let (bucket, path) = (self.bucket.clone(), Self::path(key));
        run(async move { bucket.head(&path).await }).map(|meta| meta.size).map_err(|e| remote_error(key, e))
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let (bucket, path) = (self.bucket.clone(), Self::path(key));
        match run(async move { bucket.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote_error(key, e)),
        }
    }

    /// One PUT: atomic, as S3 replaces an object whole. Durable too, which
    /// rebuildable objects do not need but cannot opt out of.
    fn put_rebuildable(&self, key: &ObjectKey, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(key, bytes.to_vec())
    }
}

/// An object read by ranged GETs, buffering what each fetched.
struct RangeReader {
    bucket: Arc<AmazonS3>,
    key: ObjectKey,
    size: u64,
    position: u64,
    buffer: bytes::Bytes,
    buffer_start: u64,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.size || out.is_empty() {
            return Ok(0);
        }
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        if !(self.buffer_start..buffer_end).contains(&self.position) {
            let end = self.size.min(self.position + READ_AHEAD.max(out.len() as u64));
            let (bucket, path, range) = (self.bucket.clone(), S3Store::path(&self.key), self.position..end);
            self.buffer =
                run(async move { bucket.get_range(&path, range).await }).map_err(|e| io::Error::other(remote_error(&self.key, e)))?;
            self.buffer_start = self.position;
            if self.buffer.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} ended before its stated size", self.key)));
            }
        }
        let offset = (self.position - self.buffer_start) as usize;
        let n = out.len().min(self.buffer.len() - offset);
        out[..n].copy_from_slice(&self.buffer[offset..offset + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the object"))?;
        Ok(self.position)
    }
}
