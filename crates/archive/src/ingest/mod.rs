//! The durable-ingest protocol: how a received object becomes a record.
//!
//! 1. **Announce.** When a C-STORE (or an import) names its SOP Instance UID,
//!    that instance is locked and its stored versions are fetched, in the
//!    background, while the bytes are still arriving.
//! 2. **Receive.** Bytes stream into `staging/<process>/s<site>-<id>.part`
//!    (made ahead by `pool.rs`, its name already on disk; a file made on the
//!    spot has the staging directory fsynced before step 3 acknowledges)
//!    behind a Part 10 header, hashed (XXH3-128, dataset only) as they pass, and
//!    written back to disk in 256 KiB chunks as they come. Nothing is held
//!    whole in memory.
//! 3. **Verify and publish**, on one blocking thread: scan the dataset
//!    ([`crate::scan`]: structure, lengths, and that its SOP Class and Instance
//!    UIDs are those announced); if its hash equals a stored version's, it is a
//!    duplicate and nothing is written; otherwise it becomes the next version
//!    and is published under its key ([`BlobStore::publish`]: a local store's
//!    hard link, then the file's and the directory's fsync; a bucket's PUT,
//!    after which the staging file is renamed `.published`, since no second
//!    link marks it). The sender may now be told "success": the object is
//!    durable.
//! 4. **Index** through the group commit, in the background, so the sender's
//!    next object is already arriving; then the instance lock is released.
//!    [`Stored::indexed`] resolves on commit; the gateway confirms an
//!    association's release only when all its rows are in. Commits are made
//!    durable together at sync points (about once a second), and only then do
//!    the staging entries go (see [`crate::indexer`]).
//!
//! After a crash, a `.part` staging file with one link was never published
//! (never acknowledged) and is deleted; one with two links, or a
//! `.published` one, was published, perhaps acknowledged, and is verified
//! and indexed by [`Archive::open`]. A failure
//! before publication removes what the object had written.

mod locks;
pub mod ownership;
mod pool;
mod publish;
mod recovery;
mod staging;

pub use staging::IncomingObject;

use locks::{InstanceLock, InstanceLocks};
use pool::StagingPool;
use publish::{index_record, verify_and_publish};
use staging::{Arrival, ContentHasher, STAGING_BUFFER, copy_hashing, random_name};

use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::db::{Database, DbError, Durability};
use crate::dir_sync::DirSyncs;
use crate::index::{InstanceRecord, StoredVersion};
use crate::indexer::Indexer;
use crate::part10::{self, FileMeta, Part10Error};
use crate::scan::ScanError;
use crate::store::{BlobStore, LocalStore, S3Store, StoreError, sync_dir};
use crate::uid::{SeriesUid, SopInstanceUid, StudyUid, UidError};

/// Where the archive keeps things.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// Root of everything: `objects/`, `staging/`, and the SQLite file by default.
    pub data_dir: PathBuf,
    /// Defaults to `sqlite://<data_dir>/index.db`.
    pub database_url: Option<String>,
    pub durability: Durability,
    /// Where objects live: `<data_dir>/objects` by default.
    pub storage: Storage,
}

/// Where the archive keeps objects.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Files under `<data_dir>/objects` ([`crate::store::LocalStore`]).
    #[default]
    Local,
    /// An S3-compatible bucket ([`crate::store::S3Store`]).
    S3(crate::store::S3Config),
}

/// Who sent an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub site_id: i64,
    pub calling_ae: Option<String>,
}

/// What [`Archive::import`] reads: a file on disk or bytes in memory.
enum ImportSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl ImportSource {
    fn open(self) -> io::Result<Box<dyn crate::store::ReadSeek>> {
        Ok(match self {
            ImportSource::File(path) => Box::new(File::open(path)?),
            ImportSource::Bytes(bytes) => Box::new(io::Cursor::new(bytes)),
        })
    }
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
    pub series_uid: SeriesUid,
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

/// Why an object was not stored. The protocols that received it say so in
/// their own terms (the gateway's DIMSE status, STOW-RS's Failure Reason);
/// the message is the Error Comment.
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
    /// A UID in the object belongs to another site (see [`ownership`]).
    /// The message names the UID the sender sent, nothing of the owner.
    #[error(
        "{} {} is already held by the centre for another sender; the object was refused and the collision reported to the centre's administrator",
        .0.kind.attribute(), .0.uid
    )]
    UidHeldElsewhere(ownership::Collision),
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
    #[error("cannot use the object store: {0}")]
    Store(#[from] StoreError),
}

/// What is known of an announced SOP instance before its bytes are in.
struct Prior {
    lock: InstanceLock,
    versions: Vec<StoredVersion>,
}

struct Inner {
    db: Database,
    store: Arc<dyn BlobStore>,
    /// fsyncs of the staging directory, shared by concurrent callers (and,
    /// for a local store, with its series directories).
    dir_syncs: Arc<DirSyncs>,
    /// This process's own staging directory, `staging/p<pid>-<random>/`.
    staging: PathBuf,
    /// Held (locked) for the life of the process: other processes sharing the
    /// data directory (an import beside a running server) see the directory
    /// is alive and leave it alone.
    _staging_lock: File,
    /// Staging files made ahead, their names already durable.
    pool: StagingPool,
    indexer: Indexer,
    locks: InstanceLocks,
    /// Index tasks still running (see [`Archive::wait_idle`]).
    pending: tokio::sync::watch::Sender<usize>,
    /// Objects begun and not yet acknowledged or dropped.
    arriving: Arc<AtomicUsize>,
    /// Which site claimed each recently seen study and series UID.
    owners: ownership::Owners,
}

/// The archive: object store + index + ingest protocol. Cheap to clone.
#[derive(Clone)]
pub struct Archive {
    inner: Arc<Inner>,
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
        // Patients' images and doctors' signing keys: the owner only, also
        // for a directory an earlier version made world-readable.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&config.data_dir, fs::Permissions::from_mode(0o700)).map_err(dir_err(&config.data_dir))?;
        }
        let staging_root = config.data_dir.join("staging");
        fs::create_dir_all(&staging_root).map_err(dir_err(&staging_root))?;
        // Each process's staging directory, where its files are made, away
        // from the last run's (`placement.rs`).
        crate::placement::spread_subdirectories(&staging_root);
        let staging = staging_root.join(format!("p{}-{}", std::process::id(), &random_name()[..8]));
        fs::create_dir_all(&staging).map_err(dir_err(&staging))?;
        // Recovery finds acknowledged objects through this directory's entries.
        for dir in [&config.data_dir, &staging_root] {
            sync_dir(dir).map_err(dir_err(dir))?;
        }
        let staging_lock = File::create(staging.join("lock")).map_err(dir_err(&staging))?;
        staging_lock.lock().map_err(dir_err(&staging))?;
        let dir_syncs = Arc::new(DirSyncs::default());
        let store: Arc<dyn BlobStore> = match &config.storage {
            Storage::Local => {
                let objects = config.data_dir.join("objects");
                let local = LocalStore::open(&objects).map_err(dir_err(&objects))?;
                Arc::new(local.with_scratch_dir(staging.clone()).with_directory_syncs(dir_syncs.clone()))
            }
            Storage::S3(s3) => {
                let bucket = S3Store::connect(s3)?;
                let probe = bucket.clone();
                tokio::task::spawn_blocking(move || probe.check())
                    .await
                    .map_err(|e| StoreError::Config(format!("the bucket check failed: {e}")))??;
                tracing::info!(bucket = %s3, "objects are kept in an S3-compatible bucket");
                Arc::new(bucket)
            }
        };
        let url = config.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", config.data_dir.join("index.db").display()));
        let db = Database::open(&url, config.durability).await?;
        let indexer = Indexer::start(db.clone());
        let archive = Archive {
            inner: Arc::new(Inner {
                db,
                store,
                dir_syncs,
                pool: StagingPool::start(staging.clone()),
                staging,
                _staging_lock: staging_lock,
                indexer,
                locks: InstanceLocks::default(),
                pending: tokio::sync::watch::Sender::new(0),
                arriving: Arc::default(),
                owners: ownership::Owners::default(),
            }),
        };
        archive.recover(&staging_root).await;
        Ok(archive)
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The object store, for the archive's own modules (`objects.rs`).
    pub(crate) fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.inner.store
    }

    /// This process's staging directory, where the archive's own modules
    /// write files before publishing them (`objects.rs`).
    pub(crate) fn staging_dir(&self) -> &Path {
        &self.inner.staging
    }

    /// Has staging files made ahead for `site_id`, whose association has
    /// just been accepted (see `pool.rs`).
    pub fn prepare_site(&self, site_id: i64) {
        self.inner.pool.prepare(site_id);
    }

    /// How many objects are being received right now, from their first
    /// byte to their acknowledgement: the imaging pipeline gives way while
    /// several senders share the CPU.
    pub fn objects_arriving(&self) -> usize {
        self.inner.arriving.load(Ordering::Relaxed)
    }

    /// Starts receiving an object announced as `meta` for `site_id`.
    pub fn begin(&self, meta: FileMeta, site_id: i64) -> Result<IncomingObject, IngestError> {
        let sop = SopInstanceUid::parse(&meta.sop_instance_uid)?;
        let ready = self.inner.pool.take(site_id).and_then(|path| Some((File::options().write(true).open(&path).ok()?, path)));
        let (mut file, path, entry) = match ready {
            Some((file, path)) => (file, path, StagingEntry::Durable),
            None => {
                let path = self.inner.staging.join(format!("s{site_id}-{}.part", random_name()));
                (File::create(&path)?, path, StagingEntry::NotYetDurable)
            }
        };
        // The header goes to disk at once, so that only a file made ahead and
        // never used is ever empty.
        let mut header = Vec::with_capacity(1024);
        let header_len = match part10::write_header(&mut header, &meta) {
            Ok(len) => file.write_all(&header).map(|()| len).map_err(IngestError::from),
            Err(e) => Err(e.into()),
        }
        .inspect_err(|_| {
            let _ = fs::remove_file(&path);
        })?;
        Ok(IncomingObject {
            file,
            buffer: Vec::with_capacity(STAGING_BUFFER * 2),
            written: header_len,
            path,
            entry,
            hasher: ContentHasher::new(),
            header_len,
            dataset_len: 0,
            meta,
            prior: self.announce(sop),
            arrival: Some(Arrival::new(&self.inner.arriving)),
        })
    }

    /// Step 1: lock the instance and fetch its stored versions.
    fn announce(&self, sop: SopInstanceUid) -> tokio::task::JoinHandle<Result<Prior, IngestError>> {
        let archive = self.clone();
        tokio::spawn(async move {
            let lock = archive.inner.locks.lock(sop.as_str()).await?;
            let versions = archive.inner.db.versions_of(&sop).await?;
            Ok(Prior { lock, versions })
        })
    }

    /// Verifies, deduplicates and publishes a fully received object; its index
    /// row follows (see [`Stored::indexed`]).
    pub async fn commit(&self, incoming: IncomingObject, origin: &Origin) -> Result<Stored, IngestError> {
        self.commit_into(incoming, origin, None).await
    }

    /// [`Archive::commit`] for an object that must belong to `study`
    /// (STOW-RS to `/studies/{study}`): one of another study is refused as
    /// [`IngestError::Mismatch`] before anything is published.
    pub async fn commit_into(
        &self,
        mut incoming: IncomingObject,
        origin: &Origin,
        study: Option<&StudyUid>,
    ) -> Result<Stored, IngestError> {
        let flushed = incoming.flush_buffer();
        let path = std::mem::take(&mut incoming.path);
        let remove = |e: IngestError| {
            let _ = fs::remove_file(&path);
            e
        };
        flushed.map_err(|e| remove(e.into()))?;
        let hash = std::mem::take(&mut incoming.hasher).finish();
        let (meta, header_len, dataset_len, entry) = (incoming.meta.clone(), incoming.header_len, incoming.dataset_len, incoming.entry);
        let prior = (&mut incoming.prior)
            .await
            .map_err(|e| remove(IngestError::OutOfResources(format!("duplicate check failed: {e}"))))?
            .map_err(remove)?;
        // Still arriving until acknowledged: the flush is part of it.
        let _arrival = incoming.arrival.take();
        drop(incoming);
        let staged = path.clone();
        self.verify_publish_index(staged, entry, meta, header_len, dataset_len, hash, prior, origin, study).await
    }

    /// Imports a Part 10 file from disk, kept byte for byte, with the same
    /// checks and durability as a C-STORE. Returns once it is indexed.
    pub async fn import_file(&self, source: &Path, origin: &Origin) -> Result<Stored, IngestError> {
        self.import(ImportSource::File(source.to_owned()), origin).await
    }

    /// [`Archive::import_file`] for a Part 10 object made in memory (an ECG
    /// converted to DICOM, a report filed into its study).
    pub async fn import_bytes(&self, part10: Vec<u8>, origin: &Origin) -> Result<Stored, IngestError> {
        self.import(ImportSource::Bytes(part10), origin).await
    }

    async fn import(&self, source: ImportSource, origin: &Origin) -> Result<Stored, IngestError> {
        let staging = self.inner.staging.clone();
        let site_id = origin.site_id;
        let (staged, meta, header_len, dataset_len, hash) = tokio::task::spawn_blocking(move || {
            let mut input = source.open()?;
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
        let stored = self
            .verify_publish_index(staged, StagingEntry::NotYetDurable, meta, header_len, dataset_len, hash, prior, origin, None)
            .await?;
        wait_indexed(stored).await
    }

    /// Steps 3 and 4. The staged file is removed on every path but a fresh
    /// publication, where the index task removes it once the row is in.
    #[allow(clippy::too_many_arguments)]
    async fn verify_publish_index(
        &self,
        staged: PathBuf,
        entry: StagingEntry,
        meta: FileMeta,
        header_len: u64,
        dataset_len: u64,
        hash: String,
        prior: Prior,
        origin: &Origin,
        expected_study: Option<&StudyUid>,
    ) -> Result<Stored, IngestError> {
        let archive = self.clone();
        let expected_study = expected_study.cloned();
        let Prior { mut lock, mut versions } = prior;
        // Other processes' gateways wait from here on; what they stored
        // meanwhile is read again.
        let across = async {
            if lock.hold_across_processes(&self.inner.db).await? {
                versions = self.inner.db.versions_of(&SopInstanceUid::parse(&meta.sop_instance_uid)?).await?;
            }
            Ok::<_, IngestError>(())
        };
        if let Err(e) = across.await {
            let _ = fs::remove_file(&staged);
            return Err(match e {
                e @ IngestError::BadUid(_) => e,
                other => IngestError::OutOfResources(format!("duplicate check failed: {other}")),
            });
        }
        let site_id = origin.site_id;
        let sop = meta.sop_instance_uid.clone();
        let runtime = tokio::runtime::Handle::current();
        let published = tokio::task::spawn_blocking(move || {
            let check_owner = |study: &StudyUid, series: &SeriesUid| {
                if let Some(expected) = expected_study.as_ref().filter(|expected| *expected != study) {
                    return Err(IngestError::Mismatch {
                        what: "Study Instance UID",
                        announced: expected.to_string(),
                        dataset: study.to_string(),
                    });
                }
                let found = runtime.block_on(archive.inner.owners.check(&archive.inner.db, site_id, study, series))?;
                found.map_or(Ok(()), |collision| Err(IngestError::UidHeldElsewhere(collision)))?;
                // The versions were read under the lock; publishing without
                // it could overwrite what another gateway publishes now.
                runtime
                    .block_on(lock.confirm())
                    .map_err(|e| IngestError::OutOfResources(format!("the database lock on this instance was lost before publishing: {e}")))
            };
            let store = archive.inner.store.as_ref();
            let published = verify_and_publish(store, staged, meta, header_len, dataset_len, hash, &versions, site_id, check_owner)?;
            // The staging entry recovery reads must be on disk: a file made
            // ahead is, unless publication renamed it (a remote store).
            if published.version.is_some() && (entry == StagingEntry::NotYetDurable || !store.publication_links_staging()) {
                archive.make_staging_entry_durable(&published)?;
            }
            Ok::<_, IngestError>((published, lock))
        })
        .await
        .map_err(|e| IngestError::OutOfResources(format!("publish task failed: {e}")))?
        .inspect_err(|e| {
            if let IngestError::UidHeldElsewhere(collision) = e {
                self.report_collision(collision, origin, &sop);
            }
        })?;
        let (published, lock) = published;
        let Some(version) = published.version else {
            return Ok(Stored {
                outcome: Outcome::Duplicate,
                study_uid: published.study_uid,
                series_uid: published.series_uid,
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
            series_uid: published.series_uid,
            sop_instance_uid: published.sop_instance_uid,
            object_key: published.key,
            size_bytes: published.size,
            indexed,
        })
    }

    /// Logs and records an object refused for carrying another site's UID.
    fn report_collision(&self, collision: &ownership::Collision, origin: &Origin, sop: &str) {
        tracing::warn!(
            kind = collision.kind.as_str(),
            uid = %collision.uid,
            owner_site = collision.owner_site_id,
            sender_site = origin.site_id,
            calling_ae = origin.calling_ae.as_deref().unwrap_or("-"),
            sop_instance_uid = sop,
            "cross-site UID collision: object refused"
        );
        let (db, collision, origin, sop) = (self.inner.db.clone(), collision.clone(), origin.clone(), sop.to_owned());
        tokio::spawn(async move {
            if let Err(e) = db.record_collision(&collision, origin.site_id, origin.calling_ae.as_deref(), &sop).await {
                tracing::error!(error = %e, "cannot record a cross-site UID collision");
            }
        });
    }

    /// A published object's staging entry must be on disk before it is
    /// acknowledged: recovery indexes acknowledged objects from there. On
    /// failure the publication is undone, so the sender hears of it.
    fn make_staging_entry_durable(&self, published: &publish::Published) -> Result<(), IngestError> {
        // Files not from the pool: their fsyncs of the staging directory are shared.
        let Err(e) = self.inner.dir_syncs.sync(&self.inner.staging, sync_dir) else {
            return Ok(());
        };
        if let Ok(key) = crate::store::ObjectKey::new(published.key.clone()) {
            let _ = self.inner.store.delete(&key);
        }
        let _ = fs::remove_file(&published.staged);
        Err(IngestError::OutOfResources(format!("cannot make the staging entry durable: {e}")))
    }

    /// Waits until every background index write has finished and is
    /// durable: for a clean shutdown.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.pending.subscribe();
        let _ = rx.wait_for(|pending| *pending == 0).await;
        self.sync_index().await;
    }

    /// Makes every index row committed so far durable now, rather than at
    /// the next periodic sync point, and removes their staging links: when a
    /// sender releases its association, say.
    pub async fn sync_index(&self) {
        self.inner.indexer.sync().await;
    }

    /// Step 4 in the background: index (retrying while the database is
    /// unavailable), then drop the instance lock; the indexer drops the
    /// staging entry once the row is durable.
    fn spawn_index(&self, record: InstanceRecord, staged: PathBuf, lock: InstanceLock) -> IndexReceipt {
        const RETRIES: [u64; 5] = [100, 500, 1_000, 2_000, 5_000];
        /// Tries every 5 s after the receipt failed: ten minutes.
        const LATE_RETRIES: usize = 120;
        let (done, receipt) = tokio::sync::oneshot::channel();
        let archive = self.clone();
        archive.inner.pending.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            let mut result = archive.inner.indexer.index(record.clone(), staged.clone()).await;
            for delay in RETRIES {
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                result = archive.inner.indexer.index(record.clone(), staged.clone()).await;
            }
            let failed = result.is_err();
            if let Err(e) = &result {
                tracing::error!(
                    sop_instance_uid = %record.sop_instance_uid,
                    error = %e,
                    "cannot index a stored object yet; retrying for ten minutes, then at the next start from staging"
                );
            }
            let _ = done.send(result);
            archive.inner.pending.send_modify(|n| *n -= 1);
            // The sender has heard; the row is still owed. The database may
            // be back within minutes (a failover, a restart): the object is
            // indexed then, not only when this data directory is next opened.
            if failed {
                for _ in 0..LATE_RETRIES {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    if archive.inner.indexer.index(record.clone(), staged.clone()).await.is_ok() {
                        tracing::info!(sop_instance_uid = %record.sop_instance_uid, "stored object indexed after the database came back");
                        break;
                    }
                }
            }
            lock.release().await;
        });
        IndexReceipt(Some(receipt))
    }
}

/// Whether a staging file's name is on disk yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StagingEntry {
    /// Made ahead by the pool, whose directory fsync covered it.
    Durable,
    /// Created for this object; the staging directory is fsynced before the
    /// object is acknowledged.
    NotYetDurable,
}

/// Waits for an object's index row, for callers that answer only once it is
/// queryable (import, recovery).
async fn wait_indexed(mut stored: Stored) -> Result<Stored, IngestError> {
    let receipt = std::mem::replace(&mut stored.indexed, IndexReceipt::ready());
    receipt.wait().await.map_err(IngestError::OutOfResources)?;
    Ok(stored)
}

#[cfg(test)]
pub(crate) mod test_objects;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArchiveConfig;
    use crate::sites::NewSite;
    use test_objects::ct_meta as meta;

    /// An object counts as arriving from `begin` until it is acknowledged
    /// (commit returned) or abandoned (dropped), whatever the outcome.
    #[tokio::test(flavor = "multi_thread")]
    async fn objects_count_as_arriving_from_begin_to_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let config = ArchiveConfig {
            data_dir: dir.path().to_owned(),
            database_url: None,
            durability: Durability::Full,
            storage: Default::default(),
        };
        let archive = Archive::open(&config).await.unwrap();
        let site =
            archive.database().add_site(&NewSite { name: "县医院".into(), ae_titles: vec!["CT1".into()], networks: vec![] }).await.unwrap();
        let origin = Origin { site_id: site.id, calling_ae: None };
        assert_eq!(archive.objects_arriving(), 0);

        let mut first = archive.begin(meta("1.2.3.4.5"), site.id).unwrap();
        let second = archive.begin(meta("1.2.3.4.6"), site.id).unwrap();
        let third = archive.begin(meta("1.2.3.4.7"), site.id).unwrap();
        assert_eq!(archive.objects_arriving(), 3);
        drop(second);
        assert_eq!(archive.objects_arriving(), 2, "an abandoned object no longer counts");

        first.write(&test_objects::ct_dataset("1.2.3.4.5")).unwrap();
        let stored = archive.commit(first, &origin).await.unwrap();
        assert_eq!(stored.outcome, crate::Outcome::Stored);
        assert_eq!(archive.objects_arriving(), 1, "an acknowledged object no longer counts");

        let mut mismatched = third;
        mismatched.write(&test_objects::ct_dataset("9.9.9")).unwrap();
        archive.commit(mismatched, &origin).await.expect_err("the dataset's SOP Instance UID differs from the command's");
        assert_eq!(archive.objects_arriving(), 0, "a refused object no longer counts");
    }
}

#[cfg(test)]
mod ownership_tests {
    use super::*;
    use crate::ArchiveConfig;
    use crate::ingest::ownership::UidKind;
    use crate::sites::NewSite;
    use test_objects::{ct_in, ct_meta as meta};

    async fn open() -> (tempfile::TempDir, Archive, Origin, Origin) {
        let dir = tempfile::tempdir().unwrap();
        let config = ArchiveConfig {
            data_dir: dir.path().to_owned(),
            database_url: None,
            durability: Durability::Full,
            storage: Default::default(),
        };
        let archive = Archive::open(&config).await.unwrap();
        let mut origins = Vec::new();
        for (name, ae) in [("一号县医院", "ONE_CT"), ("二号县医院", "TWO_CT")] {
            let site =
                archive.database().add_site(&NewSite { name: name.into(), ae_titles: vec![ae.into()], networks: vec![] }).await.unwrap();
            origins.push(Origin { site_id: site.id, calling_ae: Some(ae.into()) });
        }
        let second = origins.pop().unwrap();
        (dir, archive, origins.pop().unwrap(), second)
    }

    async fn send(archive: &Archive, origin: &Origin, sop: &str, dataset: &[u8]) -> Result<Stored, IngestError> {
        let mut object = archive.begin(meta(sop), origin.site_id).unwrap();
        object.write(dataset).unwrap();
        let stored = archive.commit(object, origin).await?;
        Ok(wait_indexed(stored).await.unwrap())
    }

    fn held(result: Result<Stored, IngestError>) -> (UidKind, String) {
        match result {
            Err(IngestError::UidHeldElsewhere(c)) => (c.kind, c.uid),
            other => panic!("expected a cross-site UID collision, got {other:?}"),
        }
    }

    /// A study, series or instance belongs to the site that sent it first;
    /// another site's object carrying it is refused, recorded, and never
    /// joins or versions the owner's record.
    #[tokio::test(flavor = "multi_thread")]
    async fn uids_belong_to_the_site_that_sent_them_first() {
        let (_dir, archive, one, two) = open().await;
        send(&archive, &one, "9.1.1", &ct_in("9.1.1", "9.1", "9.1.0", 1)).await.unwrap();

        assert_eq!(
            held(send(&archive, &two, "9.2.1", &ct_in("9.2.1", "9.1", "9.2.0", 2)).await),
            (UidKind::Study, "9.1".into()),
            "another site's study UID"
        );
        assert_eq!(held(send(&archive, &two, "9.2.2", &ct_in("9.2.2", "9.2", "9.1.0", 2)).await), (UidKind::Series, "9.1.0".into()));
        assert_eq!(held(send(&archive, &two, "9.5.1", &ct_in("9.5.1", "9.5", "9.1.0", 2)).await), (UidKind::Series, "9.1.0".into()));
        assert_eq!(
            send(&archive, &one, "9.5.2", &ct_in("9.5.2", "9.5", "9.5.0", 2)).await.unwrap().outcome,
            Outcome::Stored,
            "an object refused for its series leaves its new study unclaimed"
        );
        assert_eq!(
            held(send(&archive, &two, "9.1.1", &ct_in("9.1.1", "9.1", "9.1.0", 1)).await),
            (UidKind::Instance, "9.1.1".into()),
            "a resend of the owner's very bytes is refused, not answered duplicate"
        );
        assert_eq!(held(send(&archive, &two, "9.1.1", &ct_in("9.1.1", "9.3", "9.3.0", 7)).await), (UidKind::Instance, "9.1.1".into()));
        let message = match send(&archive, &two, "9.2.3", &ct_in("9.2.3", "9.1", "9.2.0", 2)).await {
            Err(e) => e,
            Ok(_) => panic!("stored into another site's study"),
        };
        assert!(matches!(message, IngestError::UidHeldElsewhere(_)), "{message}");
        assert!(message.to_string().starts_with("Study Instance UID 9.1 is already held"), "{message}");

        // The owner is unaffected: its study has its one instance, and it
        // may still add to it and make new versions.
        assert_eq!(send(&archive, &one, "9.1.2", &ct_in("9.1.2", "9.1", "9.1.0", 3)).await.unwrap().outcome, Outcome::Stored);
        assert_eq!(send(&archive, &one, "9.1.1", &ct_in("9.1.1", "9.1", "9.1.0", 9)).await.unwrap().outcome, Outcome::NewVersion(2));
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM instances i JOIN series se ON se.id = i.series_ref \
             JOIN studies st ON st.id = se.study_ref WHERE st.study_uid = '9.1'",
        )
        .fetch_one(archive.database().pool())
        .await
        .unwrap();
        assert_eq!(count, 3, "two instances, one with two versions, all in the owner's study");
        // Site two may still send a study of its own.
        assert_eq!(send(&archive, &two, "9.2.9", &ct_in("9.2.9", "9.2", "9.2.0", 2)).await.unwrap().outcome, Outcome::Stored);

        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let recorded = archive.database().uid_collisions(10).await.unwrap();
        assert_eq!(recorded.len(), 6, "{recorded:?}");
        assert!(recorded.iter().all(|r| r.owner_site_id == one.site_id && r.sender_site_id == two.site_id));
        assert_eq!(recorded[0].calling_ae.as_deref(), Some("TWO_CT"));
    }

    /// Two sites sending the same new study UID at the same moment: exactly
    /// one owns it.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_uid_sent_by_two_sites_at_once_goes_to_one() {
        let (_dir, archive, one, two) = open().await;
        for round in 0..20 {
            let study = format!("8.{round}");
            let series = format!("8.{round}.0");
            let racer = |origin: &Origin, sop: String, pixel: u8| {
                let (archive, origin, dataset) = (archive.clone(), origin.clone(), ct_in(&sop, &study, &series, pixel));
                tokio::spawn(async move { send(&archive, &origin, &sop, &dataset).await })
            };
            let (a, b) = (racer(&one, format!("8.{round}.1"), 1), racer(&two, format!("8.{round}.2"), 2));
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            assert!(a.is_ok() != b.is_ok(), "round {round}: exactly one site may own study {study}: {a:?} / {b:?}");
            let sites: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT st.site_id) FROM studies st WHERE st.study_uid = $1")
                .bind(&study)
                .fetch_one(archive.database().pool())
                .await
                .unwrap();
            assert_eq!(sites, 1);
        }
    }
}
