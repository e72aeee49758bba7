//! GE MUSE XML (`<RestingECG>`): what GE's MAC-series carts send through
//! the MUSE cardiology information system, and what MUSE exports.
//!
//! The structure follows GE's `restecg.dtd` (MUSE 7–9): demographics in
//! `<PatientDemographics>` and `<TestDemographics>`; the cart's global
//! measurements in `<RestingECGMeasurements>`; its interpretation in
//! `<Diagnosis>` (statements whose `<StmtFlag>ENDSLINE</StmtFlag>` ends a
//! line; those without it continue the line); and one `<Waveform>` per kind
//! (`Rhythm`: the 10 s strip; `Median`: the representative beat), each
//! holding a `<LeadData>` per stored lead. A cart stores the 8 independent
//! leads (I, II, V1–V6); III, aVR, aVL and aVF are derived
//! ([`crate::leads`]). A lead's samples are `<WaveFormData>`: base64 of
//! little-endian 16-bit integers, `<LeadAmplitudeUnitsPerBit>` µV each,
//! checked against `<LeadByteCountTotal>`, `<LeadSampleCountTotal>` and
//! the CRC-32 of the bytes, `<LeadDataCRC32>`, and offset by
//! `<FirstSampleBaseline>`. The sampling rate is
//! `<SampleBase>` × 10^`<SampleExponent>`.
//!
//! `<QRSTimesTypes>` lists where the cart found each beat, in milliseconds.
//! Dates are `MM-DD-YYYY`. Exports declare their encoding (ISO-8859-1,
//! or a Chinese code page on Chinese installations; [`super::xml::decode`]).

use roxmltree::Node;

use super::xml::{child, child_text, children};
use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, MedianBeat, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::GeMuse;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// Reads a MUSE document's text.
pub fn read(text: &str) -> Result<EcgRecord, EcgError> {
    let document = super::xml::parse_rooted(text, "RestingECG").map_err(invalid)?;
    let root = document.root_element();
    let waveform =
        |kind: &str| children(root, "Waveform").find(|w| child_text(*w, "WaveformType").is_some_and(|t| t.eq_ignore_ascii_case(kind)));
    let rhythm = waveform("Rhythm").ok_or_else(|| invalid("no <Waveform> of <WaveformType>Rhythm: the document holds no ECG strip"))?;
    let (sampling_rate_hz, leads) = read_waveform(rhythm, "rhythm")?;
    let median = match waveform("Median") {
        Some(median) => {
            let (sampling_rate_hz, leads) = read_waveform(median, "median")?;
            Some(MedianBeat { sampling_rate_hz, leads })
        }
        None => None,
    };
    let test = child(root, "TestDemographics");
    let record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz,
        leads,
        patient: child(root, "PatientDemographics").map(patient).unwrap_or_default(),
        acquired: test.and_then(|t| {
            let date = us_date(child_text(t, "AcquisitionDate")?)?;
            let time = child_text(t, "AcquisitionTime")
                .map(|t| t.replace(':', ""))
                .filter(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()));
            super::dicom::format_date_time(&date, time.as_deref())
        }),
        device: DeviceReport {
            manufacturer: Some("GE Healthcare".into()),
            model: test.and_then(|t| child_text(t, "AcquisitionDevice")).map(str::to_owned),
            measurements: child(root, "RestingECGMeasurements").map(measurements).unwrap_or_default(),
            statements: child(root, "Diagnosis").map(statements).unwrap_or_default(),
            filters: filters(rhythm),
            qrs_times_ms: child(root, "QRSTimesTypes")
                .map(|times| children(times, "QRS").filter_map(|q| super::decimal(child_text(q, "Time")?)).collect())
                .unwrap_or_default(),
            median,
        },
        warnings: Vec::new(),
        received_as: None,
    };
    crate::leads::finish(record)
}

/// One `<Waveform>`'s sampling rate and leads.
fn read_waveform(waveform: Node, kind: &str) -> Result<(f64, Vec<Lead>), EcgError> {
    let base: f64 = number(waveform, "SampleBase")?.ok_or_else(|| invalid(format!("the {kind} waveform has no <SampleBase>")))?;
    let exponent = number(waveform, "SampleExponent")?.unwrap_or(0.0);
    if !(0.0..=10.0).contains(&exponent.abs()) || exponent.fract() != 0.0 {
        return Err(invalid(format!("the {kind} waveform's <SampleExponent> must be a small integer, found {exponent}")));
    }
    let rate = base * 10f64.powi(exponent as i32);
    if !super::SAMPLING_RATES_HZ.contains(&rate) {
        return Err(invalid(format!("the {kind} waveform's sampling rate must be 50 to 20000 Hz, found {rate}")));
    }
    let leads = children(waveform, "LeadData").map(|lead| read_lead(lead, kind)).collect::<Result<Vec<_>, _>>()?;
    if leads.is_empty() {
        return Err(invalid(format!("the {kind} waveform has no <LeadData>")));
    }
    Ok((rate, leads))
}

fn read_lead(lead: Node, kind: &str) -> Result<Lead, EcgError> {
    let label = child_text(lead, "LeadID").ok_or_else(|| invalid(format!("a {kind} <LeadData> has no <LeadID>")))?;
    let what = format!("{kind} lead {label}");
    let bytes = super::base64_text(child_text(lead, "WaveFormData").unwrap_or_default())
        .map_err(|e| invalid(format!("{what}: <WaveFormData> {e}")))?;
    if let Some(sample_size) = number(lead, "LeadSampleSize")?
        && sample_size != 2.0
    {
        return Err(invalid(format!("{what}: expected 2-byte samples (<LeadSampleSize>2), found {sample_size}")));
    }
    if bytes.len() % 2 != 0 {
        return Err(invalid(format!("{what}: {} bytes of 16-bit samples is not a whole number of samples", bytes.len())));
    }
    if let Some(declared) = number(lead, "LeadByteCountTotal")?
        && declared != bytes.len() as f64
    {
        return Err(invalid(format!("{what}: <LeadByteCountTotal> says {declared} bytes, <WaveFormData> holds {}", bytes.len())));
    }
    if let Some(declared) = number(lead, "LeadSampleCountTotal")?
        && declared != (bytes.len() / 2) as f64
    {
        return Err(invalid(format!("{what}: <LeadSampleCountTotal> says {declared} samples, <WaveFormData> holds {}", bytes.len() / 2)));
    }
    if let Some(declared) = child_text(lead, "LeadDataCRC32") {
        let found = crc32fast::hash(&bytes);
        if declared.parse::<u32>().ok() != Some(found) {
            return Err(invalid(format!("{what} is damaged: <LeadDataCRC32> says {declared}, the samples' CRC-32 is {found}")));
        }
    }
    // Required: a guess (1 µV where carts use 4.88) would misstate every amplitude.
    let units_per_bit =
        number(lead, "LeadAmplitudeUnitsPerBit")?.ok_or_else(|| invalid(format!("{what} has no <LeadAmplitudeUnitsPerBit>")))?;
    let unit_uv = match child_text(lead, "LeadAmplitudeUnits").map(str::to_ascii_uppercase).as_deref() {
        None | Some("MICROVOLTS") => 1.0,
        Some("MILLIVOLTS") => 1000.0,
        Some("VOLTS") => 1e6,
        Some(other) => {
            return Err(invalid(format!("{what}: expected <LeadAmplitudeUnits> MICROVOLTS, MILLIVOLTS or VOLTS, found {other}")));
        }
    };
    let step = units_per_bit * unit_uv;
    if !super::plausible_step_uv(step) {
        return Err(invalid(format!("{what}: a step of above 0 and below 1000 µV was expected, <LeadAmplitudeUnitsPerBit> gives {step}")));
    }
    let baseline = number(lead, "FirstSampleBaseline")?.unwrap_or(0.0);
    if baseline.abs() > 65_536.0 {
        return Err(invalid(format!("{what}: <FirstSampleBaseline> {baseline} is beyond any 16-bit sample")));
    }
    let samples_uv =
        bytes.chunks_exact(2).map(|pair| ((f64::from(i16::from_le_bytes([pair[0], pair[1]])) + baseline) * step) as f32).collect();
    Ok(Lead { label: label.to_owned(), samples_uv, derived: false })
}

/// A child's number, `None` when the child is absent; text that is not a
/// number is an error naming the element.
fn number(node: Node, name: &'static str) -> Result<Option<f64>, EcgError> {
    child_text(node, name).map(|t| super::decimal(t).ok_or_else(|| invalid(format!("<{name}> must be a number, found {t:?}")))).transpose()
}

/// `MM-DD-YYYY` (MUSE's only date form) as `YYYYMMDD`.
fn us_date(date: &str) -> Option<String> {
    let mut parts = date.split(['-', '/']).map(|p| p.parse::<u32>().ok());
    let (month, day, year) = (parts.next()??, parts.next()??, parts.next()??);
    super::calendar_date(year, month, day)
}

fn patient(demographics: Node) -> Patient {
    let last = child_text(demographics, "PatientLastName").unwrap_or_default();
    let first = child_text(demographics, "PatientFirstName").unwrap_or_default();
    let name = super::dicom::display_name(&format!("{last}^{first}"));
    let age_years = match (child_text(demographics, "PatientAge").and_then(|a| a.parse::<u32>().ok()), child_text(demographics, "AgeUnits"))
    {
        (Some(age), None) => Some(age),
        (Some(age), Some(units)) if units.eq_ignore_ascii_case("YEARS") => Some(age),
        (Some(_), Some(_)) => Some(0),
        (None, _) => None,
    };
    Patient {
        name: Some(name).filter(|n| !n.is_empty()),
        id: child_text(demographics, "PatientID").map(str::to_owned),
        sex: child_text(demographics, "Gender").and_then(super::sex),
        birth_date: child_text(demographics, "DateofBirth").and_then(us_date),
        age_years,
    }
}

fn measurements(m: Node) -> DeviceMeasurements {
    let value = |name: &'static str| child_text(m, name).and_then(super::decimal);
    let hr = value("VentricularRate");
    let sample_rate = value("ECGSampleBase").unwrap_or(500.0) * 10f64.powf(value("ECGSampleExponent").unwrap_or(0.0));
    let sample_base = Some(sample_rate).filter(|r| r.is_finite() && *r > 0.0).unwrap_or(500.0);
    DeviceMeasurements {
        hr_bpm: hr,
        rr_ms: hr.filter(|hr| *hr > 0.0).map(|hr| (60_000.0 / hr).round()),
        pr_ms: value("PRInterval"),
        // Onsets and offsets count samples of the median beat.
        p_ms: value("POffset").zip(value("POnset")).map(|(off, on)| (off - on) * 1000.0 / sample_base).filter(|p| *p > 0.0),
        qrs_ms: value("QRSDuration"),
        qt_ms: value("QTInterval"),
        qtc_ms: value("QTCorrected"),
        p_axis_deg: value("PAxis"),
        qrs_axis_deg: value("RAxis"),
        t_axis_deg: value("TAxis"),
    }
}

/// The interpretation as lines: statements are joined until one flagged
/// `ENDSLINE`, as MUSE prints them.
fn statements(diagnosis: Node) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<&str> = Vec::new();
    for statement in children(diagnosis, "DiagnosisStatement") {
        if let Some(text) = child_text(statement, "StmtText") {
            line.push(text);
        }
        if children(statement, "StmtFlag").any(|f| f.text().is_some_and(|t| t.trim() == "ENDSLINE")) && !line.is_empty() {
            lines.push(line.join(" "));
            line.clear();
        }
    }
    if !line.is_empty() {
        lines.push(line.join(" "));
    }
    lines
}

/// The rhythm strip's filters as the cart states them: the high-pass in
/// hundredths of a hertz, the low-pass and mains filter in hertz.
fn filters(rhythm: Node) -> Option<String> {
    let high = child_text(rhythm, "HighPassFilter").and_then(super::decimal).map(|h| format!("high-pass {} Hz", h / 100.0));
    let low = child_text(rhythm, "LowPassFilter").and_then(super::decimal).map(|l| format!("low-pass {l} Hz"));
    let mains = child_text(rhythm, "ACFilter").map(|a| match super::decimal(a) {
        Some(hz) => format!("mains {hz} Hz"),
        None => format!("mains {}", a.to_ascii_lowercase()),
    });
    let parts: Vec<String> = [high, low, mains].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}
