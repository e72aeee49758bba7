//! The durable-ingest protocol: how a received object becomes a record.
//!
//! 1. **Announce.** When a C-STORE (or an import) names its SOP Instance UID,
//!    that instance is locked and its stored versions are fetched, in the
//!    background, while the bytes are still arriving.
//! 2. **Receive.** Bytes stream into `staging/<process>/s<site>-<id>.part`
//!    behind a Part 10 header, hashed (XXH3-128, dataset only) as they pass, and
//!    written back to disk in 256 KiB chunks as they come. Nothing is held
//!    whole in memory.
//! 3. **Verify and publish**, on one blocking thread: scan the dataset
//!    ([`crate::scan`]: structure, lengths, and that its SOP Class and Instance
//!    UIDs are those announced); if its hash equals a stored version's, it is a
//!    duplicate and nothing is written; otherwise it becomes the next version
//!    and is published under its key ([`BlobStore::publish`]: hard link, then
//!    the file's and the directory's fsync). The sender may now be told
//!    "success": the object is durable.
//! 4. **Index** through the group commit, in the background, so the sender's
//!    next object is already arriving; then the staging entry goes and the
//!    instance lock is released. [`Stored::indexed`] resolves on commit; the
//!    gateway confirms an association's release only when all its rows are in.
//!
//! After a crash, a staging file with one link was never published (never
//! acknowledged) and is deleted; one with two links was published, perhaps
//! acknowledged, and is verified and indexed by [`Archive::open`]. A failure
//! before publication removes what the object had written.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dicom_core::Tag;

use crate::db::{Database, DbError, Durability, now_ms};
use crate::index::{InstanceRecord, PatientAttributes, SeriesAttributes, StoredVersion, StudyAttributes};
use crate::indexer::Indexer;
use crate::layout::original_key;
use crate::part10::{self, FileMeta, Part10Error};
use crate::scan::{self, ScanError, ScannedDataset};
use crate::store::{BlobStore, LocalStore, StoreError};
use crate::uid::{SeriesUid, SopClassUid, SopInstanceUid, StudyUid, TransferSyntaxUid, UidError};

/// DIMSE status codes (PS3.4 Annex B.2.3 / PS3.7 Annex C) for ingest failures.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
}

/// Where the archive keeps things.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// Root of everything: `objects/`, `staging/`, and the SQLite file by default.
    pub data_dir: PathBuf,
    /// Defaults to `sqlite://<data_dir>/index.db`.
    pub database_url: Option<String>,
    pub durability: Durability,
}

/// Who sent an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub site_id: i64,
    pub calling_ae: Option<String>,
}

/// What became of a received object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First time this SOP instance was seen.
    Stored,
    /// Same UID, same bytes as a stored version: nothing written.
    Duplicate,
    /// Same UID, different bytes: kept as this version and flagged.
    NewVersion(i64),
}

/// The result of a successful ingest.
#[derive(Debug)]
pub struct Stored {
    pub outcome: Outcome,
    pub study_uid: StudyUid,
    pub sop_instance_uid: SopInstanceUid,
    pub object_key: String,
    pub size_bytes: u64,
    /// Resolves when the index row is committed.
    pub indexed: IndexReceipt,
}

/// Resolves when an object's index row is committed. If indexing keeps
/// failing (database down), the object stays in staging and is indexed at the
/// next start; the receipt then reports the failure.
#[derive(Debug)]
pub struct IndexReceipt(Option<tokio::sync::oneshot::Receiver<Result<(), String>>>);

impl IndexReceipt {
    fn ready() -> Self {
        IndexReceipt(None)
    }

    pub async fn wait(self) -> Result<(), String> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or_else(|_| Err("indexing was interrupted; it resumes at the next start".into())),
        }
    }
}

/// Why an object was not stored. Each maps to the DIMSE status the sender gets
/// ([`IngestError::dimse_status`]); the message is its Error Comment.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{what} in the dataset is {dataset:?} but the request said {announced:?}")]
    Mismatch { what: &'static str, announced: String, dataset: String },
    #[error("{0}")]
    Unparseable(#[from] ScanError),
    #[error("dataset lacks {0}")]
    MissingAttribute(&'static str),
    #[error("{0}")]
    BadUid(#[from] UidError),
    #[error("{0}")]
    NotPart10(#[from] Part10Error),
    #[error("out of resources: {0}")]
    OutOfResources(String),
}

impl IngestError {
    pub fn dimse_status(&self) -> u16 {
        match self {
            IngestError::Mismatch { .. } => status::DATASET_DOES_NOT_MATCH_SOP_CLASS,
            IngestError::OutOfResources(_) => status::OUT_OF_RESOURCES,
            _ => status::CANNOT_UNDERSTAND,
        }
    }
}

impl From<io::Error> for IngestError {
    fn from(e: io::Error) -> Self {
        IngestError::OutOfResources(format!("storage I/O failed: {e}"))
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::OutOfResources(e.to_string())
    }
}

impl From<DbError> for IngestError {
    fn from(e: DbError) -> Self {
        IngestError::OutOfResources(e.to_string())
    }
}

/// Why the archive could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Database(#[from] DbError),
}

/// An object being received: write its dataset bytes, then hand it to
/// [`Archive::commit`]. Dropping it removes the partial file.
///
/// Bytes are buffered and written in 256 KiB chunks, and each chunk's
/// write-back to disk is started at once (`sync_file_range`, Linux), so the
/// disk works while the network is still delivering the rest of the object
/// and the fsync before the acknowledgement only waits for the tail.
pub struct IncomingObject {
    file: File,
    buffer: Vec<u8>,
    /// Bytes of the file already handed to the kernel.
    written: u64,
    path: PathBuf,
    hasher: ContentHasher,
    header_len: u64,
    dataset_len: u64,
    meta: FileMeta,
    /// Step 1, running while the bytes arrive.
    prior: tokio::task::JoinHandle<Result<Prior, IngestError>>,
}

/// What is known of an announced SOP instance before its bytes are in.
struct Prior {
    lock: InstanceLock,
    versions: Vec<StoredVersion>,
}

impl IncomingObject {
    /// Appends dataset bytes.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.dataset_len += chunk.len() as u64;
        if self.buffer.is_empty() && chunk.len() >= STAGING_BUFFER {
            // A whole PDU's worth: straight to the file, no copy.
            self.file.write_all(chunk)?;
            start_writeback(&self.file, self.written, chunk.len() as u64);
            self.written += chunk.len() as u64;
            return Ok(());
        }
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= STAGING_BUFFER {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buffer)?;
        start_writeback(&self.file, self.written, self.buffer.len() as u64);
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    pub fn dataset_len(&self) -> u64 {
        self.dataset_len
    }
}

impl Drop for IncomingObject {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            self.prior.abort();
        }
    }
}

/// One lock per SOP Instance UID, so that two associations sending the same
/// instance cannot both decide it is new.
#[derive(Default)]
struct InstanceLocks {
    held: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held from the duplicate check until the index row is committed.
struct InstanceLock {
    held: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl InstanceLocks {
    async fn lock(&self, key: &str) -> InstanceLock {
        let mutex = {
            let mut held = self.held.lock().expect("lock map poisoned");
            held.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        InstanceLock { held: self.held.clone(), key: key.to_owned(), _guard: guard }
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("lock map poisoned");
        if let Some(mutex) = held.get(&self.key)
            && Arc::strong_count(mutex) <= 2
        {
            held.remove(&self.key);
        }
    }
}

struct Inner {
    db: Database,
    store: LocalStore,
    /// This process's own staging directory, `staging/p<pid>-<random>/`.
    staging: PathBuf,
    /// Held (locked) for the life of the process: other processes sharing the
    /// data directory (an import beside a running server) see the directory
    /// is alive and leave it alone.
    _staging_lock: File,
    indexer: Indexer,
    locks: InstanceLocks,
    /// Index tasks still running (see [`Archive::wait_idle`]).
    pending: tokio::sync::watch::Sender<usize>,
}

/// The archive: object store + index + ingest protocol. Cheap to clone.
#[derive(Clone)]
pub struct Archive {
    inner: Arc<Inner>,
}

/// A verified, published (or duplicate) object, ready to index.
struct Published {
    staged: PathBuf,
    size: u64,
    hash: String,
    found: ScannedDataset,
    study_uid: StudyUid,
    series_uid: SeriesUid,
    sop_instance_uid: SopInstanceUid,
    sop_class_uid: SopClassUid,
    transfer_syntax_uid: TransferSyntaxUid,
    key: String,
    /// `None` for a duplicate of a stored version.
    version: Option<i64>,
}

const STAGING_BUFFER: usize = 256 * 1024;

/// The content hash of a dataset: XXH3-128, which keeps up with the network
/// and the disk (BLAKE3 cost a sixth of the gateway's CPU at 8 associations).
/// It only finds duplicate candidates: a match is confirmed byte for byte
/// before anything is treated as a duplicate, so a collision, accidental or
/// crafted, can never make the archive drop an object.
#[derive(Default)]
pub(crate) struct ContentHasher(xxhash_rust::xxh3::Xxh3);

impl ContentHasher {
    fn new() -> Self {
        Self::default()
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// 32 hex digits.
    fn finish(self) -> String {
        format!("{:032x}", self.0.digest128())
    }
}

impl Write for ContentHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether the dataset of the staged file equals that of a stored object.
fn same_dataset(store: &LocalStore, key: &str, staged: &Path, staged_header_len: u64) -> io::Result<bool> {
    let Ok(key) = crate::store::ObjectKey::new(key) else { return Ok(false) };
    let mut stored = match store.open(&key) {
        Ok(file) => file,
        Err(_) => return Ok(false),
    };
    let (_, stored_header_len) = part10::read_header(BufReader::new(&mut stored)).map_err(io::Error::other)?;
    let mut stored = BufReader::new(stored);
    stored.seek(SeekFrom::Start(stored_header_len))?;
    let mut staged = BufReader::new(File::open(staged)?);
    staged.seek(SeekFrom::Start(staged_header_len))?;
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut stored, &mut a)?;
        let m = read_full(&mut staged, &mut b)?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk without
/// waiting for them (the fsync before the acknowledgement still waits).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor and a plain range; the call has no
    // memory effects, and failure only means write-back starts later.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

fn random_name() -> String {
    format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

fn staged_site(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix('s')?.split('-').next()?.parse().ok()
}

impl Archive {
    /// Opens the archive under `config.data_dir`, then finishes whatever a
    /// previous run left in staging (see the module docs).
    pub async fn open(config: &ArchiveConfig) -> Result<Archive, OpenError> {
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::DataDir { path, source }
        };
        fs::create_dir_all(&config.data_dir).map_err(dir_err(&config.data_dir))?;
        let staging_root = config.data_dir.join("staging");
        let staging = staging_root.join(format!("p{}-{}", std::process::id(), &random_name()[..8]));
        fs::create_dir_all(&staging).map_err(dir_err(&staging))?;
        let staging_lock = File::create(staging.join("lock")).map_err(dir_err(&staging))?;
        staging_lock.lock().map_err(dir_err(&staging))?;
        let objects = config.data_dir.join("objects");
        let store = LocalStore::open(&objects).map_err(dir_err(&objects))?;
        let url = config
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", config.data_dir.join("index.db").display()));
        let db = Database::open(&url, config.durability).await?;
        let indexer = Indexer::start(db.clone());
        let archive = Archive {
            inner: Arc::new(Inner {
                db,
                store,
                staging,
                _staging_lock: staging_lock,
                indexer,
                locks: InstanceLocks::default(),
                pending: tokio::sync::watch::Sender::new(0),
            }),
        };
        archive.recover(&staging_root).await;
        Ok(archive)
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    pub fn store(&self) -> &LocalStore {
        &self.inner.store
    }

    /// Starts receiving an object announced as `meta` for `site_id`.
    pub fn begin(&self, meta: FileMeta, site_id: i64) -> Result<IncomingObject, IngestError> {
        let sop = SopInstanceUid::parse(&meta.sop_instance_uid)?;
        let path = self.inner.staging.join(format!("s{site_id}-{}.part", random_name()));
        let file = File::create(&path)?;
        let mut buffer = Vec::with_capacity(STAGING_BUFFER * 2);
        let header_len = part10::write_header(&mut buffer, &meta)?;
        Ok(IncomingObject {
            file,
            buffer,
            written: 0,
            path,
            hasher: ContentHasher::new(),
            header_len,
            dataset_len: 0,
            meta,
            prior: self.announce(sop),
        })
    }

    /// Step 1: lock the instance and fetch its stored versions.
    fn announce(&self, sop: SopInstanceUid) -> tokio::task::JoinHandle<Result<Prior, IngestError>> {
        let archive = self.clone();
        tokio::spawn(async move {
            let lock = archive.inner.locks.lock(sop.as_str()).await;
            let versions = archive.inner.db.versions_of(&sop).await?;
            Ok(Prior { lock, versions })
        })
    }

    /// Verifies, deduplicates and publishes a fully received object; its index
    /// row follows (see [`Stored::indexed`]).
    pub async fn commit(&self, mut incoming: IncomingObject, origin: &Origin) -> Result<Stored, IngestError> {
        let flushed = incoming.flush_buffer();
        let path = std::mem::take(&mut incoming.path);
        let remove = |e: IngestError| {
            let _ = fs::remove_file(&path);
            e
        };
        flushed.map_err(|e| remove(e.into()))?;
        let hash = std::mem::take(&mut incoming.hasher).finish();
        let (meta, header_len, dataset_len) = (incoming.meta.clone(), incoming.header_len, incoming.dataset_len);
        let prior = (&mut incoming.prior)
            .await
            .map_err(|e| remove(IngestError::OutOfResources(format!("duplicate check failed: {e}"))))?
            .map_err(remove)?;
        drop(incoming);
        let staged = path.clone();
        self.verify_publish_index(staged, meta, header_len, dataset_len, hash, prior, origin).await
    }

    /// Imports a Part 10 file from disk, kept byte for byte, with the same
    /// checks and durability as a C-STORE. Returns once it is indexed.
    pub async fn import_file(&self, source: &Path, origin: &Origin) -> Result<Stored, IngestError> {
        let staging = self.inner.staging.clone();
        let source = source.to_owned();
        let site_id = origin.site_id;
        let (staged, meta, header_len, dataset_len, hash) = tokio::task::spawn_blocking(move || {
            let mut input = File::open(&source)?;
            let (meta, header_len) = part10::read_header(BufReader::new(&mut input))?;
            input.seek(SeekFrom::Start(0))?;
            let path = staging.join(format!("s{site_id}-{}.part", random_name()));
            let (total, hash) = copy_hashing(&mut input, &path, header_len).inspect_err(|_| {
                let _ = fs::remove_file(&path);
            })?;
            Ok::<_, IngestError>((path, meta, header_len, total.saturating_sub(header_len), hash))
        })
        .await
        .map_err(|e| IngestError::OutOfResources(format!("import task failed: {e}")))??;
        let prior = match SopInstanceUid::parse(&meta.sop_instance_uid) {
            Ok(sop) => self.announce(sop).await.map_err(|e| IngestError::OutOfResources(e.to_string()))?,
            Err(e) => Err(e.into()),
        };
        let prior = prior.inspect_err(|_| {
            let _ = fs::remove_file(&staged);
        })?;
        let stored = self.verify_publish_index(staged, meta, header_len, dataset_len, hash, prior, origin).await?;
        wait_indexed(stored).await
    }

    /// Steps 3 and 4. The staged file is removed on every path but a fresh
    /// publication, where the index task removes it once the row is in.
    #[allow(clippy::too_many_arguments)]
    async fn verify_publish_index(
        &self,
        staged: PathBuf,
        meta: FileMeta,
        header_len: u64,
        dataset_len: u64,
        hash: String,
        prior: Prior,
        origin: &Origin,
    ) -> Result<Stored, IngestError> {
        let store = self.inner.store.clone();
        let Prior { lock, versions } = prior;
        let published = tokio::task::spawn_blocking(move || {
            verify_and_publish(&store, staged, meta, header_len, dataset_len, hash, &versions)
        })
        .await
        .map_err(|e| IngestError::OutOfResources(format!("publish task failed: {e}")))??;
        let Some(version) = published.version else {
            return Ok(Stored {
                outcome: Outcome::Duplicate,
                study_uid: published.study_uid,
                sop_instance_uid: published.sop_instance_uid,
                object_key: published.key,
                size_bytes: published.size,
                indexed: IndexReceipt::ready(),
            });
        };
        if version > 1 {
            tracing::warn!(
                sop_instance_uid = %published.sop_instance_uid,
                version,
                "SOP instance resent with different bytes; kept as a new version and flagged"
            );
        }
        let record = index_record(&published, version, origin);
        let indexed = self.spawn_index(record, published.staged.clone(), lock);
        Ok(Stored {
            outcome: if version > 1 { Outcome::NewVersion(version) } else { Outcome::Stored },
            study_uid: published.study_uid,
            sop_instance_uid: published.sop_instance_uid,
            object_key: published.key,
            size_bytes: published.size,
            indexed,
        })
    }

    /// Waits until every background index write has finished: for a clean
    /// shutdown.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.pending.subscribe();
        let _ = rx.wait_for(|pending| *pending == 0).await;
    }

    /// Step 4 in the background: index (retrying while the database is
    /// unavailable), then drop the staging entry and the instance lock.
    fn spawn_index(&self, record: InstanceRecord, staged: PathBuf, lock: InstanceLock) -> IndexReceipt {
        const RETRIES: [u64; 5] = [100, 500, 1_000, 2_000, 5_000];
        let (done, receipt) = tokio::sync::oneshot::channel();
        let archive = self.clone();
        archive.inner.pending.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            let mut result = archive.inner.indexer.index(record.clone()).await;
            for delay in RETRIES {
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                result = archive.inner.indexer.index(record.clone()).await;
            }
            match &result {
                Ok(()) => {
                    let _ = fs::remove_file(&staged);
                }
                Err(e) => tracing::error!(
                    sop_instance_uid = %record.sop_instance_uid,
                    error = %e,
                    "cannot index a stored object; it stays in staging and is indexed at the next start"
                ),
            }
            drop(lock);
            let _ = done.send(result);
            archive.inner.pending.send_modify(|n| *n -= 1);
        });
        IndexReceipt(Some(receipt))
    }

    /// Finishes what dead processes left in staging: files never published
    /// (one link) were never acknowledged and are deleted; published ones (two
    /// links) are verified again and indexed.
    /// A staging directory whose lock is still held belongs to a live process
    /// and is left alone.
    async fn recover(&self, staging_root: &Path) {
        let Ok(dirs) = fs::read_dir(staging_root) else {
            tracing::error!(path = %staging_root.display(), "cannot read the staging directory");
            return;
        };
        for dir in dirs.flatten().map(|e| e.path()).filter(|p| p.is_dir() && *p != self.inner.staging) {
            let lock = match File::options().read(true).write(true).create(true).truncate(false).open(dir.join("lock")) {
                Ok(lock) => lock,
                Err(e) => {
                    tracing::error!(path = %dir.display(), error = %e, "cannot open a staging lock");
                    continue;
                }
            };
            if lock.try_lock().is_err() {
                continue; // its process is alive
            }
            self.recover_dir(&dir).await;
            let _ = fs::remove_file(dir.join("lock"));
            let _ = fs::remove_dir(&dir);
        }
    }

    async fn recover_dir(&self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        let (mut dropped, mut finished) = (0, 0);
        for path in entries.flatten().map(|e| e.path()) {
            let published = fs::metadata(&path).map(|m| std::os::unix::fs::MetadataExt::nlink(&m) >= 2).unwrap_or(false);
            match path.extension().and_then(|e| e.to_str()) {
                Some("part") if !published => {
                    let _ = fs::remove_file(&path);
                    dropped += 1;
                }
                Some("inflated") => {
                    let _ = fs::remove_file(&path);
                }
                Some("part") => {
                    let site_id = staged_site(&path).unwrap_or_default();
                    match self.recover_one(&path, site_id).await {
                        Ok(stored) => {
                            finished += 1;
                            tracing::info!(sop_instance_uid = %stored.sop_instance_uid, "recovered a staged object");
                        }
                        Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot recover a staged object"),
                    }
                }
                _ => {}
            }
        }
        if dropped + finished > 0 {
            tracing::info!(dropped, finished, "staging recovery done");
        }
    }

    async fn recover_one(&self, path: &Path, site_id: i64) -> Result<Stored, IngestError> {
        let owned = path.to_owned();
        let (meta, header_len, dataset_len, hash) = tokio::task::spawn_blocking(move || {
            let (meta, header_len) = part10::read_header(BufReader::new(File::open(&owned)?))?;
            let size = fs::metadata(&owned)?.len();
            let mut file = File::open(&owned)?;
            file.seek(SeekFrom::Start(header_len))?;
            let mut hasher = ContentHasher::new();
            io::copy(&mut file, &mut hasher)?;
            Ok::<_, IngestError>((meta, header_len, size - header_len, hasher.finish()))
        })
        .await
        .map_err(|e| IngestError::OutOfResources(e.to_string()))??;
        let sop = SopInstanceUid::parse(&meta.sop_instance_uid)?;
        let prior = self.announce(sop).await.map_err(|e| IngestError::OutOfResources(e.to_string()))??;
        let origin = Origin { site_id, calling_ae: meta.source_ae_title.clone() };
        let stored = self.verify_publish_index(path.to_owned(), meta, header_len, dataset_len, hash, prior, &origin).await?;
        wait_indexed(stored).await
    }
}

/// Waits for an object's index row, for callers that answer only once it is
/// queryable (import, recovery).
async fn wait_indexed(mut stored: Stored) -> Result<Stored, IngestError> {
    let receipt = std::mem::replace(&mut stored.indexed, IndexReceipt::ready());
    receipt.wait().await.map_err(IngestError::OutOfResources)?;
    Ok(stored)
}

/// Copies `input` to `path`, hashing the bytes from `header_len` on.
fn copy_hashing(input: &mut File, path: &Path, header_len: u64) -> io::Result<(u64, String)> {
    let mut out = BufWriter::with_capacity(STAGING_BUFFER, File::create(path)?);
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; STAGING_BUFFER];
    let mut offset = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let skip = header_len.saturating_sub(offset).min(n as u64) as usize;
        hasher.update(&buf[skip..n]);
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
    out.flush()?;
    Ok((offset, hasher.finish()))
}

/// Step 3, on a blocking thread: scan, compare UIDs, deduplicate, publish.
/// Removes the staged file on any failure and for duplicates.
fn verify_and_publish(
    store: &LocalStore,
    staged: PathBuf,
    meta: FileMeta,
    header_len: u64,
    dataset_len: u64,
    hash: String,
    versions: &[StoredVersion],
) -> Result<Published, IngestError> {
    let remove = |e: IngestError| {
        let _ = fs::remove_file(&staged);
        e
    };
    let found = scan::scan_file(&staged, &meta.transfer_syntax_uid, header_len, dataset_len).map_err(|e| remove(e.into()))?;
    for (tag, what, announced) in [
        (Tag(0x0008, 0x0016), "SOP Class UID", &meta.sop_class_uid),
        (Tag(0x0008, 0x0018), "SOP Instance UID", &meta.sop_instance_uid),
    ] {
        let in_dataset = found.text(tag).unwrap_or_default();
        if in_dataset.trim_end_matches('\0') != announced.trim_end_matches('\0') {
            return Err(remove(IngestError::Mismatch { what, announced: announced.clone(), dataset: in_dataset }));
        }
    }
    let uid = |tag: Tag, name: &'static str| found.text(tag).ok_or(IngestError::MissingAttribute(name));
    let identify = || -> Result<_, IngestError> {
        Ok((
            StudyUid::parse(&uid(Tag(0x0020, 0x000D), "Study Instance UID (0020,000D)")?)?,
            SeriesUid::parse(&uid(Tag(0x0020, 0x000E), "Series Instance UID (0020,000E)")?)?,
            SopInstanceUid::parse(&meta.sop_instance_uid)?,
            SopClassUid::parse(&meta.sop_class_uid)?,
            TransferSyntaxUid::parse(&meta.transfer_syntax_uid)?,
        ))
    };
    let (study_uid, series_uid, sop_instance_uid, sop_class_uid, transfer_syntax_uid) = identify().map_err(remove)?;
    let size = header_len + dataset_len;
    let duplicate = versions
        .iter()
        .filter(|v| v.content_hash == hash)
        .find(|v| same_dataset(store, &v.object_key, &staged, header_len).unwrap_or(false));
    let (key, version) = match duplicate {
        Some(same) => {
            let _ = fs::remove_file(&staged);
            (same.object_key.clone(), None)
        }
        None => {
            let version = versions.first().map_or(1, |v| v.version + 1);
            let key = original_key(&study_uid, &series_uid, &sop_instance_uid, version).map_err(|e| remove(e.into()))?;
            if let Err(e) = store.publish(&key, &staged) {
                let _ = store.delete(&key);
                return Err(remove(e.into()));
            }
            (key.to_string(), Some(version))
        }
    };
    Ok(Published {
        staged,
        size,
        hash,
        found,
        study_uid,
        series_uid,
        sop_instance_uid,
        sop_class_uid,
        transfer_syntax_uid,
        key,
        version,
    })
}

/// The index row of a published object.
fn index_record(p: &Published, version: i64, origin: &Origin) -> InstanceRecord {
    let found = &p.found;
    let number = |tag| found.text(tag).and_then(|t| t.split('\\').next()?.trim().parse::<i64>().ok());
    InstanceRecord {
        site_id: origin.site_id,
        calling_ae: origin.calling_ae.clone(),
        study_uid: p.study_uid.clone(),
        series_uid: p.series_uid.clone(),
        sop_instance_uid: p.sop_instance_uid.clone(),
        sop_class_uid: p.sop_class_uid.clone(),
        transfer_syntax_uid: p.transfer_syntax_uid.clone(),
        version,
        conflict: version > 1,
        object_key: p.key.clone(),
        size_bytes: p.size as i64,
        content_hash: p.hash.clone(),
        received_at: now_ms(),
        patient: PatientAttributes {
            patient_id: found.text(Tag(0x0010, 0x0020)).unwrap_or_default(),
            name: found.text(Tag(0x0010, 0x0010)),
            sex: found.text(Tag(0x0010, 0x0040)),
            birth_date: found.text(Tag(0x0010, 0x0030)),
        },
        study: StudyAttributes {
            accession_number: found.text(Tag(0x0008, 0x0050)),
            study_date: found.text(Tag(0x0008, 0x0020)),
            study_time: found.text(Tag(0x0008, 0x0030)),
            description: found.text(Tag(0x0008, 0x1030)),
            referring_physician: found.text(Tag(0x0008, 0x0090)),
            institution: found.text(Tag(0x0008, 0x0080)),
        },
        series: SeriesAttributes {
            modality: found.text(Tag(0x0008, 0x0060)),
            body_part: found.text(Tag(0x0018, 0x0015)),
            description: found.text(Tag(0x0008, 0x103E)),
            series_number: number(Tag(0x0020, 0x0011)),
        },
        instance_number: number(Tag(0x0020, 0x0013)),
        number_of_frames: number(Tag(0x0028, 0x0008)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BlobStore, ObjectKey};

    fn part10(path: &Path, dataset: &[u8]) {
        let meta = FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: None,
        };
        let mut bytes = part10::encode_header(&meta);
        bytes.extend(dataset);
        fs::write(path, bytes).unwrap();
    }

    /// A hash match alone never makes an object a duplicate: the bytes decide.
    #[test]
    fn duplicates_are_confirmed_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("objects")).unwrap();
        let key = ObjectKey::new("originals/1/2/1.2.3.dcm").unwrap();
        part10(&dir.path().join("stored"), &[1, 2, 3, 4]);
        store.publish(&key, &dir.path().join("stored")).unwrap();
        let header_len = part10::encode_header(&FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: None,
        })
        .len() as u64;
        for (dataset, same) in [(&[1u8, 2, 3, 4][..], true), (&[1, 2, 3, 5], false), (&[1, 2, 3], false), (&[1, 2, 3, 4, 0], false)] {
            let staged = dir.path().join("staged");
            part10(&staged, dataset);
            assert_eq!(same_dataset(&store, key.as_str(), &staged, header_len).unwrap(), same, "{dataset:?}");
        }
        assert!(!same_dataset(&store, "originals/none.dcm", &dir.path().join("staged"), header_len).unwrap());
    }
}
