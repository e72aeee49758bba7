//! ECG intake shared by `POST /api/ecg` and `telediag ecg import`: read the
//! upload (any supported format), refuse it with the reason if it is not a
//! usable ECG, keep non-DICOM files exactly as received, and archive a
//! canonical DICOM ECG made from them like an object pushed by C-STORE.
//!
//! Nothing is stored until the whole upload has been read and converted,
//! so a broken file leaves nothing behind.

use telediag_archive::store::ObjectKey;
use telediag_archive::{Archive, IngestError, Origin, Outcome};
use telediag_ecg::dicom_writer::{Provenance, to_dicom};
use telediag_ecg::{EcgError, SourceFormat};

/// One uploaded file: its name (for WFDB, how the header refers to it).
pub struct UploadedFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What became of an upload.
#[derive(Debug, serde::Serialize)]
pub struct EcgImported {
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    /// `stored`, `duplicate` or `new-version`.
    pub outcome: &'static str,
    /// The format received.
    pub format: &'static str,
    /// True when a DICOM ECG was made from a non-DICOM file.
    pub converted: bool,
    /// Object keys of the files kept exactly as received (non-DICOM input).
    pub originals: Vec<String>,
    pub leads: usize,
    pub sampling_rate_hz: f64,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EcgImportError {
    /// The upload is not a usable ECG (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The archive could not take it (HTTP 503 when out of resources).
    #[error("{0}")]
    Archive(#[from] IngestError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<EcgError> for EcgImportError {
    fn from(e: EcgError) -> Self {
        EcgImportError::Invalid(e.to_string())
    }
}

/// Reads `files` as one ECG and archives it for `origin`'s site.
pub async fn import_ecg(
    archive: &Archive,
    origin: &Origin,
    institution: Option<String>,
    files: Vec<UploadedFile>,
) -> Result<EcgImported, EcgImportError> {
    let (record, dicom, sources) = tokio::task::spawn_blocking(move || -> Result<_, EcgImportError> {
        let record = read_upload(&files)?;
        if record.format == SourceFormat::DicomWaveform {
            let single = files.into_iter().next().expect("read_upload saw one file");
            return Ok((record, single.bytes, Vec::new()));
        }
        // Stable UIDs from every byte received (a WFDB header and its data).
        let mut all = Vec::new();
        for f in &files {
            all.extend_from_slice(f.name.as_bytes());
            all.extend_from_slice(&f.bytes);
        }
        let mut provenance = Provenance::from_source(&all);
        provenance.institution = institution;
        let dicom = to_dicom(&record, &provenance)?;
        Ok((record, dicom, files))
    })
    .await
    .map_err(|e| EcgImportError::Invalid(format!("reading the upload failed: {e}")))??;

    let stored = archive.import_bytes(dicom, origin).await?;
    let sop = stored.sop_instance_uid.to_string();

    let mut originals = Vec::new();
    for source in sources {
        let name: String =
            source.name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
        let key = ObjectKey::new(format!("received/{sop}/{name}"))
            .map_err(|e| EcgImportError::Invalid(format!("file name {:?}: {e}", source.name)))?;
        archive.keep(&key, source.bytes).await.map_err(|e| IngestError::OutOfResources(format!("keeping the original: {e}")))?;
        originals.push(key.to_string());
    }
    Ok(EcgImported {
        sop_instance_uid: sop,
        study_instance_uid: stored.study_uid.to_string(),
        outcome: match stored.outcome {
            Outcome::Stored => "stored",
            Outcome::Duplicate => "duplicate",
            Outcome::NewVersion(_) => "new-version",
        },
        format: record.format.name(),
        converted: record.format != SourceFormat::DicomWaveform,
        originals,
        leads: record.leads.len(),
        sampling_rate_hz: record.sampling_rate_hz,
        warnings: record.warnings,
    })
}

/// One file (DICOM, aECG, SCP-ECG) or a WFDB header with its signal files.
fn read_upload(files: &[UploadedFile]) -> Result<telediag_ecg::EcgRecord, EcgImportError> {
    if files.is_empty() {
        return Err(EcgImportError::Invalid("the upload holds no file".into()));
    }
    if let Some(header) = files.iter().find(|f| f.name.to_ascii_lowercase().ends_with(".hea")) {
        let text =
            std::str::from_utf8(&header.bytes).map_err(|_| EcgImportError::Invalid(format!("WFDB header {} is not text", header.name)))?;
        return Ok(telediag_ecg::read::wfdb::read(text, |name| {
            files.iter().find(|f| f.name == name).map(|f| f.bytes.clone()).ok_or_else(|| EcgError::Invalid {
                format: "WFDB",
                reason: format!("the header names signal file {name}, which the upload does not include"),
            })
        })?);
    }
    if files.len() > 1 {
        return Err(EcgImportError::Invalid(format!(
            "{} files uploaded; one ECG file (or a WFDB .hea with its .dat files) was expected",
            files.len()
        )));
    }
    let bytes = &files[0].bytes;
    // A DICOM upload is checked as ingest checks objects before dicom-object
    // parses it: that parser reserves each value's declared length first.
    // (check_bytes reads a file with or without its preamble.)
    if telediag_archive::scan::is_part10(bytes) {
        telediag_archive::scan::check_bytes(bytes).map_err(|e| EcgImportError::Invalid(format!("the DICOM file is malformed: {e}")))?;
    }
    Ok(telediag_ecg::read_bytes(bytes)?)
}
