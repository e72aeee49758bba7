//! GE CardioSoft XML (`<CardiologyXML>`): what GE's CardioSoft PC-ECG
//! workstation (and MAC carts exporting through it) writes for a resting
//! ECG.
//!
//! The layout follows CardioSoft 6.7x exports: `<PatientInfo>` (`PID`,
//! `Name` with `FamilyName` and `GivenName`, `Age units="YEARS"`,
//! `BirthDateTime` of `Day`/`Month`/`Year`, `Gender`);
//! `<ObservationDateTime>` of `Hour`…`Year`; `<FilterSetting>`;
//! `<Interpretation>` with `<Diagnosis><DiagnosisText>` lines (and
//! `<Conclusion><ConclusionText>`); `<RestingECGMeasurements>` with the
//! cart's global values, each with its `units`, and `<MedianSamples>`; and
//! `<StripData>`, the 10 s strip, with `<ArrhythmiaResults>` (the beats'
//! times). Both waveforms hold all twelve leads as `<WaveformData
//! lead="…">`: comma-separated integers at `<Resolution
//! units="uVperLsb">`, `<ChannelSampleCountTotal>` of them per lead, at
//! `<SampleRate units="Hz">`. Lead names' case varies between versions.
//! Exports declare `ISO8859-1`.

use roxmltree::Node;

use super::xml::{child, child_text, children};
use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, MedianBeat, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::GeCardioSoft;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// Reads a CardioSoft document's text.
pub fn read(text: &str) -> Result<EcgRecord, EcgError> {
    let document = super::xml::parse_rooted(text, "CardiologyXML").map_err(invalid)?;
    let root = document.root_element();
    let strip = child(root, "StripData").ok_or_else(|| invalid("no <StripData>: the document holds no ECG strip"))?;
    let (sampling_rate_hz, leads) = read_waveforms(strip, "strip")?;
    let measurements_node = child(root, "RestingECGMeasurements");
    let median = match measurements_node.and_then(|m| child(m, "MedianSamples")) {
        Some(median) => {
            let (sampling_rate_hz, leads) = read_waveforms(median, "median")?;
            Some(MedianBeat { sampling_rate_hz, leads })
        }
        None => None,
    };
    let device_info = child(root, "ClinicalInfo").and_then(|c| child(c, "DeviceInfo"));
    let mut warnings = Vec::new();
    let record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz,
        leads,
        patient: child(root, "PatientInfo").map(patient).unwrap_or_default(),
        acquired: child(root, "ObservationDateTime").and_then(observed),
        device: DeviceReport {
            manufacturer: Some("GE Healthcare".into()),
            // DeviceInfo/Desc is CardioSoft's code for itself ("CS").
            model: device_info
                .filter(|d| child_text(*d, "Desc").is_some())
                .map(|d| format!("CardioSoft {}", child_text(d, "SoftwareVer").unwrap_or_default()).trim_end().to_owned()),
            measurements: measurements_node.map(|m| measurements(m, &mut warnings)).unwrap_or_default(),
            statements: child(root, "Interpretation").map(statements).unwrap_or_default(),
            filters: child(root, "FilterSetting").and_then(filters),
            qrs_times_ms: child(strip, "ArrhythmiaResults")
                .map(|results| children(results, "Time").filter_map(|t| super::decimal(t.text()?)).collect())
                .unwrap_or_default(),
            median,
        },
        warnings,
        received_as: None,
    };
    crate::leads::finish(record)
}

/// A `<StripData>` or `<MedianSamples>`: its sampling rate and leads.
fn read_waveforms(node: Node, kind: &str) -> Result<(f64, Vec<Lead>), EcgError> {
    let rate = child(node, "SampleRate")
        .map(|r| units(r, "Hz", &["Hz"]).and_then(|_| value(r)))
        .transpose()?
        .ok_or_else(|| invalid(format!("the {kind} has no <SampleRate>")))?;
    if !super::SAMPLING_RATES_HZ.contains(&rate) {
        return Err(invalid(format!("the {kind}'s sampling rate must be 50 to 20000 Hz, found {rate}")));
    }
    // Required: a guess (1 µV where CardioSoft uses 5) would misstate every amplitude.
    let resolution = child(node, "Resolution").ok_or_else(|| invalid(format!("the {kind} has no <Resolution>")))?;
    let resolution = value(resolution)?
        * match units(resolution, "uVperLsb", &["uVperLsb", "mVperLsb"])? {
            "mVperLsb" => 1000.0,
            _ => 1.0,
        };
    if !super::plausible_step_uv(resolution) {
        return Err(invalid(format!("the {kind}'s <Resolution> must be above 0 and below 1000 µV, found {resolution}")));
    }
    let declared = child_text(node, "ChannelSampleCountTotal").map(|t| t.parse::<usize>()).transpose().map_err(|_| {
        invalid(format!("the {kind}'s <ChannelSampleCountTotal> must be a count, found {:?}", child_text(node, "ChannelSampleCountTotal")))
    })?;
    let mut leads = Vec::new();
    for data in children(node, "WaveformData") {
        let label = data.attribute("lead").map(str::trim).filter(|l| !l.is_empty());
        let label = label.ok_or_else(|| invalid(format!("a {kind} <WaveformData> has no lead attribute")))?;
        let samples_uv = data
            .text()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(at, digits)| {
                digits
                    .parse::<i32>()
                    .map(|v| (f64::from(v) * resolution) as f32)
                    .map_err(|_| invalid(format!("{kind} lead {label}: value {} is {digits:?}, expected an integer", at + 1)))
            })
            .collect::<Result<Vec<f32>, EcgError>>()?;
        if let Some(declared) = declared
            && declared != samples_uv.len()
        {
            return Err(invalid(format!(
                "{kind} lead {label}: <ChannelSampleCountTotal> says {declared} samples, the lead holds {}",
                samples_uv.len()
            )));
        }
        leads.push(Lead { label: label.to_owned(), samples_uv, derived: false });
    }
    if leads.is_empty() {
        return Err(invalid(format!("the {kind} has no <WaveformData>")));
    }
    Ok((rate, leads))
}

/// Which of `accepted` a `units` attribute names, in `accepted`'s spelling
/// (absent: `default`).
fn units<'a>(node: Node, default: &str, accepted: &[&'a str]) -> Result<&'a str, EcgError> {
    let found = node.attribute("units").unwrap_or(default);
    accepted
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(found))
        .ok_or_else(|| invalid(format!("<{}> is in {found:?}, expected {}", node.tag_name().name(), accepted.join(" or "))))
}

/// The number an element holds (a decimal comma accepted).
fn value(node: Node) -> Result<f64, EcgError> {
    let text = node.text().unwrap_or_default().trim();
    super::decimal(text).ok_or_else(|| invalid(format!("<{}> must be a number, found {text:?}", node.tag_name().name())))
}

fn patient(info: Node) -> Patient {
    let name = child(info, "Name").map(|n| {
        let family = child_text(n, "FamilyName").unwrap_or_default();
        let given = child_text(n, "GivenName").unwrap_or_default();
        super::dicom::display_name(&format!("{family}^{given}"))
    });
    let birth = child(info, "BirthDateTime").and_then(|b| {
        let part = |name| child_text(b, name).and_then(|t| t.parse::<u32>().ok());
        super::calendar_date(part("Year")?, part("Month")?, part("Day")?)
    });
    let age = child(info, "Age").and_then(|a| {
        let years = a.attribute("units").is_none_or(|u| u.eq_ignore_ascii_case("YEARS"));
        let age = a.text()?.trim().parse::<u32>().ok()?;
        Some(if years { age } else { 0 })
    });
    Patient {
        name: name.filter(|n| !n.is_empty()),
        id: child_text(info, "PID").map(str::to_owned),
        sex: child_text(info, "Gender").and_then(super::sex),
        birth_date: birth,
        age_years: age,
    }
}

/// `<ObservationDateTime>`'s parts as `YYYY-MM-DDTHH:MM:SS`.
fn observed(at: Node) -> Option<String> {
    let part = |name| child_text(at, name).and_then(|t| t.parse::<u32>().ok());
    let date = super::calendar_date(part("Year")?, part("Month")?, part("Day")?)?;
    let date = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]);
    match (part("Hour"), part("Minute"), part("Second")) {
        (Some(h), Some(m), s) if h < 24 && m < 60 => Some(format!("{date}T{h:02}:{m:02}:{:02}", s.unwrap_or(0).min(59))),
        _ => Some(date),
    }
}

/// The cart's global measurements. A value in a unit other than those
/// CardioSoft writes (or seconds, converted) is left out with a warning,
/// not misread.
fn measurements(m: Node, warnings: &mut Vec<String>) -> DeviceMeasurements {
    let mut get = |name: &'static str, unit: &'static str| -> Option<f64> {
        let node = child(m, name).filter(|n| n.text().is_some_and(|t| !t.trim().is_empty()))?;
        let scale = match (unit, units(node, unit, &[unit, "s", "deg"])) {
            (_, Ok("s")) if unit == "ms" => 1000.0,
            (_, Ok(found)) if found == unit || (unit == "degrees" && found == "deg") => 1.0,
            (_, Ok(_)) | (_, Err(_)) => {
                warnings
                    .push(format!("the cart's <{name}> in {:?} is left out: {unit} was expected", node.attribute("units").unwrap_or("")));
                return None;
            }
        };
        match value(node) {
            Ok(v) => Some(v * scale),
            Err(e) => {
                warnings.push(format!("the cart's <{name}> is left out: {e}"));
                None
            }
        }
    };
    DeviceMeasurements {
        hr_bpm: get("VentricularRate", "BPM"),
        rr_ms: get("RRInterval", "ms"),
        pr_ms: get("PQInterval", "ms"),
        p_ms: get("PDuration", "ms"),
        qrs_ms: get("QRSDuration", "ms"),
        qt_ms: get("QTInterval", "ms"),
        qtc_ms: get("QTCInterval", "ms"),
        p_axis_deg: get("PAxis", "degrees"),
        qrs_axis_deg: get("RAxis", "degrees"),
        t_axis_deg: get("TAxis", "degrees"),
    }
}

/// The interpretation's lines, then the conclusion's; CardioSoft's `---`
/// separator lines are left out.
fn statements(interpretation: Node) -> Vec<String> {
    let lines = |section: &'static str, line: &'static str| {
        child(interpretation, section)
            .into_iter()
            .flat_map(move |s| children(s, line))
            .filter_map(|l| l.text().map(str::trim))
            .filter(|t| !t.is_empty() && t.chars().any(|c| c != '-'))
            .map(str::to_owned)
    };
    lines("Diagnosis", "DiagnosisText").chain(lines("Conclusion", "ConclusionText")).collect()
}

fn filters(setting: Node) -> Option<String> {
    let hz = |name| child_text(setting, name).and_then(super::decimal);
    let yes = |name| child_text(setting, name).is_some_and(|t| t.eq_ignore_ascii_case("yes"));
    let mut parts = Vec::new();
    if let Some(high) = hz("HighPass") {
        parts.push(format!("high-pass {high} Hz"));
    }
    if let Some(low) = hz("LowPass") {
        parts.push(format!("low-pass {low} Hz"));
    }
    for (name, mains) in [("Filter50Hz", "mains 50 Hz"), ("Filter60Hz", "mains 60 Hz")] {
        if yes(name) {
            parts.push(mains.to_owned());
        }
    }
    if yes("CubicSpline") {
        parts.push("baseline cubic spline".to_owned());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
