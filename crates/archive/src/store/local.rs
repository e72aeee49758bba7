//! Objects as files under a root directory: the embedded default.
//!
//! An operator can find `originals/<study>/<series>/<sop>.dcm` by hand.
//! Publishing is a hard link from the staging directory (same filesystem),
//! then an fsync of the file and of the target directory, in that order so
//! that one journal commit carries the data, the inode and the new name.
//! Objects published into one directory at once share its fsync
//! (`dir_sync.rs`). The staging entry stays (a second link to the same
//! inode) until the object's index row is durable: a staging file with two
//! links is what crash recovery finishes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{BlobStore, ObjectKey, ObjectReader, StoreError};
use crate::dir_sync::DirSyncs;

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Callers that fsync one directory at once share the fsync:
    /// publications into one series directory, and the archive's staging
    /// directory (`with_directory_syncs`).
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

    /// Shares `dir_syncs` with the archive's staging directory, whose fsyncs
    /// are grouped the same way.
    pub(crate) fn with_directory_syncs(mut self, dir_syncs: Arc<DirSyncs>) -> Self {
        self.dir_syncs = dir_syncs;
        self
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

    fn reader(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        let file = File::open(self.path_of(key)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { key: key.to_string() },
            _ => StoreError::Io { key: key.to_string(), source },
        })?;
        Ok(Box::new(file))
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

    fn publication_links_staging(&self) -> bool {
        true
    }
}
