//! Step 3: verify a staged object, find out whether it is a duplicate, and
//! publish it; and the index row it gets.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dicom_core::Tag;

use super::ownership::{Collision, UidKind};
use super::{IngestError, Origin};
use crate::db::now_ms;
use crate::index::{InstanceRecord, PatientAttributes, SeriesAttributes, StoredVersion, StudyAttributes};
use crate::layout::original_key;
use crate::part10::{self, FileMeta};
use crate::scan::{self, ScannedDataset};
use crate::store::BlobStore;
use crate::uid::{SeriesUid, SopClassUid, SopInstanceUid, StudyUid, TransferSyntaxUid};

/// A staging file whose object a remote store holds (renamed from `.part`
/// once the PUT succeeded): recovery indexes it. A local store's staging
/// file says so by its second link instead.
pub(crate) const PUBLISHED_EXTENSION: &str = "published";
/// A verified staging file being PUT to a remote store. A bucket may hold
/// the object before its PUT has answered, so a process killed meanwhile
/// would leave it there unindexed; recovery publishes such a file again
/// and indexes it, as it does a published one.
pub(crate) const PUBLISHING_EXTENSION: &str = "publishing";

/// A verified, published (or duplicate) object, ready to index.
pub(super) struct Published {
    pub(super) staged: PathBuf,
    pub(super) size: u64,
    pub(super) hash: String,
    pub(super) found: ScannedDataset,
    pub(super) study_uid: StudyUid,
    pub(super) series_uid: SeriesUid,
    pub(super) sop_instance_uid: SopInstanceUid,
    pub(super) sop_class_uid: SopClassUid,
    pub(super) transfer_syntax_uid: TransferSyntaxUid,
    pub(super) key: String,
    /// `None` for a duplicate of a stored version.
    pub(super) version: Option<i64>,
}

/// Whether the dataset of the staged file equals that of a stored object.
fn same_dataset(store: &dyn BlobStore, key: &str, staged: &Path, staged_header_len: u64) -> io::Result<bool> {
    let Ok(key) = crate::store::ObjectKey::new(key) else {
        return Ok(false);
    };
    let mut stored = match store.reader(&key) {
        Ok(reader) => reader,
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

/// Step 3, on a blocking thread: scan, compare UIDs, check that the sending
/// site owns them (`site_id`: the instance through its stored versions, the
/// study and series through `check_owner`), deduplicate, publish. Removes
/// the staged file on any failure and for duplicates.
#[allow(clippy::too_many_arguments)]
pub(super) fn verify_and_publish(
    store: &dyn BlobStore,
    mut staged: PathBuf,
    meta: FileMeta,
    header_len: u64,
    dataset_len: u64,
    hash: String,
    versions: &[StoredVersion],
    site_id: i64,
    check_owner: impl FnOnce(&StudyUid, &SeriesUid) -> Result<(), IngestError>,
) -> Result<Published, IngestError> {
    let remove = |e: IngestError| {
        let _ = fs::remove_file(&staged);
        e
    };
    let found = scan::scan_file(&staged, &meta.transfer_syntax_uid, header_len, dataset_len).map_err(|e| remove(e.into()))?;
    for (tag, what, announced) in
        [(Tag(0x0008, 0x0016), "SOP Class UID", &meta.sop_class_uid), (Tag(0x0008, 0x0018), "SOP Instance UID", &meta.sop_instance_uid)]
    {
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
    // New versions of an instance come only from the site that owns it; a
    // resend of its very bytes from elsewhere is refused too, not answered
    // "duplicate", which would confirm what another hospital holds.
    if let Some(owner) = versions.iter().map(|v| v.site_id).find(|&owner| owner != site_id) {
        let collision = Collision { kind: UidKind::Instance, uid: sop_instance_uid.to_string(), owner_site_id: owner };
        return Err(remove(IngestError::UidHeldElsewhere(collision)));
    }
    check_owner(&study_uid, &series_uid).map_err(remove)?;
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
            let remote = !store.publication_links_staging();
            if remote {
                let publishing = staged.with_extension(PUBLISHING_EXTENSION);
                fs::rename(&staged, &publishing).map_err(|e| remove(e.into()))?;
                staged = publishing;
            }
            if let Err(e) = store.publish(&key, &staged) {
                let _ = store.delete(&key);
                let _ = fs::remove_file(&staged);
                return Err(e.into());
            }
            if remote {
                // Recovery's sign that this staging file was published.
                let marked = staged.with_extension(PUBLISHED_EXTENSION);
                if let Err(e) = fs::rename(&staged, &marked) {
                    let _ = store.delete(&key);
                    let _ = fs::remove_file(&staged);
                    return Err(e.into());
                }
                staged = marked;
            }
            (key.to_string(), Some(version))
        }
    };
    Ok(Published { staged, size, hash, found, study_uid, series_uid, sop_instance_uid, sop_class_uid, transfer_syntax_uid, key, version })
}

/// The index row of a published object.
pub(super) fn index_record(p: &Published, version: i64, origin: &Origin) -> InstanceRecord {
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
            study_id: found.text(Tag(0x0020, 0x0010)),
        },
        series: SeriesAttributes {
            modality: found.text(Tag(0x0008, 0x0060)),
            body_part: found.text(Tag(0x0018, 0x0015)),
            description: found.text(Tag(0x0008, 0x103E)),
            series_number: number(Tag(0x0020, 0x0011)),
            performed_start_date: found.text(Tag(0x0040, 0x0244)),
            performed_start_time: found.text(Tag(0x0040, 0x0245)),
        },
        instance_number: number(Tag(0x0020, 0x0013)),
        number_of_frames: number(Tag(0x0028, 0x0008)),
        rows: found.unsigned_short(Tag(0x0028, 0x0010)).map(i64::from),
        columns: found.unsigned_short(Tag(0x0028, 0x0011)).map(i64::from),
        bits_allocated: found.unsigned_short(Tag(0x0028, 0x0100)).map(i64::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LocalStore, ObjectKey};

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
