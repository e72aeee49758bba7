//! STOW-RS: instances posted as `multipart/related; type="application/dicom"`
//! stored like C-STOREs, and the Store Instances Response (PS3.18 Annex I).
//!
//! Each part streams into the archive as it arrives — its Part 10 header
//! is read from the part's first bytes, then the dataset goes to staging
//! chunk by chunk — so a 2 GB upload holds a few hundred kilobytes of it
//! in memory, and every instance gets exactly the checks, durability and
//! ownership rules of a C-STORE (`Archive::begin` / `commit_into`). A bad
//! part fails alone: the response lists it with its Failure Reason and the
//! others are stored.

use bytes::Bytes;
use futures_util::Stream;
use telediag_archive::part10::{self, FileMeta};
use telediag_archive::{Archive, IngestError, Origin, StudyUid};

use crate::json::ObjectWriter;

/// STOW-RS Failure Reasons (PS3.18 Table 10.5.3-2, from PS3.4's status
/// codes) this service answers with.
mod failure {
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// A UID held for another site: "Refused: Not Authorized".
    pub const NOT_AUTHORIZED: u16 = 0x0124;
}

/// PS3.18 Table I.2-2 failure reasons (and PS3.7's "Refused: Not Authorized"
/// for a UID held by another site, an additional code as the table allows).
pub mod reason {
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Referenced SOP Class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Referenced Transfer Syntax not supported.
    pub const TRANSFER_SYNTAX_NOT_SUPPORTED: u16 = 0xC122;
}

/// What became of one posted instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// Where it was stored, or why it was not.
    pub result: Result<StoredAt, Failure>,
}

/// The study and series a stored instance is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAt {
    pub study: String,
    pub series: String,
}

/// Why an instance was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Failure Reason (0008,1197).
    pub reason: u16,
    /// For the log and the response's Warning header (never patient data).
    pub comment: String,
}

/// Why the request as a whole could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StowError {
    #[error("the multipart body cannot be read: {0}")]
    Multipart(#[from] multer::Error),
}

/// The most bytes of a part kept before its Part 10 header is complete
/// (the archive's own limit for the meta group is 64 KiB).
const HEADER_LIMIT: usize = 132 + 64 * 1024 + 12;

/// Stores every part of `body` (boundary `boundary`) for `origin`, into
/// `study` when the URL names one.
pub async fn store_parts<S, E>(
    archive: &Archive,
    origin: &Origin,
    study: Option<&StudyUid>,
    boundary: &str,
    body: S,
) -> Result<Vec<Outcome>, StowError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let mut multipart = multer::Multipart::new(body, boundary.to_owned());
    let mut outcomes = Vec::new();
    while let Some(mut part) = multipart.next_field().await? {
        let content_type = part.content_type().map(|m| m.essence_str().to_owned());
        let outcome = match content_type {
            Some(content_type) if content_type != "application/dicom" => Outcome {
                sop_class_uid: String::new(),
                sop_instance_uid: String::new(),
                result: Err(Failure {
                    reason: failure::CANNOT_UNDERSTAND,
                    comment: format!("a part of type {content_type} is not a DICOM instance (application/dicom)"),
                }),
            },
            _ => store_part(archive, origin, study, &mut part).await?,
        };
        // What a refused part still holds is read and dropped.
        while part.chunk().await?.is_some() {}
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn store_part(
    archive: &Archive,
    origin: &Origin,
    study: Option<&StudyUid>,
    part: &mut multer::Field<'static>,
) -> Result<Outcome, StowError> {
    // The Part 10 header, from the part's first bytes: read up to the
    // most a meta group may take (or the whole part, if smaller), then
    // parsed once — a part arriving a byte at a time costs no more.
    let mut head: Vec<u8> = Vec::new();
    while head.len() < HEADER_LIMIT {
        match part.chunk().await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => break,
        }
    }
    // Part 10 with its 128-byte preamble, or without it (pydicom writes
    // datasets it did not read from a file so): "DICM" first.
    let header = if head.starts_with(b"DICM") {
        part10::read_header([&[0u8; 128][..], &head[..]].concat().as_slice()).map(|(meta, len)| (meta, len - 128))
    } else {
        part10::read_header(&head[..])
    };
    let (meta, header_len) = match header {
        Ok(found) => found,
        Err(reason) => return Ok(failed(None, failure::CANNOT_UNDERSTAND, format!("not a DICOM Part 10 instance: {reason}"))),
    };
    let meta = FileMeta { source_ae_title: None, ..meta };
    if telediag_archive::sop_classes::name_of(meta.sop_class_uid.trim_end_matches('\0')).is_none() {
        let comment = format!("SOP Class {} is not a storage SOP class this archive accepts", meta.sop_class_uid);
        return Ok(failed(Some(&meta), reason::SOP_CLASS_NOT_SUPPORTED, comment));
    }
    if telediag_archive::scan::is_deflated(meta.transfer_syntax_uid.trim_end_matches('\0')).is_err() {
        let comment = format!("transfer syntax {} cannot be read by this archive", meta.transfer_syntax_uid);
        return Ok(failed(Some(&meta), reason::TRANSFER_SYNTAX_NOT_SUPPORTED, comment));
    }
    let mut incoming = match archive.begin(meta.clone(), origin.site_id) {
        Ok(incoming) => incoming,
        Err(e) => return Ok(failed(Some(&meta), failure_reason(&e), e.to_string())),
    };
    let mut write_failed = None;
    let mut write = |bytes: &[u8], incoming: &mut telediag_archive::IncomingObject| {
        if write_failed.is_none()
            && let Err(e) = incoming.write(bytes)
        {
            write_failed = Some(e.to_string());
        }
    };
    write(head.get(header_len as usize..).unwrap_or_default(), &mut incoming);
    drop(head);
    while let Some(chunk) = part.chunk().await? {
        write(&chunk, &mut incoming);
    }
    if let Some(e) = write_failed {
        return Ok(failed(Some(&meta), failure::OUT_OF_RESOURCES, format!("storage failed: {e}")));
    }
    Ok(match archive.commit_into(incoming, origin, study).await {
        Ok(stored) => {
            let at = StoredAt { study: stored.study_uid.to_string(), series: stored.series_uid.to_string() };
            let sop_instance_uid = stored.sop_instance_uid.to_string();
            // Durable now; the answer waits for the index row too, so the
            // Retrieve URLs it gives work at once (a C-STORE sender, who
            // retrieves nothing, does not wait for it).
            if let Err(e) = stored.indexed.wait().await {
                tracing::error!(sop_instance_uid = %sop_instance_uid, error = %e, "a STOW-RS instance is stored but not yet indexed");
            }
            Outcome { sop_class_uid: meta.sop_class_uid.trim_end_matches('\0').to_owned(), sop_instance_uid, result: Ok(at) }
        }
        Err(e) => failed(Some(&meta), failure_reason(&e), e.to_string()),
    })
}

/// The Failure Reason for an instance the archive refused.
fn failure_reason(error: &IngestError) -> u16 {
    match error {
        IngestError::Mismatch { .. } => failure::DATASET_DOES_NOT_MATCH_SOP_CLASS,
        IngestError::OutOfResources(_) => failure::OUT_OF_RESOURCES,
        IngestError::UidHeldElsewhere(_) => failure::NOT_AUTHORIZED,
        _ => failure::CANNOT_UNDERSTAND,
    }
}

fn failed(meta: Option<&FileMeta>, reason: u16, comment: String) -> Outcome {
    Outcome {
        sop_class_uid: meta.map(|m| m.sop_class_uid.trim_end_matches('\0').to_owned()).unwrap_or_default(),
        sop_instance_uid: meta.map(|m| m.sop_instance_uid.trim_end_matches('\0').to_owned()).unwrap_or_default(),
        result: Err(Failure { reason, comment }),
    }
}

/// The HTTP status of a STOW response (PS3.18 Table 10.5.3-1): 200 when
/// every instance was stored, 409 when none was, 202 otherwise.
pub fn http_status(outcomes: &[Outcome]) -> u16 {
    let stored = outcomes.iter().filter(|o| o.result.is_ok()).count();
    if outcomes.is_empty() || stored == 0 {
        409
    } else if stored == outcomes.len() {
        200
    } else {
        202
    }
}

/// The Store Instances Response Module as DICOM JSON. `base` is the
/// DICOMweb root; Retrieve URL is the study's when the request named one
/// (or all stored instances share one).
pub fn response(outcomes: &[Outcome], base: &str, study: Option<&str>) -> Vec<u8> {
    let mut stored_studies: Vec<&str> = outcomes.iter().filter_map(|o| o.result.as_ref().ok().map(|at| at.study.as_str())).collect();
    stored_studies.dedup();
    let retrieve_study = study.or(match stored_studies.as_slice() {
        [one] => Some(*one),
        _ => None,
    });
    let mut w = ObjectWriter::new();
    let retrieve = retrieve_study.map(|s| format!("{base}/studies/{s}")).unwrap_or_default();
    w.text(0x0008_1190, "UR", &retrieve);
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if !failed.is_empty() {
        w.begin_sequence(0x0008_1198);
        for (i, o) in failed.iter().enumerate() {
            if i > 0 {
                w.separator();
            }
            w.open_object();
            let failure = o.result.as_ref().expect_err("failed");
            w.text(0x0008_1150, "UI", &o.sop_class_uid);
            w.text(0x0008_1155, "UI", &o.sop_instance_uid);
            w.integers(0x0008_1197, "US", &[i64::from(failure.reason)]);
            w.close_object();
        }
        w.end_sequence();
    }
    let stored: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
    if !stored.is_empty() {
        w.begin_sequence(0x0008_1199);
        for (i, o) in stored.iter().enumerate() {
            if i > 0 {
                w.separator();
            }
            w.open_object();
            let at = o.result.as_ref().expect("stored");
            w.text(0x0008_1150, "UI", &o.sop_class_uid);
            w.text(0x0008_1155, "UI", &o.sop_instance_uid);
            w.text(0x0008_1190, "UR", &format!("{base}/studies/{}/series/{}/instances/{}", at.study, at.series, o.sop_instance_uid));
            w.close_object();
        }
        w.end_sequence();
    }
    w.finish()
}
