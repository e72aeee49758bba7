//! Objects by key: how everything outside the archive reads and writes the
//! object store.
//!
//! Callers name an object by its key and never by a path, so the store
//! behind it can be a directory or a bucket. Received DICOM objects arrive
//! through the ingest protocol (`ingest`); what else the centre keeps — the
//! pipeline's derived images and analyses, signed reports, the original
//! files of a converted ECG — is written here:
//!
//! - [`Archive::keep`] for records (signed reports, original uploads):
//!   durable when it returns, written through this process's staging
//!   directory as `<random>.keep`, which recovery deletes if the process dies
//!   before the caller was told "kept";
//! - [`Archive::put_rebuildable`] for what can be made again (thumbnails,
//!   previews, measurements): atomic, not fsynced.
//!
//! Reads are [`Archive::read_object`] (a reader that seeks, for large objects
//! read in ranges) and [`Archive::read_small_object`] (whole, bounded).

use std::fs;

use crate::Archive;
use crate::store::{ObjectKey, ObjectReader, StoreError};

/// The extension of a record being written through staging by
/// [`Archive::keep`]; recovery deletes such files.
pub(crate) const KEEP_EXTENSION: &str = "keep";

/// Reads of whole objects stop at this size: derived images, analyses and
/// signed reports are far smaller; anything larger is read in ranges.
pub const SMALL_OBJECT_LIMIT: u64 = 64 * 1024 * 1024;

impl Archive {
    /// Opens a stored object for reading, wherever the store keeps it: a
    /// reader that seeks, so callers read the byte ranges they need.
    /// Blocking: call it on a blocking thread.
    pub fn read_object(&self, key: &str) -> Result<ObjectReader, StoreError> {
        self.blob_store().reader(&ObjectKey::new(key)?)
    }

    /// Reads a whole object of at most [`SMALL_OBJECT_LIMIT`] bytes.
    pub async fn read_small_object(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let key = ObjectKey::new(key)?;
        let store = self.blob_store().clone();
        blocking(key.to_string(), move || {
            use std::io::{Read, Seek, SeekFrom};
            let io_err = |source| StoreError::Io { key: key.to_string(), source };
            // One open: the reader knows the size (a bucket's reader asked
            // for it when it opened), so no second request is made for it.
            let mut reader = store.reader(&key)?;
            let size = reader.seek(SeekFrom::End(0)).and_then(|size| reader.seek(SeekFrom::Start(0)).map(|_| size)).map_err(io_err)?;
            if size > SMALL_OBJECT_LIMIT {
                return Err(StoreError::TooLarge { key: key.to_string(), size, limit: SMALL_OBJECT_LIMIT });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut bytes).map_err(io_err)?;
            Ok(bytes)
        })
        .await
    }

    /// Keeps `bytes` durably under `key`, replacing what was there: when this
    /// returns they survive a crash or a power cut.
    pub async fn keep(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError> {
        let store = self.blob_store().clone();
        let staged = self.staging_dir().join(format!("{:032x}.{KEEP_EXTENSION}", rand::random::<u128>()));
        let key = key.clone();
        blocking(key.to_string(), move || {
            let io_err = |source| StoreError::Io { key: key.to_string(), source };
            let written = (|| {
                use std::io::Write;
                let mut file = fs::File::create(&staged)?;
                file.write_all(&bytes)?;
                file.sync_data()
            })()
            .map_err(io_err);
            let published = written.and_then(|()| store.publish(&key, &staged));
            let _ = fs::remove_file(&staged);
            published
        })
        .await
    }

    /// Writes `bytes` under `key` atomically but without fsync: for objects
    /// the pipeline makes again if they are lost.
    pub async fn put_rebuildable(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError> {
        let store = self.blob_store().clone();
        let key = key.clone();
        blocking(key.to_string(), move || store.put_rebuildable(&key, &bytes)).await
    }
}

/// Runs a blocking store call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(key: String, call: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| StoreError::Io { key, source: std::io::Error::other(format!("the store task failed: {e}")) })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArchiveConfig, Durability};

    async fn archive(dir: &std::path::Path) -> Archive {
        Archive::open(&ArchiveConfig {
            data_dir: dir.to_owned(),
            database_url: None,
            durability: Durability::Full,
            storage: Default::default(),
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn kept_and_rebuildable_objects_read_back_and_leave_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(dir.path()).await;
        let report = ObjectKey::new("reports/site-1/request-1/v1-final-abc.pdf").unwrap();
        archive.keep(&report, b"%PDF-1.7 signed".to_vec()).await.unwrap();
        archive.keep(&report, b"%PDF-1.7 signed again".to_vec()).await.unwrap();
        assert_eq!(archive.read_small_object(report.as_str()).await.unwrap(), b"%PDF-1.7 signed again");

        let thumb = ObjectKey::new("derived/1.2/1.2.3/1.2.3.4.thumbnail.jpg").unwrap();
        archive.put_rebuildable(&thumb, b"jpeg".to_vec()).await.unwrap();
        assert_eq!(archive.read_small_object(thumb.as_str()).await.unwrap(), b"jpeg");

        assert!(matches!(archive.read_small_object("derived/missing.jpg").await, Err(StoreError::NotFound { .. })));
        assert!(matches!(archive.read_small_object("../etc/passwd").await, Err(StoreError::InvalidKey { .. })));
        let leftovers: Vec<_> = fs::read_dir(archive.staging_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".keep") || name.ends_with(".rebuildable"))
            .collect();
        assert!(leftovers.is_empty(), "left in staging: {leftovers:?}");
    }

    /// A `.keep` file left by a process that died before the caller heard
    /// "kept" is deleted by the next start.
    #[tokio::test(flavor = "multi_thread")]
    async fn recovery_deletes_an_unfinished_keep() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("staging/p1-dead");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join("0123.keep"), b"half a report").unwrap();
        let _archive = archive(dir.path()).await;
        assert!(!dead.join("0123.keep").exists());
    }
}
