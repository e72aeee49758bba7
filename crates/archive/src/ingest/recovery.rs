//! Finishing what a dead process left in staging.

use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::staging::{ContentHasher, staged_site};
use super::{Archive, IngestError, Origin, StagingEntry, Stored, wait_indexed};
use crate::part10;
use crate::uid::SopInstanceUid;

impl Archive {
    /// Finishes what dead processes left in staging: files never published
    /// (`.part` with one link) were never acknowledged and are deleted;
    /// published ones (two links in a local store, renamed `.published` for
    /// a remote one) and those whose PUT was under way (`.publishing`: the
    /// bucket may hold them) are verified again, published and indexed.
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
            // The recovered rows durable, and their staging links gone, before
            // the directory is.
            self.sync_index().await;
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
                Some("inflated" | crate::store::REBUILDABLE_EXTENSION | crate::objects::KEEP_EXTENSION) => {
                    let _ = fs::remove_file(&path);
                }
                Some("part" | super::publish::PUBLISHED_EXTENSION | super::publish::PUBLISHING_EXTENSION) => {
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
        // Durable as far as it matters: an acknowledged object's staging entry
        // was made durable before its acknowledgement, and it lies in the dead
        // process's directory, not in ours.
        let stored = self
            .verify_publish_index(path.to_owned(), StagingEntry::Durable, meta, header_len, dataset_len, hash, prior, &origin, None)
            .await?;
        wait_indexed(stored).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::db::Durability;
    use crate::ingest::test_objects::ct_dataset;
    use crate::part10::FileMeta;
    use crate::sites::NewSite;
    use crate::{ArchiveConfig, Outcome};

    fn staged(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for process in fs::read_dir(dir.join("staging")).unwrap().flatten() {
            for file in fs::read_dir(process.path()).unwrap().flatten() {
                if file.path().extension().is_some_and(|e| e == "part") {
                    out.push(file.path());
                }
            }
        }
        out
    }

    /// An index row is committed without its own fsync, so the object's
    /// staging link stays until a sync point; a process that dies in between
    /// leaves the link, and the next start finds the row already there and
    /// only removes it.
    #[tokio::test(flavor = "multi_thread")]
    async fn staging_links_outlive_the_commit_until_a_sync_point() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            |data_dir: PathBuf| ArchiveConfig { data_dir, database_url: None, durability: Durability::Full, storage: Default::default() };
        let source = dir.path().join("in.dcm");
        let meta = FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.4.5".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: None,
        };
        let mut bytes = part10::encode_header(&meta);
        bytes.extend(ct_dataset("1.2.3.4.5"));
        fs::write(&source, &bytes).unwrap();

        let live = dir.path().join("live");
        let archive = Archive::open(&config(live.clone())).await.unwrap();
        let site =
            archive.database().add_site(&NewSite { name: "县医院".into(), ae_titles: vec!["CT1".into()], networks: vec![] }).await.unwrap();
        let origin = Origin { site_id: site.id, calling_ae: None };
        let stored = archive.import_file(&source, &origin).await.unwrap();
        assert_eq!(stored.outcome, Outcome::Stored);
        assert_eq!(archive.database().count_instances().await.unwrap(), 1, "the row is committed and visible");
        assert_eq!(staged(&live).len(), 1, "the staging link waits for the sync point");

        // The state a kill -9 would leave now: copied with its hard links.
        let crashed = dir.path().join("crashed");
        let copied = std::process::Command::new("cp").arg("-a").arg(&live).arg(&crashed).status().unwrap();
        assert!(copied.success());

        archive.sync_index().await;
        assert!(staged(&live).is_empty(), "a sync point removes the links of durable rows");

        let restarted = Archive::open(&config(crashed.clone())).await.unwrap();
        assert!(staged(&crashed).is_empty(), "recovery finished the link: {:?}", staged(&crashed));
        assert_eq!(restarted.database().count_instances().await.unwrap(), 1);
        let versions = restarted.database().versions_of(&SopInstanceUid::parse("1.2.3.4.5").unwrap()).await.unwrap();
        assert_eq!(versions.len(), 1, "recovery saw the committed row and stored no second version");
        let kept = fs::read(crashed.join("objects").join(&versions[0].object_key)).unwrap();
        assert_eq!(kept, bytes);
    }

    /// Files made ahead for a sender and never used are empty, with one
    /// link: the next start deletes them and indexes nothing; so too a
    /// rebuildable object (a thumbnail) caught half-written.
    #[tokio::test(flavor = "multi_thread")]
    async fn staging_files_made_ahead_and_unused_are_removed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            |data_dir: PathBuf| ArchiveConfig { data_dir, database_url: None, durability: Durability::Full, storage: Default::default() };
        let live = dir.path().join("live");
        let archive = Archive::open(&config(live.clone())).await.unwrap();
        archive.prepare_site(3);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while staged(&live).is_empty() {
            assert!(std::time::Instant::now() < deadline, "no staging files were made ahead");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let crashed = dir.path().join("crashed");
        assert!(std::process::Command::new("cp").arg("-a").arg(&live).arg(&crashed).status().unwrap().success());
        let made = staged(&crashed);
        assert!(made.iter().all(|p| fs::metadata(p).unwrap().len() == 0 && staged_site(p) == Some(3)), "{made:?}");
        // A thumbnail the dead process was writing when it died.
        let half_written = made[0].with_file_name("0123456789abcdef.rebuildable");
        fs::write(&half_written, b"\xff\xd8 half a JPEG").unwrap();

        let restarted = Archive::open(&config(crashed.clone())).await.unwrap();
        let left: Vec<_> = made.iter().filter(|p| p.exists()).collect();
        assert!(left.is_empty(), "unused staging files survived recovery: {left:?}");
        assert!(!half_written.exists(), "a half-written rebuildable object survived recovery");
        assert!(!made[0].parent().unwrap().exists(), "the dead process's staging directory is gone");
        assert_eq!(restarted.database().count_instances().await.unwrap(), 0);
    }

    /// On a bucket, a published staging file is marked by its name
    /// (`.published`), not by a second link: a dead process's marked file is
    /// indexed at the next start, as is one whose PUT was under way
    /// (`.publishing`); its unmarked `.part` (never acknowledged) is
    /// deleted; objects read back and deduplicate through the bucket.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_archive_on_a_bucket_stores_reads_and_recovers() {
        let Some(server) = telediag_test_servers::S3Server::start() else { return };
        server.create_bucket("archive");
        let storage = crate::ingest::Storage::S3(crate::store::S3Config {
            endpoint: Some(server.endpoint()),
            bucket: "archive".into(),
            access_key_id: Some("telediag".into()),
            secret_access_key: Some("telediag-secret".into()),
            allow_http: true,
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let config =
            |data_dir: PathBuf| ArchiveConfig { data_dir, database_url: None, durability: Durability::Full, storage: storage.clone() };
        let part10_of = |sop: &str| {
            let mut bytes = part10::encode_header(&crate::ingest::test_objects::ct_meta(sop));
            bytes.extend(ct_dataset(sop));
            bytes
        };

        let live = dir.path().join("live");
        let archive = Archive::open(&config(live.clone())).await.unwrap();
        let site =
            archive.database().add_site(&NewSite { name: "县医院".into(), ae_titles: vec!["CT1".into()], networks: vec![] }).await.unwrap();
        let origin = Origin { site_id: site.id, calling_ae: None };
        let stored = archive.import_bytes(part10_of("1.2.3.4.5"), &origin).await.unwrap();
        assert_eq!(stored.outcome, Outcome::Stored);
        assert!(!live.join("objects").exists(), "nothing is kept on the local disk");
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut archive.read_object(&stored.object_key).unwrap(), &mut read).unwrap();
        assert_eq!(read, part10_of("1.2.3.4.5"));
        let again = archive.import_bytes(part10_of("1.2.3.4.5"), &origin).await.unwrap();
        assert_eq!(again.outcome, Outcome::Duplicate, "compared with the bucket's copy");
        archive.wait_idle().await;
        drop(archive);

        // What a process killed after two PUTs and before their rows leaves:
        // one object acknowledged (marked), one still arriving (unmarked),
        // and one whose PUT had not answered (the bucket may hold it).
        let dead = live.join("staging/p1-dead");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join(format!("s{}-0001.published", site.id)), part10_of("1.2.3.4.6")).unwrap();
        fs::write(dead.join(format!("s{}-0002.part", site.id)), &part10_of("1.2.3.4.7")[..300]).unwrap();
        fs::write(dead.join(format!("s{}-0003.publishing", site.id)), part10_of("1.2.3.4.8")).unwrap();

        let restarted = Archive::open(&config(live.clone())).await.unwrap();
        assert!(!dead.exists(), "the dead process's staging is finished and gone");
        assert_eq!(restarted.database().count_instances().await.unwrap(), 3);
        assert_eq!(restarted.database().versions_of(&SopInstanceUid::parse("1.2.3.4.8").unwrap()).await.unwrap().len(), 1);
        let versions = restarted.database().versions_of(&SopInstanceUid::parse("1.2.3.4.6").unwrap()).await.unwrap();
        assert_eq!(versions.len(), 1);
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut restarted.read_object(&versions[0].object_key).unwrap(), &mut read).unwrap();
        assert_eq!(read, part10_of("1.2.3.4.6"));
        assert!(restarted.database().versions_of(&SopInstanceUid::parse("1.2.3.4.7").unwrap()).await.unwrap().is_empty());
    }
}
