//! Where objects live: one narrow contract, two implementations.
//!
//! The contract ([`BlobStore`]) is what the ingest protocol needs and nothing
//! more: publish a fully written, fsynced staging file under a key, durably;
//! read a key by byte ranges; say how large it is; delete (deleting a missing
//! key succeeds). `NotFound` is its own error so callers can answer 404 rather
//! than 500.
//!
//! - [`LocalStore`] (`local.rs`): plain files under a root directory, published
//!   by hard link from staging; the embedded default.
//! - [`S3Store`] (`s3.rs`): an S3-compatible bucket (MinIO, Ceph RGW, a cloud
//!   bucket) through the `object_store` crate; for centres that outgrow one
//!   machine's disk.
//!
//! One contract test runs against both (the S3 one against a real
//! S3-compatible server when one is reachable).

mod local;
mod s3;

pub use local::LocalStore;
pub(crate) use local::{REBUILDABLE_EXTENSION, sync_dir};
pub use s3::{S3Config, S3Store};

use std::io;
use std::path::Path;

/// An object key: a relative path of `/`-separated components made of
/// `[A-Za-z0-9._-]`, never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

/// Errors of a blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("object {key} is {size} bytes, more than the {limit} read whole")]
    TooLarge { key: String, size: u64, limit: u64 },
    #[error("object store I/O failed for {key}: {source}")]
    Io { key: String, source: io::Error },
    /// The remote store refused or did not answer (after its retries).
    #[error("object store unavailable for {key}: {reason}")]
    Unavailable { key: String, reason: String },
    #[error("object store configuration: {0}")]
    Config(String),
}

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        let bad = |reason| Err(StoreError::InvalidKey { key: key.clone(), reason });
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return bad("must be a relative path");
        }
        for part in key.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return bad("has an empty, '.' or '..' component");
            }
            if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return bad("has characters outside [A-Za-z0-9._-]");
            }
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored object being read: it seeks, so a reader of one frame or one
/// header reads those bytes only (a file, or ranged GETs of a bucket).
pub type ObjectReader = Box<dyn ReadSeek>;

/// `Read + Seek + Send`, as one trait object.
pub trait ReadSeek: io::Read + io::Seek + Send {}
impl<T: io::Read + io::Seek + Send> ReadSeek for T {}

/// The storage contract of the archive. Implementations are blocking: callers
/// run them on tokio's blocking pool.
pub trait BlobStore: Send + Sync + 'static {
    /// Makes the fully written file at `staged` durably readable under `key`
    /// (its bytes and its name are on disk, or the PUT is complete, when this
    /// returns), replacing what was there. `staged` itself is left in place.
    fn publish(&self, key: &ObjectKey, staged: &Path) -> Result<(), StoreError>;
    /// Opens `key` for reading by byte ranges.
    fn reader(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError>;
    /// Size in bytes, or `NotFound`.
    fn size(&self, key: &ObjectKey) -> Result<u64, StoreError>;
    /// Removes `key`; succeeds if it does not exist.
    fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
    /// Writes `bytes` under `key` atomically (readers see the old or the new
    /// object, never a part), without fsync: for objects that can be rebuilt.
    fn put_rebuildable(&self, key: &ObjectKey, bytes: &[u8]) -> Result<(), StoreError>;
    /// Whether a publication leaves the staged file linked into the store (a
    /// second hard link to its inode), which crash recovery reads as
    /// "published". Otherwise the archive marks a published staging file
    /// itself, by renaming it (`ingest`).
    fn publication_links_staging(&self) -> bool {
        false
    }
}

/// Makes every file and directory this process creates from now on
/// readable by its owner only (umask 077): objects, the index, staging,
/// the CA's and doctors' keys. Called once by the binary at start; the
/// data directory itself is also set to 0700 by [`crate::Archive::open`].
pub fn make_new_files_owner_only() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::{Read, Seek};

    /// The contract every BlobStore must keep; run against each backend.
    fn contract(store: &dyn BlobStore, scratch: &Path) {
        let key = ObjectKey::new("originals/1.2/1.2.3/1.2.3.4.dcm").unwrap();
        assert!(matches!(store.size(&key), Err(StoreError::NotFound { .. })));
        assert!(matches!(store.reader(&key), Err(StoreError::NotFound { .. })));
        store.delete(&key).expect("deleting a missing key succeeds");

        let staged = scratch.join("a.staged");
        fs::write(&staged, b"first").unwrap();
        store.publish(&key, &staged).unwrap();
        assert_eq!(store.size(&key).unwrap(), 5);
        fs::write(scratch.join("b.staged"), b"second!").unwrap();
        store.publish(&key, &scratch.join("b.staged")).unwrap();
        let mut text = String::new();
        store.reader(&key).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "second!");
        store.delete(&key).unwrap();
        assert!(matches!(store.size(&key), Err(StoreError::NotFound { .. })));

        let thumb = ObjectKey::new("derived/1.2/1.2.3/1.2.3.4.thumbnail.jpg").unwrap();
        store.put_rebuildable(&thumb, b"jpeg").unwrap();
        store.put_rebuildable(&thumb, b"jpeg, again").unwrap();
        assert_eq!(store.size(&thumb).unwrap(), 11);
    }

    #[test]
    fn local_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("objects")).unwrap();
        contract(&store, dir.path());
        let scratch = dir.path().join("scratch");
        fs::create_dir(&scratch).unwrap();
        let store = LocalStore::open(dir.path().join("objects2")).unwrap().with_scratch_dir(scratch.clone());
        contract(&store, dir.path());
        assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0, "rebuildable objects were renamed out of the scratch directory");
    }

    fn s3_store(server: &telediag_test_servers::S3Server, bucket: &str) -> S3Store {
        server.create_bucket(bucket);
        S3Store::connect(&S3Config {
            endpoint: Some(server.endpoint()),
            bucket: bucket.into(),
            access_key_id: Some("telediag".into()),
            secret_access_key: Some("telediag-secret".into()),
            allow_http: true,
            ..S3Config::default()
        })
        .unwrap()
    }

    #[test]
    fn s3_store_keeps_the_contract() {
        let Some(server) = telediag_test_servers::S3Server::start() else { return };
        let dir = tempfile::tempdir().unwrap();
        let store = s3_store(&server, "contract");
        store.check().expect("the bucket answers");
        contract(&store, dir.path());
        assert!(!store.publication_links_staging());
    }

    /// Objects above one PUT go up in parts; reads fetch the ranges they
    /// read, wherever they seek.
    #[test]
    fn s3_store_uploads_in_parts_and_reads_ranges() {
        let Some(server) = telediag_test_servers::S3Server::start() else { return };
        let dir = tempfile::tempdir().unwrap();
        let store = s3_store(&server, "large");
        let size = s3::SINGLE_PUT_LIMIT as usize + 3 * 1024 * 1024 + 17;
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        fs::write(dir.path().join("cine.staged"), &bytes).unwrap();
        let key = ObjectKey::new("originals/1.2/1.2.3/cine.dcm").unwrap();
        store.publish(&key, &dir.path().join("cine.staged")).unwrap();
        assert_eq!(store.size(&key).unwrap(), size as u64);

        let mut reader = store.reader(&key).unwrap();
        for offset in [size as u64 - 5, 0, 9_000_000, s3::SINGLE_PUT_LIMIT - 3] {
            reader.seek(io::SeekFrom::Start(offset)).unwrap();
            let mut got = [0u8; 5];
            reader.read_exact(&mut got).unwrap();
            assert_eq!(&got[..], &bytes[offset as usize..offset as usize + 5], "at {offset}");
        }
        let mut whole = Vec::new();
        reader.seek(io::SeekFrom::Start(0)).unwrap();
        reader.read_to_end(&mut whole).unwrap();
        assert!(whole == bytes, "the object reads back whole");
    }

    /// A bucket that does not answer is an error within the retry budget,
    /// not a hang; it works again once the server is back.
    #[test]
    fn s3_store_reports_an_unreachable_bucket() {
        let Some(server) = telediag_test_servers::S3Server::start() else { return };
        let store = s3_store(&server, "outage");
        let key = ObjectKey::new("derived/a/b/c.thumbnail.jpg").unwrap();
        server.pause();
        let started = std::time::Instant::now();
        let error = store.put_rebuildable(&key, b"jpeg").expect_err("a paused server refuses");
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "gave up after {:?}", started.elapsed());
        server.resume();
        store.put_rebuildable(&key, b"jpeg").expect("works again");
    }

    /// Each tree is made with its subdirectories spread (`placement.rs`),
    /// whichever kind of write makes it.
    #[cfg(target_os = "linux")]
    #[test]
    fn trees_spread_their_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        if !crate::placement::spread_subdirectories(dir.path()) {
            eprintln!("skipped: the filesystem of {} does not take FS_TOPDIR_FL", dir.path().display());
            return;
        }
        let store = LocalStore::open(dir.path().join("objects")).unwrap();
        fs::write(dir.path().join("a.staged"), b"dicom").unwrap();
        store.publish(&ObjectKey::new("originals/1.2/1.2.3/1.2.3.4.dcm").unwrap(), &dir.path().join("a.staged")).unwrap();
        store.put_rebuildable(&ObjectKey::new("derived/1.2/1.2.3/1.2.3.4.thumbnail.jpg").unwrap(), b"jpeg").unwrap();
        for tree in ["originals", "derived"] {
            assert!(crate::placement::spreads_subdirectories(&dir.path().join("objects").join(tree)), "{tree}/ is not marked");
        }
        for below in ["objects", "objects/originals/1.2", "objects/derived/1.2"] {
            assert!(!crate::placement::spreads_subdirectories(&dir.path().join(below)), "{below} is marked");
        }
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "a/./b", "a/b/", "a b", "a/\u{5f20}"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectKey::new("originals/1.2/3.4/5.6.v2.dcm").is_ok());
    }
}
