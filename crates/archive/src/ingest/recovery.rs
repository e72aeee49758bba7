//! Finishing what a dead process left in staging.

use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::staging::{ContentHasher, staged_site};
use super::{Archive, IngestError, Origin, Stored, wait_indexed};
use crate::part10;
use crate::uid::SopInstanceUid;

impl Archive {
    /// Finishes what dead processes left in staging: files never published
    /// (one link) were never acknowledged and are deleted; published ones (two
    /// links) are verified again and indexed.
    /// A staging directory whose lock is still held belongs to a live process
    /// and is left alone.
    pub(super) async fn recover(&self, staging_root: &Path) {
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
