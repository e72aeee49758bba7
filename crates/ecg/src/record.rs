//! The one in-memory shape every reader produces and every analysis consumes.
//!
//! Samples are held in microvolts as `f32`: every cart format stores integers
//! times a step of a few microvolts (2.5, 4.88, 5), which `f32` represents
//! exactly, so the same ECG read from SCP-ECG, HL7 aECG or DICOM compares
//! equal sample for sample.

use serde::Serialize;

/// A resting ECG as read from a file: leads of equal length at one rate,
/// who it belongs to, and what the recording device itself said about it.
#[derive(Debug, Clone, Serialize)]
pub struct EcgRecord {
    /// The format the record was read from.
    pub format: SourceFormat,
    pub sampling_rate_hz: f64,
    /// Leads in the standard order (I, II, III, aVR, aVL, aVF, V1–V6), then
    /// any others (Frank X/Y/Z, MIT-BIH's MLII) in file order.
    pub leads: Vec<Lead>,
    pub patient: Patient,
    /// Acquisition date and time as `YYYY-MM-DDTHH:MM:SS` (or just the date).
    pub acquired: Option<String>,
    pub device: DeviceReport,
    /// Things the reader should know that do not make the record unusable,
    /// e.g. "low sampling rate: 200 Hz".
    pub warnings: Vec<String>,
    /// The format the cart sent, when this is the centre's DICOM conversion
    /// of it: the ECG doctor should see "GE MUSE XML", not the archive's
    /// "DICOM waveform". Read from the Series Description the conversion
    /// writes ([`SourceFormat::conversion_note`]).
    pub received_as: Option<SourceFormat>,
}

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    DicomWaveform,
    HL7Aecg,
    ScpEcg,
    Wfdb,
    /// GE MUSE `<RestingECG>` export (MAC-series carts through MUSE).
    GeMuse,
    /// Philips `<restingecgdata>` (PageWriter TC carts, TraceMasterVue).
    PhilipsXml,
    /// GE CardioSoft `<CardiologyXML>`.
    #[serde(rename = "ge-cardiosoft")]
    GeCardioSoft,
}

impl SourceFormat {
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::DicomWaveform => "DICOM waveform",
            SourceFormat::HL7Aecg => "HL7 aECG",
            SourceFormat::ScpEcg => "SCP-ECG",
            SourceFormat::Wfdb => "WFDB",
            SourceFormat::GeMuse => "GE MUSE XML",
            SourceFormat::PhilipsXml => "Philips XML",
            SourceFormat::GeCardioSoft => "GE CardioSoft XML",
        }
    }

    /// The Series Description of the centre's DICOM conversion of a file
    /// received in this format.
    pub fn conversion_note(self) -> String {
        format!("{CONVERTED_FROM}{}", self.name())
    }

    /// The format a conversion note names; `None` for any other text, and
    /// for DICOM itself, which is never converted.
    pub fn converted_from(series_description: &str) -> Option<SourceFormat> {
        let name = series_description.trim().strip_prefix(CONVERTED_FROM)?;
        [
            SourceFormat::HL7Aecg,
            SourceFormat::ScpEcg,
            SourceFormat::Wfdb,
            SourceFormat::GeMuse,
            SourceFormat::PhilipsXml,
            SourceFormat::GeCardioSoft,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

const CONVERTED_FROM: &str = "Converted from ";

/// One lead's samples, in microvolts, with its normalised label.
#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    /// `I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1`..`V6`, or the file's own
    /// label when it is none of those.
    pub label: String,
    #[serde(skip)]
    pub samples_uv: Vec<f32>,
    /// True when this lead was computed from others (III, aVR, aVL, aVF from
    /// I and II when a cart stores only 8 leads).
    pub derived: bool,
}

/// Patient data as the file carries it; any field may be missing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Patient {
    /// Family and given names as one display string (DICOM `^` replaced).
    pub name: Option<String>,
    pub id: Option<String>,
    /// `M`, `F` or `O`.
    pub sex: Option<String>,
    /// `YYYYMMDD`.
    pub birth_date: Option<String>,
    pub age_years: Option<u32>,
}

/// What the recording device measured and concluded, kept beside ours.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceReport {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub measurements: DeviceMeasurements,
    /// Interpretation statements, in the device's order and language.
    pub statements: Vec<String>,
    /// Filters the device says it applied, as free text.
    pub filters: Option<String>,
    /// Where the device found each QRS complex, in milliseconds from the
    /// strip's start, when the file says (MUSE's `<QRSTimesTypes>`,
    /// CardioSoft's `<ArrhythmiaResults>`).
    pub qrs_times_ms: Vec<f64>,
    /// The device's own representative beat, when the file carries one
    /// (MUSE, Philips, CardioSoft): what its measurements were made on.
    pub median: Option<MedianBeat>,
}

/// A device's representative (median) beat per lead.
#[derive(Debug, Clone, Serialize)]
pub struct MedianBeat {
    pub sampling_rate_hz: f64,
    pub leads: Vec<Lead>,
}

/// Global measurements a device embedded (ms, degrees, beats per minute).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceMeasurements {
    pub hr_bpm: Option<f64>,
    pub rr_ms: Option<f64>,
    pub pr_ms: Option<f64>,
    pub p_ms: Option<f64>,
    pub qrs_ms: Option<f64>,
    pub qt_ms: Option<f64>,
    pub qtc_ms: Option<f64>,
    pub p_axis_deg: Option<f64>,
    pub qrs_axis_deg: Option<f64>,
    pub t_axis_deg: Option<f64>,
}

impl DeviceMeasurements {
    pub fn is_empty(&self) -> bool {
        *self == DeviceMeasurements::default()
    }
}

impl EcgRecord {
    /// Samples per lead (all leads have the same count).
    pub fn len(&self) -> usize {
        self.leads.first().map_or(0, |l| l.samples_uv.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn duration_s(&self) -> f64 {
        self.len() as f64 / self.sampling_rate_hz
    }

    /// The lead with this normalised label.
    pub fn lead(&self, label: &str) -> Option<&Lead> {
        self.leads.iter().find(|l| l.label == label)
    }
}

/// Why a file could not be read as an ECG. The message names the format and
/// says what was expected and what was found, for the HTTP 400 body.
#[derive(Debug, thiserror::Error)]
pub enum EcgError {
    #[error("{format}: {reason}")]
    Invalid { format: &'static str, reason: String },
    #[error("not an ECG this centre reads: {0}")]
    UnknownFormat(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl EcgError {
    pub(crate) fn invalid(format: SourceFormat, reason: impl Into<String>) -> EcgError {
        EcgError::Invalid { format: format.name(), reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversion_note_names_the_format_it_came_from_and_nothing_else_does() {
        for format in [SourceFormat::GeMuse, SourceFormat::PhilipsXml, SourceFormat::ScpEcg, SourceFormat::HL7Aecg] {
            assert_eq!(SourceFormat::converted_from(&format.conversion_note()), Some(format));
        }
        assert_eq!(SourceFormat::converted_from(&SourceFormat::DicomWaveform.conversion_note()), None);
        assert_eq!(SourceFormat::converted_from("Resting 12-lead ECG"), None);
        assert_eq!(SourceFormat::converted_from("Converted from a fax"), None);
    }
}
