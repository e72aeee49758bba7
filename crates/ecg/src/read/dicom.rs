//! DICOM waveform objects: 12-Lead ECG, General ECG (and any other waveform
//! storage class with ECG channels).
//!
//! The rhythm multiplex group is read (the MEDIAN group, a device's
//! representative beat, is not: we compute our own). Physical value =
//! stored × Channel Sensitivity × Correction Factor + Channel Baseline, in the
//! sensitivity's units, converted to microvolts. Device measurements and
//! statements come from the Waveform Annotation Sequence.

use std::io::Cursor;

use dicom_core::value::{DicomValueType, PrimitiveValue};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::read::lead_code_label;
use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::DicomWaveform;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// Reads a DICOM Part 10 file (with or without its 128-byte preamble).
pub fn read(bytes: &[u8]) -> Result<EcgRecord, EcgError> {
    let body = if bytes.get(128..132) == Some(b"DICM") { &bytes[128..] } else { bytes };
    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(Cursor::new(body))
        .map_err(|e| invalid(format!("not a readable DICOM file: {e}")))?;
    read_object(&object)
}

/// Reads the ECG in an already parsed DICOM object.
pub fn read_object(object: &InMemDicomObject) -> Result<EcgRecord, EcgError> {
    let groups = object
        .element(tags::WAVEFORM_SEQUENCE)
        .ok()
        .and_then(|e| e.items())
        .ok_or_else(|| invalid("no Waveform Sequence (5400,0100): not a waveform object"))?;
    let is_median = |g: &InMemDicomObject| {
        text(g, tags::MULTIPLEX_GROUP_LABEL).is_some_and(|l| {
            let l = l.to_ascii_uppercase();
            l.contains("MEDIAN") || l.contains("REPRESENTATIVE")
        })
    };
    let group = groups
        .iter()
        .filter(|g| !is_median(g))
        .max_by_key(|g| int(g, tags::NUMBER_OF_WAVEFORM_SAMPLES).unwrap_or(0))
        .ok_or_else(|| invalid("the Waveform Sequence holds only a median beat, no rhythm"))?;

    let channels =
        int(group, tags::NUMBER_OF_WAVEFORM_CHANNELS).ok_or_else(|| invalid("Number of Waveform Channels (003A,0005) missing"))? as usize;
    let samples =
        int(group, tags::NUMBER_OF_WAVEFORM_SAMPLES).ok_or_else(|| invalid("Number of Waveform Samples (003A,0010) missing"))? as usize;
    let rate = float(group, tags::SAMPLING_FREQUENCY).ok_or_else(|| invalid("Sampling Frequency (003A,001A) missing"))?;
    let definitions = group
        .element(tags::CHANNEL_DEFINITION_SEQUENCE)
        .ok()
        .and_then(|e| e.items())
        .ok_or_else(|| invalid("Channel Definition Sequence (003A,0200) missing"))?;
    if definitions.len() != channels {
        return Err(invalid(format!("Number of Waveform Channels is {channels} but {} channels are defined", definitions.len())));
    }
    let bits = int(group, tags::WAVEFORM_BITS_ALLOCATED).unwrap_or(16);
    let interpretation = text(group, tags::WAVEFORM_SAMPLE_INTERPRETATION).unwrap_or_else(|| "SS".into());
    let values = waveform_values(group, bits, &interpretation)?;
    if values.len() < channels * samples {
        return Err(invalid(format!(
            "Waveform Data holds {} values, {channels} channels × {samples} samples need {}",
            values.len(),
            channels * samples
        )));
    }

    let mut leads = Vec::with_capacity(channels);
    for (c, definition) in definitions.iter().enumerate() {
        let sensitivity = float(definition, tags::CHANNEL_SENSITIVITY).unwrap_or(1.0);
        let correction = float(definition, tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR).unwrap_or(1.0);
        let baseline = float(definition, tags::CHANNEL_BASELINE).unwrap_or(0.0);
        let units = item(definition, tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE)
            .and_then(|u| text(u, tags::CODE_VALUE))
            .unwrap_or_else(|| "uV".into());
        let to_uv = match units.as_str() {
            "uV" | "UV" => 1.0,
            "mV" | "MV" => 1000.0,
            "V" => 1_000_000.0,
            other => return Err(invalid(format!("channel {} units {other:?} are not a voltage", c + 1))),
        };
        let scale = sensitivity * correction;
        let samples_uv = (0..samples).map(|s| ((values[s * channels + c] as f64 * scale + baseline) * to_uv) as f32).collect();
        leads.push(Lead { label: channel_label(definition, c), samples_uv, derived: false });
    }

    let mut device = DeviceReport {
        manufacturer: text(object, tags::MANUFACTURER),
        model: text(object, tags::MANUFACTURER_MODEL_NAME),
        filters: filters(definitions.first()),
        ..Default::default()
    };
    read_annotations(object, &mut device);

    let record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz: rate,
        leads,
        patient: Patient {
            name: text(object, tags::PATIENT_NAME).map(|n| display_name(&n)),
            id: text(object, tags::PATIENT_ID),
            sex: text(object, tags::PATIENT_SEX),
            birth_date: text(object, tags::PATIENT_BIRTH_DATE),
            age_years: text(object, tags::PATIENT_AGE).and_then(|a| age_years(&a)),
        },
        acquired: acquired(object),
        device,
        warnings: Vec::new(),
        received_as: text(object, tags::SERIES_DESCRIPTION).as_deref().and_then(SourceFormat::converted_from),
    };
    crate::leads::finish(record)
}

fn waveform_values(group: &InMemDicomObject, bits: u32, interpretation: &str) -> Result<Vec<i32>, EcgError> {
    let element = group.element(tags::WAVEFORM_DATA).map_err(|_| invalid("Waveform Data (5400,1010) missing"))?;
    let value = element.value().primitive().ok_or_else(|| invalid("Waveform Data is not a value"))?;
    let bytes: Vec<u8> = match value {
        PrimitiveValue::U8(b) => b.to_vec(),
        PrimitiveValue::U16(w) => w.iter().flat_map(|v| v.to_le_bytes()).collect(),
        PrimitiveValue::I16(w) => w.iter().flat_map(|v| v.to_le_bytes()).collect(),
        other => return Err(invalid(format!("Waveform Data has an unexpected value type {:?}", other.value_type()))),
    };
    Ok(match (bits, interpretation) {
        (16, "SS") => bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i32).collect(),
        (16, "US") => bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as i32).collect(),
        (8, "SB") => bytes.iter().map(|&b| b as i8 as i32).collect(),
        (8, "UB") => bytes.iter().map(|&b| b as i32).collect(),
        (32, "SL") => bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        (bits, interpretation) => {
            return Err(invalid(format!(
                "waveform samples of {bits} bits interpreted as {interpretation} are not supported \
                 (16-bit SS/US, 8-bit SB/UB, 32-bit SL are)"
            )));
        }
    })
}

fn channel_label(definition: &InMemDicomObject, index: usize) -> String {
    let source = item(definition, tags::CHANNEL_SOURCE_SEQUENCE);
    let meaning = source.and_then(|s| text(s, tags::CODE_MEANING));
    let from_code = source.and_then(|s| text(s, tags::CODE_VALUE)).and_then(|code| {
        // SCPECG "5.6.3-9-61" and MDC "2:61" share the lead numbering.
        let number = code.rsplit(['-', ':']).next()?.parse::<u16>().ok()?;
        lead_code_label(number).map(str::to_string)
    });
    let meaning_label = meaning.as_deref().map(crate::leads::normalise_label);
    match (meaning_label, from_code) {
        (Some(m), _) if crate::leads::STANDARD_LEADS.contains(&m.as_str()) => m,
        (_, Some(code)) => code,
        (Some(m), None) => m,
        (None, None) => format!("channel {}", index + 1),
    }
}

fn filters(definition: Option<&InMemDicomObject>) -> Option<String> {
    let d = definition?;
    let mut parts = Vec::new();
    if let Some(low) = float(d, tags::FILTER_LOW_FREQUENCY) {
        parts.push(format!("high-pass {low} Hz"));
    }
    if let Some(high) = float(d, tags::FILTER_HIGH_FREQUENCY) {
        parts.push(format!("low-pass {high} Hz"));
    }
    if let Some(notch) = float(d, tags::NOTCH_FILTER_FREQUENCY).filter(|f| *f > 0.0) {
        parts.push(format!("notch {notch} Hz"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn read_annotations(object: &InMemDicomObject, device: &mut DeviceReport) {
    let Some(items) = object.get(tags::WAVEFORM_ANNOTATION_SEQUENCE).and_then(|e| e.items()) else {
        return;
    };
    for annotation in items {
        if let Some(statement) = text(annotation, tags::UNFORMATTED_TEXT_VALUE) {
            device.statements.push(statement);
            continue;
        }
        let Some(value) = float(annotation, tags::NUMERIC_VALUE) else { continue };
        let Some(name) = item(annotation, tags::CONCEPT_NAME_CODE_SEQUENCE).and_then(|c| text(c, tags::CODE_MEANING)) else {
            continue;
        };
        set_measurement(&mut device.measurements, &name, value);
    }
}

/// Fills the measurement a DICOM (SCPECG-coded) concept name stands for,
/// keeping the first value when a file repeats it per lead.
fn set_measurement(m: &mut DeviceMeasurements, name: &str, value: f64) {
    let lower = name.to_ascii_lowercase();
    let slot = match lower.as_str() {
        "pr interval" => &mut m.pr_ms,
        "p duration" => &mut m.p_ms,
        "qrs duration" => &mut m.qrs_ms,
        "qt interval" => &mut m.qt_ms,
        "qtc interval" => &mut m.qtc_ms,
        "rr interval" => &mut m.rr_ms,
        "p axis" => &mut m.p_axis_deg,
        "qrs axis" => &mut m.qrs_axis_deg,
        "t axis" => &mut m.t_axis_deg,
        "ventricular heart rate" | "heart rate" | "ventricular rate" => &mut m.hr_bpm,
        _ => return,
    };
    // Devices write 0 for an interval they did not measure; 0° is a real axis.
    if slot.is_none() && (value != 0.0 || lower.ends_with("axis")) {
        *slot = Some(value);
    }
}

fn acquired(object: &InMemDicomObject) -> Option<String> {
    if let Some(dt) = text(object, tags::ACQUISITION_DATE_TIME) {
        return format_date_time(&dt[..dt.len().min(8)], dt.get(8..));
    }
    for (date, time) in [(tags::CONTENT_DATE, tags::CONTENT_TIME), (tags::STUDY_DATE, tags::STUDY_TIME)] {
        if let Some(d) = text(object, date) {
            return format_date_time(&d, text(object, time).as_deref());
        }
    }
    None
}

/// `YYYYMMDD` + `HHMMSS[.frac]` → `YYYY-MM-DDTHH:MM:SS`.
pub(crate) fn format_date_time(date: &str, time: Option<&str>) -> Option<String> {
    if date.len() < 8 || !date.is_ascii() {
        return None;
    }
    let mut out = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..8]);
    if let Some(t) = time.filter(|t| t.len() >= 4 && t.is_ascii()) {
        let seconds = t.get(4..6).unwrap_or("00");
        out.push_str(&format!("T{}:{}:{seconds}", &t[..2], &t[2..4]));
    }
    Some(out)
}

/// A DICOM person name for display: the ideographic group when present
/// (张^三 → 张三), else the alphabetic one with spaces (Clark^Ann → Clark Ann).
pub(crate) fn display_name(pn: &str) -> String {
    let groups: Vec<&str> = pn.split('=').collect();
    let chosen = groups.get(1).filter(|g| !g.trim_matches('^').is_empty()).unwrap_or(&groups[0]);
    let parts: Vec<&str> = chosen.split('^').map(str::trim).filter(|p| !p.is_empty()).collect();
    let cjk = chosen.chars().any(|c| c as u32 >= 0x2E80);
    parts.join(if cjk { "" } else { " " })
}

/// DICOM Age String `045Y` (months, weeks and days give 0 years).
fn age_years(age: &str) -> Option<u32> {
    let (number, unit) = age.split_at(age.len().checked_sub(1)?);
    let n: u32 = number.parse().ok()?;
    match unit {
        "Y" => Some(n),
        "M" => Some(n / 12),
        "W" | "D" => Some(0),
        _ => None,
    }
}

fn item(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<&InMemDicomObject> {
    object.get(tag)?.items()?.first()
}

fn text(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let s = object.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn float(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    object.get(tag)?.to_float64().ok().filter(|v| v.is_finite())
}

fn int(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<u32> {
    object.get(tag)?.to_int::<u32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_display_as_a_chinese_or_western_reader_expects() {
        assert_eq!(display_name("Zhang^San=张^三"), "张三");
        assert_eq!(display_name("Clark^Ann"), "Clark Ann");
        assert_eq!(display_name("王^小明"), "王小明");
        assert_eq!(display_name("Anonymous"), "Anonymous");
    }
}
