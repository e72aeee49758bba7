//! Philips resting ECG XML (`<restingecgdata>`): PageWriter TC and Trim
//! carts, HeartStart monitors and TraceMasterVue exports, schema versions
//! 1.03 (`SierraECG`), 1.04 and 1.04.01 (`PhilipsECG`).
//!
//! The strip is `<waveforms><parsedwaveforms>`: base64 of [`xli`]-
//! compressed chunks (or, uncompressed, little-endian 16-bit samples lead
//! after lead; or `Plain` decimal text). 1.04 names the leads, rate and
//! µV per step on the element (`leadlabels`, `samplespersecond`,
//! `resolution`, `signaloffset`); 1.03 leaves them to
//! `<dataacquisition><signalcharacteristics>` and the standard order.
//! In XLI, III, aVR, aVL and aVF are stored as residuals of their
//! Einthoven and Goldberger values, which are added back with C's
//! truncating division as Philips' own readers do. A strip is
//! `durationperchannel` ms long: 10 s of ECG, then a tail where every lead
//! holds one value (zeros, then a 1 mV calibration pulse), which is not
//! ECG and is cut off.
//!
//! The cart's representative beats are `<repbeats>` (uncompressed base64,
//! 0x7FFF after the beat's end); its global measurements are in
//! `<interpretation><globalmeasurements>` (1.04) or
//! `<interpretationmeasurements>` (1.03), values in ms, bpm and degrees,
//! some of them words (`Failed`) when the cart could not measure; its
//! statements are `<statement>`s of a left statement (the finding) and a
//! right one (the criterion), after the `<severity>`. Exports are UTF-8 or
//! UTF-16 ([`super::xml::decode`]).

pub mod xli;

use roxmltree::Node;

use super::xml::{child, child_text, children, descendant};
use crate::leads::STANDARD_LEADS;
use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, MedianBeat, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::PhilipsXml;

/// The longest strip read: a resting ECG is 10 s, Philips writes 11.
const MAX_DURATION_MS: f64 = 120_000.0;
/// Channels a Philips strip holds at most (12 leads and 4 for calibration).
const MAX_LEADS: usize = 16;
/// Samples decoded in all, over every lead: a 10 s 12-lead strip at
/// 1000 Hz is 120,000; a few kilobytes of XLI could otherwise claim
/// gigabytes.
const MAX_SAMPLES: usize = 4_000_000;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// Reads a Philips document's text.
pub fn read(text: &str) -> Result<EcgRecord, EcgError> {
    let document = super::xml::parse_rooted(text, "restingecgdata").map_err(invalid)?;
    let root = document.root_element();
    let version = child(root, "documentinfo").and_then(|d| child_text(d, "documentversion")).unwrap_or("unknown");
    let waveforms = child(root, "waveforms").ok_or_else(|| invalid("no <waveforms>: the document holds no ECG"))?;
    let parsed = child(waveforms, "parsedwaveforms")
        .ok_or_else(|| invalid(format!("no <parsedwaveforms> in <waveforms> (schema {version}); waveforms by reference are not read")))?;
    let acquisition = child(root, "dataacquisition");
    let layout = Layout::of(parsed, acquisition.and_then(|a| child(a, "signalcharacteristics")))?;
    let leads = strip(parsed, &layout)?;
    let interpretation = child(root, "interpretations").and_then(|i| child(i, "interpretation"));
    let mut record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz: layout.rate_hz,
        leads,
        patient: descendant(root, "generalpatientdata").map(patient).unwrap_or_default(),
        acquired: acquisition.and_then(acquired),
        device: DeviceReport {
            manufacturer: Some("Philips".into()),
            model: acquisition.and_then(|a| child_text(a, "machine")).map(str::to_owned),
            measurements: interpretation.map(measurements).unwrap_or_default(),
            statements: interpretation.map(statements).unwrap_or_default(),
            filters: filters(parsed),
            qrs_times_ms: Vec::new(),
            median: None,
        },
        warnings: Vec::new(),
        received_as: None,
    };
    // The cart's beats are an extra: one it wrote in a way not read here
    // is left out with the reason, the strip kept.
    match child(waveforms, "repbeats").map(representative_beats) {
        Some(Ok(median)) => record.device.median = Some(median),
        Some(Err(reason)) => record.warnings.push(format!("the cart's representative beats are left out: {reason}")),
        None => {}
    }
    crate::leads::finish(record)
}

/// How the strip is stored.
struct Layout {
    labels: Vec<String>,
    rate_hz: f64,
    resolution_uv: f64,
    offset: f64,
    samples: usize,
    encoding: Encoding,
}

#[derive(PartialEq)]
enum Encoding {
    Xli,
    Base64,
    Plain,
}

impl Layout {
    fn of(parsed: Node, signal: Option<Node>) -> Result<Layout, EcgError> {
        let attribute = |name: &str| parsed.attribute(name).map(str::trim).filter(|v| !v.is_empty());
        let signal_value = |name: &'static str| signal.and_then(|s| child_text(s, name));
        let number = |what: &str, text: Option<&str>| -> Result<f64, EcgError> {
            let text = text.ok_or_else(|| invalid(format!("the strip does not say its {what}")))?;
            super::decimal(text).ok_or_else(|| invalid(format!("the strip's {what} must be a number, found {text:?}")))
        };
        let rate_hz = number("sampling rate", attribute("samplespersecond").or(signal_value("samplingrate")))?;
        if !super::SAMPLING_RATES_HZ.contains(&rate_hz) {
            return Err(invalid(format!("the sampling rate must be 50 to 20000 Hz, found {rate_hz}")));
        }
        let resolution_uv = number(
            "resolution (µV per step)",
            attribute("resolution").or(signal_value("resolution")).or(signal_value("signalresolution")),
        )?;
        if !super::plausible_step_uv(resolution_uv) {
            return Err(invalid(format!("the resolution must be above 0 and below 1000 µV, found {resolution_uv}")));
        }
        let duration_ms = number("duration (durationperchannel)", attribute("durationperchannel"))?;
        if !(duration_ms > 0.0 && duration_ms <= MAX_DURATION_MS) {
            return Err(invalid(format!("durationperchannel must be above 0 and at most {MAX_DURATION_MS} ms, found {duration_ms}")));
        }
        let samples = (duration_ms * rate_hz / 1000.0).round() as usize;
        if samples == 0 {
            return Err(invalid(format!("{duration_ms} ms at {rate_hz} Hz is not one sample")));
        }
        // Normalised now: the residuals of III, aVR, aVL and aVF are found by name.
        let labels: Vec<String> = match attribute("leadlabels") {
            Some(labels) => labels.split_whitespace().map(crate::leads::normalise_label).collect(),
            None => STANDARD_LEADS.iter().map(|l| (*l).to_owned()).collect(),
        };
        let count = attribute("numberofleads").or(signal_value("numberchannelsvalid")).or(signal_value("numberchannelsallocated"));
        let count = match count {
            Some(text) => text.parse::<usize>().map_err(|_| invalid(format!("the number of leads must be a count, found {text:?}")))?,
            None => labels.len(),
        };
        if count == 0 || count > labels.len() || count > MAX_LEADS {
            return Err(invalid(format!("{count} leads declared, {} lead labels; a strip holds 1 to {MAX_LEADS}", labels.len())));
        }
        if samples * count > MAX_SAMPLES {
            return Err(invalid(format!("{count} leads of {samples} samples exceed the {MAX_SAMPLES} samples a resting ECG is read with")));
        }
        if attribute("signalsigned").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            return Err(invalid("unsigned samples (signalsigned=\"False\"): Philips carts write signed 16-bit ones"));
        }
        if let Some(bits) = attribute("bitspersample").or(attribute("nbitspersample")).filter(|b| *b != "16") {
            return Err(invalid(format!("{bits}-bit samples: Philips carts write 16-bit ones")));
        }
        let compressed = match (attribute("compression"), attribute("compressflag"), attribute("compressmethod")) {
            (Some(method), _, _) => Some(method),
            (None, Some(flag), method) if flag.eq_ignore_ascii_case("true") => Some(method.unwrap_or("XLI")),
            _ => None,
        };
        let encoding = match (attribute("dataencoding").unwrap_or("Base64"), compressed) {
            ("Base64", Some(method)) if method.eq_ignore_ascii_case("XLI") => Encoding::Xli,
            ("Base64", Some(method)) if !method.eq_ignore_ascii_case("none") => {
                return Err(invalid(format!("waveform compression {method:?} is not one Philips carts write (expected XLI)")));
            }
            ("Base64", _) => Encoding::Base64,
            ("Plain", method) if method.is_none_or(|m| m.eq_ignore_ascii_case("none")) => Encoding::Plain,
            (other, _) => return Err(invalid(format!("waveform data encoding {other:?}: expected Base64 or Plain"))),
        };
        let offset = attribute("signaloffset").or(signal_value("signaloffset")).and_then(super::decimal).unwrap_or(0.0);
        Ok(Layout { labels: labels[..count].to_vec(), rate_hz, resolution_uv, offset, samples, encoding })
    }
}

/// The strip's leads in µV, residuals resolved and the calibration tail cut.
fn strip(parsed: Node, layout: &Layout) -> Result<Vec<Lead>, EcgError> {
    let text = parsed.text().unwrap_or_default();
    let (n, count) = (layout.samples, layout.labels.len());
    let mut values: Vec<Vec<i32>> = match layout.encoding {
        Encoding::Xli => xli::decode(&base64(text, "<parsedwaveforms>")?, count, n).map_err(|e| invalid(format!("XLI waveforms: {e}")))?,
        Encoding::Base64 => {
            let bytes = base64(text, "<parsedwaveforms>")?;
            if bytes.len() < 2 * n * count {
                return Err(invalid(format!(
                    "{} bytes of waveform data; {count} leads of {n} samples need {}",
                    bytes.len(),
                    2 * n * count
                )));
            }
            bytes[..2 * n * count]
                .chunks_exact(2 * n)
                .map(|lead| lead.chunks_exact(2).map(|p| i32::from(i16::from_le_bytes([p[0], p[1]]))).collect())
                .collect()
        }
        Encoding::Plain => {
            let numbers = text
                .split_ascii_whitespace()
                .take(n * count + 1)
                .map(|v| v.parse::<i32>().map_err(|_| invalid(format!("plain waveform value {v:?} is not an integer"))))
                .collect::<Result<Vec<i32>, EcgError>>()?;
            if numbers.len() != n * count {
                return Err(invalid(format!("{count} leads of {n} samples need {} values; the data holds {}", n * count, numbers.len())));
            }
            numbers.chunks_exact(n).map(<[i32]>::to_vec).collect()
        }
    };
    if layout.encoding == Encoding::Xli {
        add_back_residuals(&layout.labels, &mut values);
    }
    let ecg_end = ecg_length(&values);
    Ok(layout
        .labels
        .iter()
        .zip(values)
        .map(|(label, v)| Lead {
            label: label.clone(),
            samples_uv: v[..ecg_end].iter().map(|s| ((f64::from(*s) - layout.offset) * layout.resolution_uv) as f32).collect(),
            derived: false,
        })
        .collect())
}

fn base64(text: &str, what: &str) -> Result<Vec<u8>, EcgError> {
    super::base64_text(text).map_err(|e| invalid(format!("{what} {e}")))
}

/// XLI stores III, aVR, aVL and aVF as what is left after their values
/// from I and II: III = II − I − r, aVR = −r − (I + II)/2,
/// aVL = (I − III)/2 − r, aVF = (II + III)/2 − r, with C's division
/// (towards zero: Python's and JavaScript's floor misreads negatives).
fn add_back_residuals(labels: &[String], leads: &mut [Vec<i32>]) {
    let at = |name: &str| labels.iter().position(|l| l == name);
    let (Some(i), Some(ii), Some(iii), Some(avr), Some(avl), Some(avf)) = (at("I"), at("II"), at("III"), at("aVR"), at("aVL"), at("aVF"))
    else {
        return;
    };
    for k in 0..leads[i].len() {
        let (lead_i, lead_ii) = (leads[i][k], leads[ii][k]);
        let lead_iii = lead_ii - lead_i - leads[iii][k];
        leads[iii][k] = lead_iii;
        leads[avr][k] = -leads[avr][k] - (lead_i + lead_ii) / 2;
        leads[avl][k] = (lead_i - lead_iii) / 2 - leads[avl][k];
        leads[avf][k] = (lead_ii + lead_iii) / 2 - leads[avf][k];
    }
}

/// Samples before the strip's tail, where every lead holds the same value
/// (Philips' zeros and 1 mV calibration pulse after the ECG).
fn ecg_length(leads: &[Vec<i32>]) -> usize {
    let n = leads.first().map_or(0, Vec::len);
    if leads.len() < 2 {
        return n;
    }
    let same_in_every_lead = |k: usize| leads.iter().all(|l| l[k] == leads[0][k]);
    (0..n).rev().find(|&k| !same_in_every_lead(k)).map_or(n, |k| k + 1)
}

/// `<repbeats>`: each lead's beat, up to the 0x7FFF that pads it. Only
/// the uncompressed base64 carts write is read; why not, otherwise.
fn representative_beats(repbeats: Node) -> Result<MedianBeat, String> {
    let encoding = repbeats.attribute("dataencoding").unwrap_or("Base64");
    let compression = repbeats.attribute("compression").unwrap_or("None");
    if encoding != "Base64" || !compression.eq_ignore_ascii_case("none") {
        return Err(format!("written as {encoding} with compression {compression}, where Base64 uncompressed is read"));
    }
    let rate = repbeats.attribute("samplespersec").and_then(super::decimal).filter(|r| super::SAMPLING_RATES_HZ.contains(r));
    let rate = rate.ok_or("no sampling rate (samplespersec) of 50 to 20000 Hz")?;
    let resolution = repbeats.attribute("resolution").and_then(super::decimal).filter(|r| super::plausible_step_uv(*r));
    let resolution = resolution.ok_or("no resolution above 0 and below 1000 µV")?;
    let mut leads = Vec::new();
    for beat in children(repbeats, "repbeat").take(MAX_LEADS) {
        let label = beat.attribute("leadname").unwrap_or_default().trim();
        let text = child(beat, "waveform").and_then(|w| w.text()).unwrap_or_default();
        let bytes = super::base64_text(text).map_err(|e| format!("the beat of {label} {e}"))?;
        let samples_uv: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|p| i16::from_le_bytes([p[0], p[1]]))
            .take_while(|v| *v != i16::MAX)
            .map(|v| (f64::from(v) * resolution) as f32)
            .collect();
        leads.push(Lead { label: label.to_owned(), samples_uv, derived: false });
    }
    let shortest = leads.iter().map(|l| l.samples_uv.len()).min().unwrap_or(0);
    for lead in &mut leads {
        lead.samples_uv.truncate(shortest);
    }
    Ok(MedianBeat { sampling_rate_hz: rate, leads })
}

/// `dataacquisition`'s `date` (YYYY-MM-DD) and `time` (HH:MM:SS).
fn acquired(acquisition: Node) -> Option<String> {
    let mut date = acquisition.attribute("date")?.split('-').map(|p| p.parse::<u32>().ok());
    let date = super::calendar_date(date.next()??, date.next()??, date.next()??)?;
    let time = acquisition.attribute("time").map(|t| t.replace(':', "")).filter(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()));
    super::dicom::format_date_time(&date, time.as_deref())
}

fn patient(general: Node) -> Patient {
    let name = child(general, "name").map(|n| {
        let part = |p| child_text(n, p).unwrap_or_default();
        super::dicom::display_name(&format!("{}^{}^{}", part("lastname"), part("firstname"), part("middlename")))
    });
    let age = child(general, "age");
    Patient {
        name: name.filter(|n| !n.is_empty()),
        id: child_text(general, "patientid").map(str::to_owned),
        sex: child_text(general, "sex").and_then(super::sex),
        birth_date: age
            .and_then(|a| child_text(a, "dateofbirth"))
            .map(|d| d.replace('-', ""))
            .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())),
        age_years: age.and_then(|a| child_text(a, "years")).and_then(|y| y.parse().ok()),
    }
}

/// The cart's global measurements: 1.04's `<globalmeasurements>`, or
/// 1.03's `<interpretationmeasurements>` and their `mean…` names.
fn measurements(interpretation: Node) -> DeviceMeasurements {
    let Some(global) = child(interpretation, "globalmeasurements").or_else(|| child(interpretation, "interpretationmeasurements")) else {
        return DeviceMeasurements::default();
    };
    // Words ("Failed", "Indeterminate") are what the cart writes when it could not measure.
    let value = |names: &[&'static str]| names.iter().find_map(|n| child_text(global, n).and_then(super::decimal));
    DeviceMeasurements {
        hr_bpm: value(&["heartrate", "meanventrate"]),
        rr_ms: value(&["rrint", "meanrrint"]),
        pr_ms: value(&["print", "meanprint"]),
        p_ms: value(&["pdur", "meanpdur"]),
        qrs_ms: value(&["qrsdur", "meanqrsdur"]),
        qt_ms: value(&["qtint", "meanqtint"]),
        qtc_ms: value(&["qtcb", "meanqtc"]),
        p_axis_deg: value(&["pfrontaxis"]),
        qrs_axis_deg: value(&["qrsfrontaxis"]),
        t_axis_deg: value(&["tfrontaxis"]),
    }
}

/// Each statement as the finding with its criterion in brackets, then the
/// severity ("ABNORMAL ECG") as Philips prints it last.
fn statements(interpretation: Node) -> Vec<String> {
    let mut lines: Vec<String> = children(interpretation, "statement")
        .filter_map(|s| {
            let left = child_text(s, "leftstatement");
            let right = child_text(s, "rightstatement");
            match (left, right) {
                (Some(l), Some(r)) => Some(format!("{l} ({r})")),
                (Some(l), None) => Some(l.to_owned()),
                (None, Some(r)) => Some(r.to_owned()),
                (None, None) => None,
            }
        })
        .collect();
    if let Some(severity) = child_text(interpretation, "severity").map(|s| s.trim_matches(|c: char| c == '-' || c.is_whitespace()))
        && !severity.is_empty()
    {
        lines.push(severity.to_owned());
    }
    lines
}

fn filters(parsed: Node) -> Option<String> {
    let hz = |name| parsed.attribute(name).and_then(super::decimal);
    let mut parts = Vec::new();
    if let Some(high) = hz("hipass") {
        parts.push(format!("high-pass {high} Hz"));
    }
    if let Some(low) = hz("lowpass") {
        parts.push(format!("low-pass {low} Hz"));
    }
    if parsed.attribute("notchfiltered").is_some_and(|f| f.eq_ignore_ascii_case("true")) {
        match hz("notchfilterfreqs").filter(|f| *f > 0.0) {
            Some(mains) => parts.push(format!("mains {mains} Hz")),
            None => parts.push("mains notch".to_owned()),
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
