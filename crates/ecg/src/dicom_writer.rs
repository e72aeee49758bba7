//! Writes a record as a DICOM 12-Lead ECG (or General ECG) waveform object,
//! so an ECG uploaded as SCP-ECG, aECG or WFDB is archived, viewed and
//! served like one pushed by C-STORE.
//!
//! Samples are stored as 16-bit signed integers with the record's own
//! amplitude step as Channel Sensitivity (2.5 µV for the ECGToolkit files,
//! 5 µV for MIT-BIH), so no precision is lost; the device's measurements and
//! statements go into the Waveform Annotation Sequence. UIDs are derived
//! from the bytes received: converting the same file twice gives the same
//! instance, which the archive then recognises as a duplicate.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};

use crate::record::{EcgError, EcgRecord};

/// Who and where, as the centre knows it (not in the ECG file itself).
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The county hospital that sent it (Institution Name).
    pub institution: Option<String>,
    pub accession_number: Option<String>,
    /// The bytes as received, to derive stable UIDs from.
    pub source_digest: [u8; 32],
}

impl Provenance {
    pub fn from_source(bytes: &[u8]) -> Provenance {
        Provenance { source_digest: Sha256::digest(bytes).into(), ..Default::default() }
    }
}

/// `2.25.<decimal of 128 bits>` from the source digest and a purpose.
fn uid(digest: &[u8; 32], purpose: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(digest);
    hasher.update(purpose.as_bytes());
    let hash = hasher.finalize();
    let value = u128::from_be_bytes(hash[..16].try_into().expect("16 bytes"));
    format!("2.25.{value}")
}

/// Largest step `s` (µV, from a short list) such that every sample is a whole
/// multiple of `s`; else 1 µV with rounding.
fn amplitude_step(record: &EcgRecord) -> f64 {
    for step in [10.0f64, 5.0, 4.88, 2.5, 1.25, 1.0, 0.5] {
        let exact = record.leads.iter().filter(|l| !l.derived).all(|l| {
            l.samples_uv.iter().all(|&v| {
                let k = v as f64 / step;
                (k - k.round()).abs() < 1e-3
            })
        });
        if exact {
            return step;
        }
    }
    1.0
}

/// Serialises `record` as a Part 10 file (explicit VR little endian).
pub fn to_dicom(record: &EcgRecord, provenance: &Provenance) -> Result<Vec<u8>, EcgError> {
    let stored: Vec<&crate::record::Lead> = record.leads.iter().filter(|l| !l.derived).collect();
    let channels = stored.len();
    let samples = record.len();
    // 12-Lead ECG IOD: ≤ 15 channels, 200–1000 Hz, ≤ 16384 samples.
    let twelve_lead = channels <= 15 && (200.0..=1000.0).contains(&record.sampling_rate_hz) && samples <= 16384;
    if channels > 24 {
        return Err(EcgError::Invalid { format: "DICOM writer", reason: format!("{channels} channels exceed General ECG's 24") });
    }
    let sop_class = if twelve_lead { uids::TWELVE_LEAD_ECG_WAVEFORM_STORAGE } else { uids::GENERAL_ECG_WAVEFORM_STORAGE };
    let mut step = amplitude_step(record);
    let peak = stored.iter().flat_map(|l| l.samples_uv.iter()).fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    while peak / step > 32767.0 {
        step *= 2.0;
    }

    let d = &provenance.source_digest;
    let (study_uid, series_uid, sop_uid) = (uid(d, "study"), uid(d, "series"), uid(d, "instance"));
    let (date, time) = split_acquired(record.acquired.as_deref());
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag: Tag, vr: VR, value: &str| obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    put(tags::STUDY_DATE, VR::DA, &date);
    put(tags::STUDY_TIME, VR::TM, &time);
    put(tags::CONTENT_DATE, VR::DA, &date);
    put(tags::CONTENT_TIME, VR::TM, &time);
    if !date.is_empty() {
        put(tags::ACQUISITION_DATE_TIME, VR::DT, &format!("{date}{time}"));
    }
    put(tags::ACCESSION_NUMBER, VR::SH, provenance.accession_number.as_deref().unwrap_or(""));
    put(tags::MODALITY, VR::CS, "ECG");
    put(tags::MANUFACTURER, VR::LO, record.device.manufacturer.as_deref().unwrap_or(""));
    put(tags::INSTITUTION_NAME, VR::LO, provenance.institution.as_deref().unwrap_or(""));
    put(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put(tags::STUDY_DESCRIPTION, VR::LO, "Resting 12-lead ECG");
    put(tags::SERIES_DESCRIPTION, VR::LO, &record.format.conversion_note());
    put(tags::MANUFACTURER_MODEL_NAME, VR::LO, record.device.model.as_deref().unwrap_or(""));
    put(tags::PATIENT_NAME, VR::PN, record.patient.name.as_deref().unwrap_or(""));
    put(tags::PATIENT_ID, VR::LO, record.patient.id.as_deref().unwrap_or(""));
    put(tags::PATIENT_BIRTH_DATE, VR::DA, record.patient.birth_date.as_deref().unwrap_or(""));
    put(tags::PATIENT_SEX, VR::CS, record.patient.sex.as_deref().unwrap_or(""));
    if let Some(age) = record.patient.age_years {
        put(tags::PATIENT_AGE, VR::AS, &format!("{age:03}Y"));
    }
    put(tags::STUDY_INSTANCE_UID, VR::UI, &study_uid);
    put(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put(tags::STUDY_ID, VR::SH, "");
    put(tags::SERIES_NUMBER, VR::IS, "1");
    put(tags::INSTANCE_NUMBER, VR::IS, "1");

    // The waveform: one RHYTHM multiplex group, channels interleaved.
    let mut definitions = Vec::with_capacity(channels);
    for lead in &stored {
        let mut source = InMemDicomObject::new_empty();
        let (code, meaning) = lead_code(&lead.label);
        source.put(DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(code.as_str())));
        source.put(DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("SCPECG")));
        source.put(DataElement::new(tags::CODING_SCHEME_VERSION, VR::SH, PrimitiveValue::from("1.3")));
        source.put(DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning.as_str())));
        let mut units = InMemDicomObject::new_empty();
        units.put(DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from("uV")));
        units.put(DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("UCUM")));
        units.put(DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from("microvolt")));
        let mut def = InMemDicomObject::new_empty();
        def.put(sequence(tags::CHANNEL_SOURCE_SEQUENCE, vec![source]));
        def.put(DataElement::new(tags::CHANNEL_SENSITIVITY, VR::DS, PrimitiveValue::from(format_ds(step))));
        def.put(sequence(tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE, vec![units]));
        def.put(DataElement::new(tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR, VR::DS, PrimitiveValue::from("1")));
        def.put(DataElement::new(tags::CHANNEL_BASELINE, VR::DS, PrimitiveValue::from("0")));
        def.put(DataElement::new(tags::CHANNEL_SAMPLE_SKEW, VR::DS, PrimitiveValue::from("0")));
        def.put(DataElement::new(tags::WAVEFORM_BITS_STORED, VR::US, PrimitiveValue::from(16u16)));
        definitions.push(def);
    }
    let mut data: Vec<i16> = Vec::with_capacity(channels * samples);
    for s in 0..samples {
        for lead in &stored {
            data.push((lead.samples_uv[s] as f64 / step).round() as i16);
        }
    }
    let mut group = InMemDicomObject::new_empty();
    group.put(DataElement::new(tags::MULTIPLEX_GROUP_TIME_OFFSET, VR::DS, PrimitiveValue::from("0")));
    group.put(DataElement::new(tags::WAVEFORM_ORIGINALITY, VR::CS, PrimitiveValue::from("ORIGINAL")));
    group.put(DataElement::new(tags::NUMBER_OF_WAVEFORM_CHANNELS, VR::US, PrimitiveValue::from(channels as u16)));
    group.put(DataElement::new(tags::NUMBER_OF_WAVEFORM_SAMPLES, VR::UL, PrimitiveValue::from(samples as u32)));
    group.put(DataElement::new(tags::SAMPLING_FREQUENCY, VR::DS, PrimitiveValue::from(format_ds(record.sampling_rate_hz))));
    group.put(DataElement::new(tags::MULTIPLEX_GROUP_LABEL, VR::SH, PrimitiveValue::from("RHYTHM")));
    group.put(sequence(tags::CHANNEL_DEFINITION_SEQUENCE, definitions));
    group.put(DataElement::new(tags::WAVEFORM_BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)));
    group.put(DataElement::new(tags::WAVEFORM_SAMPLE_INTERPRETATION, VR::CS, PrimitiveValue::from("SS")));
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    group.put(DataElement::new(tags::WAVEFORM_DATA, VR::OW, PrimitiveValue::from(bytes)));
    obj.put(sequence(tags::WAVEFORM_SEQUENCE, vec![group]));
    let annotations = annotations(record);
    if !annotations.is_empty() {
        obj.put(sequence(tags::WAVEFORM_ANNOTATION_SEQUENCE, annotations));
    }

    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_uid.as_str())
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .implementation_class_uid("2.25.181367470011399419396196474386213405977")
        .implementation_version_name("TELEDIAG_ECG")
        .build()
        .map_err(|e| EcgError::Invalid { format: "DICOM writer", reason: e.to_string() })?;
    let file = obj.with_exact_meta(meta);
    let mut out = Vec::with_capacity(data.len() * 2 + 8192);
    file.write_all(&mut out).map_err(|e| EcgError::Invalid { format: "DICOM writer", reason: e.to_string() })?;
    Ok(out)
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

fn format_ds(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// SCPECG code value and meaning for a normalised label.
fn lead_code(label: &str) -> (String, String) {
    let number = (1..=67u16).find(|&n| crate::read::lead_code_label(n) == Some(label));
    match number {
        Some(n) => (format!("5.6.3-9-{n}"), format!("Lead {label}")),
        None => ("5.6.3-9-0".to_string(), label.to_string()),
    }
}

fn split_acquired(acquired: Option<&str>) -> (String, String) {
    let Some(a) = acquired else { return (String::new(), String::new()) };
    let date: String = a.chars().take(10).filter(char::is_ascii_digit).collect();
    let time: String = a.chars().skip(11).filter(char::is_ascii_digit).collect();
    (date, time)
}

/// The device's measurements (SCPECG codes, as 12-lead carts write them)
/// and statements, so the converted object keeps what the cart said.
fn annotations(record: &EcgRecord) -> Vec<InMemDicomObject> {
    let m = &record.device.measurements;
    let mut out = Vec::new();
    for statement in &record.device.statements {
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(tags::UNFORMATTED_TEXT_VALUE, VR::ST, PrimitiveValue::from(statement.as_str())));
        out.push(item);
    }
    // (code, scheme, meaning, UCUM unit, unit meaning, value): SCPECG's
    // codes where it has one, LOINC's heart rate where it has none.
    let numeric = [
        ("8867-4", "LN", "Heart rate", "/min", "per minute", m.hr_bpm),
        ("5.10.2.1-3", "SCPECG", "RR Interval", "ms", "milliseconds", m.rr_ms),
        ("5.13.5-7", "SCPECG", "PR Interval", "ms", "milliseconds", m.pr_ms),
        ("5.13.5-9", "SCPECG", "QRS Duration", "ms", "milliseconds", m.qrs_ms),
        ("5.13.5-11", "SCPECG", "QT Interval", "ms", "milliseconds", m.qt_ms),
        ("5.10.2.5-5", "SCPECG", "QTc Interval", "ms", "milliseconds", m.qtc_ms),
        ("5.10.3-11", "SCPECG", "P Axis", "deg", "degrees", m.p_axis_deg),
        ("5.10.3-13", "SCPECG", "QRS Axis", "deg", "degrees", m.qrs_axis_deg),
        ("5.10.3-15", "SCPECG", "T Axis", "deg", "degrees", m.t_axis_deg),
    ];
    for (code, scheme, meaning, unit, unit_meaning, value) in numeric {
        let Some(value) = value else { continue };
        let mut name = InMemDicomObject::new_empty();
        name.put(DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(code)));
        name.put(DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from(scheme)));
        name.put(DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)));
        let mut units = InMemDicomObject::new_empty();
        units.put(DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(unit)));
        units.put(DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("UCUM")));
        units.put(DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(unit_meaning)));
        let mut item = InMemDicomObject::new_empty();
        item.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![name]));
        item.put(sequence(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![units]));
        item.put(DataElement::new(tags::NUMERIC_VALUE, VR::DS, PrimitiveValue::from(format_ds(value))));
        item.put(DataElement::new(tags::ANNOTATION_GROUP_NUMBER, VR::US, PrimitiveValue::from(0u16)));
        out.push(item);
    }
    out
}
