//! Readers for the formats carts send, each producing an [`EcgRecord`].
//!
//! [`read_bytes`] recognises a single-file format by its first bytes, and
//! an XML format by its root element; WFDB needs its header and signal
//! files together ([`wfdb::read`] or [`read_path`]).

pub mod aecg;
pub mod cardiosoft;
pub mod dicom;
pub mod muse;
pub mod philips;
pub mod scp;
pub mod wfdb;
pub mod xml;

use std::path::Path;

use crate::record::{EcgError, EcgRecord};

/// Reads a DICOM waveform, SCP-ECG, HL7 aECG, GE MUSE, Philips or GE
/// CardioSoft file from memory.
pub fn read_bytes(bytes: &[u8]) -> Result<EcgRecord, EcgError> {
    match sniff(bytes) {
        Some(Kind::Dicom) => dicom::read(bytes),
        Some(Kind::Xml) => read_xml(bytes),
        Some(Kind::Scp) => scp::read(bytes),
        None => Err(EcgError::UnknownFormat(
            "expected DICOM (\"DICM\" at byte 128), SCP-ECG (\"SCPECG\" at byte 16) or an ECG XML (HL7 aECG, GE MUSE, Philips, GE CardioSoft)"
                .into(),
        )),
    }
}

/// An XML document, read by the reader its root element names.
fn read_xml(bytes: &[u8]) -> Result<EcgRecord, EcgError> {
    let text = xml::decode(bytes).map_err(|e| EcgError::UnknownFormat(e.to_string()))?;
    match xml::root_name(&text) {
        Some("AnnotatedECG") => aecg::read_text(&text),
        Some("RestingECG") => muse::read(&text),
        Some("restingecgdata") => philips::read(&text),
        Some("CardiologyXML") => cardiosoft::read(&text),
        Some(other) => Err(EcgError::UnknownFormat(format!(
            "XML with root element <{other}>; expected <AnnotatedECG> (HL7 aECG), <RestingECG> (GE MUSE), \
             <restingecgdata> (Philips) or <CardiologyXML> (GE CardioSoft)"
        ))),
        None => Err(EcgError::UnknownFormat("XML without a root element".into())),
    }
}

enum Kind {
    Dicom,
    Xml,
    Scp,
}

fn sniff(bytes: &[u8]) -> Option<Kind> {
    if bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM") {
        return Some(Kind::Dicom);
    }
    if scp::looks_like(bytes) {
        return Some(Kind::Scp);
    }
    // UTF-16, with or without its byte-order mark (Philips exports).
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"<\0") || bytes.starts_with(b"\0<") {
        return Some(Kind::Xml);
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = text.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'<' {
        return Some(Kind::Xml);
    }
    // A bare DICOM dataset (no preamble) starts with a group 0002 or 0008 tag.
    if matches!(bytes.get(..2), Some([0x02, 0x00] | [0x08, 0x00])) {
        return Some(Kind::Dicom);
    }
    None
}

/// Reads any supported file from disk. A WFDB record is named by its `.hea`
/// (or `.dat`, or the record name without extension); its signal files are
/// looked up beside it.
pub fn read_path(path: &Path) -> Result<EcgRecord, EcgError> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let header_path = match extension.as_str() {
        "hea" => Some(path.to_path_buf()),
        "dat" => Some(path.with_extension("hea")),
        "" if path.with_extension("hea").exists() => Some(path.with_extension("hea")),
        _ => None,
    };
    if let Some(header_path) = header_path {
        let header = std::fs::read_to_string(&header_path)?;
        let dir = header_path.parent().unwrap_or(Path::new("."));
        return wfdb::read(&header, |name| {
            if name.contains('/') || name.contains("..") {
                return Err(EcgError::Invalid { format: "WFDB", reason: format!("signal file name {name:?} leaves the record's folder") });
            }
            std::fs::read(dir.join(name)).map_err(|e| EcgError::Invalid {
                format: "WFDB",
                reason: format!("signal file {name} named by the header cannot be read: {e}"),
            })
        });
    }
    read_bytes(&std::fs::read(path)?)
}

/// Sampling rates a reader accepts, in hertz: every cart and database
/// lies well inside; outside is a damaged or hostile file.
pub(crate) const SAMPLING_RATES_HZ: std::ops::RangeInclusive<f64> = 50.0..=20_000.0;

/// Whether `step_uv` is a plausible amplitude step (µV per stored unit):
/// carts use 1 to 5, and at 1000 µV a 16-bit sample would reach 32 V.
pub(crate) fn plausible_step_uv(step_uv: f64) -> bool {
    step_uv > 0.0 && step_uv < 1000.0
}

/// A number as carts write it in text: `4.88`, or with a decimal comma,
/// `4,88` (GE software on European and Chinese Windows installations).
pub(crate) fn decimal(text: &str) -> Option<f64> {
    let text = text.trim();
    text.parse::<f64>().ok().or_else(|| text.replacen(',', ".", 1).parse::<f64>().ok()).filter(|v| v.is_finite())
}

/// A patient's sex as carts write it (`MALE`, `Female`, `m`) as `M` or
/// `F`; anything else (`UNKNOWN`, `O`) is not guessed.
pub(crate) fn sex(text: &str) -> Option<String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "m" | "male" => Some("M".to_owned()),
        "f" | "female" => Some("F".to_owned()),
        _ => None,
    }
}

/// Base64 as XML carries it, wrapped over lines and indented.
pub(crate) fn base64_text(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|e| format!("is not base64: {e}"))
}

/// `YYYYMMDD` if `year`, `month` and `day` make a plausible calendar date.
pub(crate) fn calendar_date(year: u32, month: u32, day: u32) -> Option<String> {
    ((1000..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)).then(|| format!("{year:04}{month:02}{day:02}"))
}

/// SCP-ECG lead codes (EN 1064 table 1), which MDC (ISO 11073-10101) lead
/// codes and DICOM's SCPECG code values share.
pub fn lead_code_label(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "I",
        2 => "II",
        3 => "V1",
        4 => "V2",
        5 => "V3",
        6 => "V4",
        7 => "V5",
        8 => "V6",
        9 => "V7",
        10 => "V2R",
        11 => "V3R",
        12 => "V4R",
        13 => "V5R",
        14 => "V6R",
        15 => "V7R",
        16 => "X",
        17 => "Y",
        18 => "Z",
        61 => "III",
        62 => "aVR",
        63 => "aVL",
        64 => "aVF",
        66 => "V8",
        67 => "V9",
        _ => return None,
    })
}
