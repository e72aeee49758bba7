//! Where original objects live: one narrow contract, one local implementation.
//!
//! The contract ([`BlobStore`]) is what the ingest protocol needs and nothing
//! more: publish a fully written, fsynced staging file under a key, durably;
//! open a key for reading; say whether a key exists; delete (deleting a missing
//! key succeeds). `NotFound` is its own error so callers can answer 404 rather
//! than 500.
//!
//! [`LocalStore`] keeps objects as plain files under a root directory, so an
//! operator can find `originals/<study>/<series>/<sop>.dcm` by hand. Publishing
//! is a hard link from the staging directory (same filesystem), then an fsync
//! of the file and of the target directory, in that order so that one journal
//! commit carries the data, the inode and the new name. Objects published
//! into one directory at once share its fsync (`dir_sync.rs`). The staging
//! entry stays (a second link to the same inode) until the object's index row
//! is durable: a staging file with two links is what crash recovery finishes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::dir_sync::DirSyncs;

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
/// header reads those bytes only (a file today; ranged reads of an object
/// store later).
pub type ObjectReader = Box<dyn ReadSeek>;

/// `Read + Seek + Send`, as one trait object.
pub trait ReadSeek: io::Read + io::Seek + Send {}
impl<T: io::Read + io::Seek + Send> ReadSeek for T {}

/// The storage contract of the archive. Implementations are blocking: callers
/// run them on tokio's blocking pool.
pub trait BlobStore: Send + Sync + 'static {
    /// Makes the fully written file at `staged` durably readable under `key`
    /// (its bytes and its name are on disk when this returns), replacing what
    /// was there. `staged` itself is left in place.
    fn publish(&self, key: &ObjectKey, staged: &Path) -> Result<(), StoreError>;
    /// Opens `key` for reading.
    fn open(&self, key: &ObjectKey) -> Result<File, StoreError>;
    /// Opens `key` for reading by byte ranges, whatever the backend.
    fn reader(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        Ok(Box::new(self.open(key)?))
    }
    /// Size in bytes, or `NotFound`.
    fn size(&self, key: &ObjectKey) -> Result<u64, StoreError>;
    /// Removes `key`; succeeds if it does not exist.
    fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
    /// Writes `bytes` under `key` atomically (readers see the old or the new
    /// object, never a part), without fsync: for objects that can be rebuilt.
    fn put_rebuildable(&self, key: &ObjectKey, bytes: &[u8]) -> Result<(), StoreError>;
}

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Callers that fsync one directory at once share the fsync:
    /// publications into one series directory, and the archive's staging
    /// directory (see [`LocalStore::directory_syncs`]).
    dir_syncs: Arc<DirSyncs>,
    /// Trees (a key's first component: `originals`, `derived`, …) known to
    /// exist with their subdirectories spread (`placement.rs`).
    trees: Arc<Mutex<HashSet<String>>>,
    /// Where rebuildable objects are written before being renamed into
    /// place; `None`: beside their target.
    scratch: Option<PathBuf>,
}

impl LocalStore {
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(LocalStore { root, dir_syncs: Arc::default(), trees: Arc::default(), scratch: None })
    }

    /// Writes rebuildable objects in `dir` (on the same filesystem) first,
    /// named `<random>.rebuildable`: a crash leaves no half-written file in
    /// the store's trees, and the file is made in `dir`'s block group, not
    /// in the target's (`placement.rs`). The archive passes its staging
    /// directory, whose recovery removes such leftovers.
    pub fn with_scratch_dir(mut self, dir: PathBuf) -> Self {
        self.scratch = Some(dir);
        self
    }

    /// Creates the tree `key` lives in, if need be, marked so that the
    /// filesystem spreads its study directories (`placement.rs`); once per
    /// tree and process, so a data directory from before the mark gets it too.
    fn prepare_tree(&self, key: &ObjectKey) -> io::Result<()> {
        let Some((tree, _)) = key.as_str().split_once('/') else { return Ok(()) };
        if self.trees.lock().expect("never poisoned").contains(tree) {
            return Ok(());
        }
        let dir = self.root.join(tree);
        create_dir_durably(&dir)?;
        crate::placement::spread_subdirectories(&dir);
        self.trees.lock().expect("never poisoned").insert(tree.to_owned());
        Ok(())
    }

    pub(crate) fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// The shared directory fsyncs, for directories beside the store that
    /// must be made durable the same way (staging). Keyed by path, so one
    /// set serves every directory.
    pub(crate) fn directory_syncs(&self) -> &DirSyncs {
        &self.dir_syncs
    }
}

/// The extension of rebuildable objects being written in a scratch
/// directory (see [`LocalStore::with_scratch_dir`]).
pub(crate) const REBUILDABLE_EXTENSION: &str = "rebuildable";

/// fsync a directory so that entries created in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, fsyncing each parent whose entry
/// list changed.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

impl BlobStore for LocalStore {
    fn publish(&self, key: &ObjectKey, staged: &Path) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io { key: key.to_string(), source };
        let target = self.path_of(key);
        let dir = target.parent().expect("keys are relative paths below the root");
        self.prepare_tree(key).map_err(io_err)?;
        create_dir_durably(dir).map_err(io_err)?;
        match fs::hard_link(staged, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Left by a crash between publish and index: the index decided
                // this key is free, so the old file is not the record.
                fs::remove_file(&target).map_err(io_err)?;
                fs::hard_link(staged, &target).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
        File::open(&target).and_then(|f| f.sync_data()).map_err(io_err)?;
        self.dir_syncs.sync(dir, sync_dir).map_err(io_err)
    }

    fn open(&self, key: &ObjectKey) -> Result<File, StoreError> {
        File::open(self.path_of(key)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { key: key.to_string() },
            _ => StoreError::Io { key: key.to_string(), source },
        })
    }

    fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        fs::metadata(self.path_of(key)).map(|m| m.len()).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { key: key.to_string() },
            _ => StoreError::Io { key: key.to_string(), source },
        })
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { key: key.to_string(), source }),
        }
    }

    fn put_rebuildable(&self, key: &ObjectKey, bytes: &[u8]) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io { key: key.to_string(), source };
        let target = self.path_of(key);
        let dir = target.parent().expect("keys are relative paths below the root");
        self.prepare_tree(key).map_err(io_err)?;
        fs::create_dir_all(dir).map_err(io_err)?;
        let temporary = match &self.scratch {
            Some(scratch) => scratch.join(format!("{:032x}.{REBUILDABLE_EXTENSION}", rand::random::<u128>())),
            None => dir.join(format!(".{}.tmp{}", target.file_name().unwrap().to_string_lossy(), std::process::id())),
        };
        fs::write(&temporary, bytes).map_err(io_err)?;
        fs::rename(&temporary, &target).map_err(|e| {
            let _ = fs::remove_file(&temporary);
            io_err(e)
        })
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
    use std::io::Read;

    /// The contract every BlobStore must keep; run against each backend.
    fn contract(store: &dyn BlobStore, scratch: &Path) {
        let key = ObjectKey::new("originals/1.2/1.2.3/1.2.3.4.dcm").unwrap();
        assert!(matches!(store.size(&key), Err(StoreError::NotFound { .. })));
        assert!(matches!(store.open(&key), Err(StoreError::NotFound { .. })));
        store.delete(&key).expect("deleting a missing key succeeds");

        let staged = scratch.join("a.staged");
        fs::write(&staged, b"first").unwrap();
        store.publish(&key, &staged).unwrap();
        assert_eq!(store.size(&key).unwrap(), 5);
        fs::write(scratch.join("b.staged"), b"second!").unwrap();
        store.publish(&key, &scratch.join("b.staged")).unwrap();
        let mut text = String::new();
        store.open(&key).unwrap().read_to_string(&mut text).unwrap();
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
