//! PhysioNet WFDB records: a `.hea` text header naming one or more signal
//! files in format 16 (16-bit little endian), 212 (two 12-bit samples in
//! three bytes) or 80 (8-bit offset binary), and MIT annotation files
//! (`.atr`) with reference beat labels.
//!
//! Physical value = (stored − baseline) / gain, in the header's units
//! (millivolts unless it says otherwise). The header's sample count and
//! per-signal checksums are verified: a truncated or altered `.dat` is refused.

use crate::record::{EcgError, EcgRecord, Lead, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::Wfdb;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// One signal line of the header.
#[derive(Debug)]
struct SignalSpec {
    file: String,
    format: u32,
    byte_offset: usize,
    gain: f64,
    baseline: f64,
    units_to_uv: f64,
    checksum: Option<i64>,
    label: String,
}

/// Names of the signal files a header refers to, in order, without repeats:
/// what an upload must include beside the `.hea`.
pub fn data_files(header: &str) -> Result<Vec<String>, EcgError> {
    let (_, specs, _) = parse_header(header)?;
    let mut files: Vec<String> = Vec::new();
    for spec in specs {
        if !files.contains(&spec.file) {
            files.push(spec.file);
        }
    }
    Ok(files)
}

/// Reads a record from its header text; `open` returns the bytes of a signal
/// file named in the header.
pub fn read(header: &str, mut open: impl FnMut(&str) -> Result<Vec<u8>, EcgError>) -> Result<EcgRecord, EcgError> {
    let (record_line, specs, comments) = parse_header(header)?;
    let mut fields = record_line.split_whitespace();
    let name = fields.next().unwrap_or_default();
    if name.contains('/') {
        return Err(invalid(format!("multi-segment record {name} is not supported")));
    }
    let nsig: usize = parse_field(fields.next(), "number of signals")?;
    if nsig != specs.len() {
        return Err(invalid(format!("header announces {nsig} signals but lists {}", specs.len())));
    }
    let rate_field = fields.next().unwrap_or("250");
    let rate: f64 = rate_field
        .split(['/', '('])
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| invalid(format!("sampling frequency {rate_field:?} is not a number")))?;
    let declared_samples: Option<usize> = match fields.next() {
        Some(f) => Some(parse_field(Some(f), "number of samples")?),
        None => None,
    };
    let base_time = fields.next();
    let base_date = fields.next();

    // Signals are grouped by file; within a file, interleaved frame by frame.
    let mut leads: Vec<Option<Lead>> = (0..specs.len()).map(|_| None).collect();
    let mut done = vec![false; specs.len()];
    for first in 0..specs.len() {
        if done[first] {
            continue;
        }
        let group: Vec<usize> = (first..specs.len()).filter(|&i| specs[i].file == specs[first].file).collect();
        let spec0 = &specs[first];
        if group.iter().any(|&i| specs[i].format != spec0.format || specs[i].byte_offset != spec0.byte_offset) {
            return Err(invalid(format!("signals in {} differ in format or offset", spec0.file)));
        }
        let bytes = open(&spec0.file)?;
        let body = bytes.get(spec0.byte_offset..).unwrap_or_default();
        let per_frame = group.len();
        let values = unpack(spec0.format, body, &spec0.file)?;
        let frames = values.len() / per_frame;
        if let Some(n) = declared_samples {
            let expected_values = n * per_frame;
            // Format 212 pads an odd count of values to a whole byte triple.
            let slack = if spec0.format == 212 { 1 } else { 0 };
            if values.len() < expected_values || values.len() > expected_values + slack {
                return Err(invalid(format!("header says {n} samples per signal, {} holds {frames}", spec0.file)));
            }
        }
        let frames = declared_samples.unwrap_or(frames);
        for (k, &index) in group.iter().enumerate() {
            let spec = &specs[index];
            let mut checksum: i64 = 0;
            let scale = spec.units_to_uv / spec.gain;
            let samples_uv = (0..frames)
                .map(|f| {
                    let v = values[f * per_frame + k];
                    checksum += v as i64;
                    ((v as f64 - spec.baseline) * scale) as f32
                })
                .collect();
            if let Some(want) = spec.checksum
                && (checksum & 0xFFFF) != (want & 0xFFFF)
            {
                return Err(invalid(format!(
                    "signal {} ({}): header checksum {want}, data sums to {}",
                    index,
                    spec.label,
                    (checksum & 0xFFFF) as i16
                )));
            }
            leads[index] = Some(Lead { label: spec.label.clone(), samples_uv, derived: false });
            done[index] = true;
        }
    }

    let mut record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz: rate,
        leads: leads.into_iter().flatten().collect(),
        patient: patient_from_comments(&comments),
        acquired: acquired(base_time, base_date),
        device: Default::default(),
        warnings: Vec::new(),
        received_as: None,
    };
    record.patient.id.get_or_insert_with(|| name.to_string());
    crate::leads::finish(record)
}

fn parse_field<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, EcgError> {
    let field = field.ok_or_else(|| invalid(format!("record line lacks the {what}")))?;
    field.parse().map_err(|_| invalid(format!("{what} {field:?} is not a number")))
}

fn parse_header(header: &str) -> Result<(String, Vec<SignalSpec>, Vec<String>), EcgError> {
    let mut record_line = None;
    let mut specs = Vec::new();
    let mut comments = Vec::new();
    for line in header.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            comments.push(comment.trim().to_string());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if record_line.is_none() {
            record_line = Some(line.to_string());
        } else {
            specs.push(parse_signal(line)?);
        }
    }
    let record_line = record_line.ok_or_else(|| invalid("header has no record line"))?;
    Ok((record_line, specs, comments))
}

fn parse_signal(line: &str) -> Result<SignalSpec, EcgError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 2 {
        return Err(invalid(format!("signal line {line:?} has no format")));
    }
    let format_field = fields[1];
    let digits_end = format_field.find(|c: char| !c.is_ascii_digit()).unwrap_or(format_field.len());
    let format: u32 = format_field[..digits_end].parse().map_err(|_| invalid(format!("signal format {format_field:?} is not a number")))?;
    if !matches!(format, 16 | 212 | 80) {
        return Err(invalid(format!("signal format {format} is not supported (16, 212 and 80 are)")));
    }
    let rest = &format_field[digits_end..];
    if rest.starts_with('x') || rest.contains(':') {
        return Err(invalid(format!("oversampled or skewed signals ({format_field}) are not supported")));
    }
    let byte_offset = match rest.strip_prefix('+') {
        Some(n) => n.parse().map_err(|_| invalid(format!("byte offset in {format_field:?}")))?,
        None => 0,
    };
    let adc_zero: f64 = fields.get(4).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    let (gain, baseline, units) = match fields.get(2) {
        Some(spec) => parse_gain(spec, adc_zero)?,
        None => (200.0, adc_zero, "mV".to_string()),
    };
    let units_to_uv = match units.as_str() {
        "mV" => 1000.0,
        "uV" | "µV" => 1.0,
        "V" => 1_000_000.0,
        other => return Err(invalid(format!("signal units {other:?} are not a voltage"))),
    };
    Ok(SignalSpec {
        file: fields[0].to_string(),
        format,
        byte_offset,
        gain,
        baseline,
        units_to_uv,
        checksum: fields.get(6).and_then(|f| f.parse().ok()),
        label: if fields.len() > 8 { fields[8..].join(" ") } else { String::new() },
    })
}

/// `200`, `200(0)/mV`, `2000/uV`: gain in stored units per physical unit,
/// optional baseline (else ADC zero), optional units (else mV).
fn parse_gain(spec: &str, adc_zero: f64) -> Result<(f64, f64, String), EcgError> {
    let (number_part, units) = match spec.split_once('/') {
        Some((n, u)) => (n, u.to_string()),
        None => (spec, "mV".to_string()),
    };
    let (gain_text, baseline) = match number_part.split_once('(') {
        Some((g, b)) => {
            let b = b.trim_end_matches(')');
            (g, b.parse().map_err(|_| invalid(format!("baseline in gain {spec:?}")))?)
        }
        None => (number_part, adc_zero),
    };
    let gain: f64 = gain_text.parse().map_err(|_| invalid(format!("gain {spec:?} is not a number")))?;
    // WFDB: a gain of 0 means "uncalibrated", conventionally 200 per mV.
    Ok((if gain == 0.0 { 200.0 } else { gain }, baseline, units))
}

fn unpack(format: u32, body: &[u8], file: &str) -> Result<Vec<i32>, EcgError> {
    Ok(match format {
        16 => {
            if !body.len().is_multiple_of(2) {
                return Err(invalid(format!("{file}: odd byte count {} for 16-bit samples", body.len())));
            }
            body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i32).collect()
        }
        80 => body.iter().map(|&b| b as i32 - 128).collect(),
        212 => {
            let sign12 = |v: i32| if v & 0x800 != 0 { v - 0x1000 } else { v };
            let mut out = Vec::with_capacity(body.len() / 3 * 2 + 1);
            let mut triples = body.chunks_exact(3);
            for t in &mut triples {
                let (b0, b1, b2) = (t[0] as i32, t[1] as i32, t[2] as i32);
                out.push(sign12(b0 | ((b1 & 0x0F) << 8)));
                out.push(sign12(b2 | ((b1 & 0xF0) << 4)));
            }
            if let [b0, b1] = *triples.remainder() {
                out.push(sign12(b0 as i32 | ((b1 as i32 & 0x0F) << 8)));
            }
            out
        }
        _ => unreachable!("format checked when the header was parsed"),
    })
}

/// PTB-style `# age: 81` / `# sex: female` and MIT-style `# 69 M ...`.
fn patient_from_comments(comments: &[String]) -> Patient {
    let mut patient = Patient::default();
    for c in comments {
        let lower = c.to_ascii_lowercase();
        if let Some(age) = lower.strip_prefix("age:") {
            patient.age_years = age.trim().parse().ok();
        } else if let Some(sex) = lower.strip_prefix("sex:") {
            patient.sex = super::sex(sex);
        } else if patient.age_years.is_none() {
            let mut words = c.split_whitespace();
            if let (Some(age), Some(sex)) = (words.next(), words.next())
                && let (Ok(age), Some(sex)) = (age.parse::<u32>(), super::sex(sex))
            {
                patient.age_years = Some(age);
                patient.sex = Some(sex);
            }
        }
    }
    patient
}

/// WFDB base time `HH:MM:SS` and date `DD/MM/YYYY`.
fn acquired(time: Option<&str>, date: Option<&str>) -> Option<String> {
    let date = date?;
    let parts: Vec<&str> = date.split('/').collect();
    let [d, m, y] = parts.as_slice() else { return None };
    let mut out = format!("{y:0>4}-{m:0>2}-{d:0>2}");
    if let Some(t) = time {
        let t = t.split('.').next().unwrap_or(t);
        out.push('T');
        out.push_str(t);
    }
    Some(out)
}

/// One MIT annotation: sample index and WFDB code (1 = N, 5 = V, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotation {
    pub sample: u64,
    pub code: u8,
}

/// Reads an MIT-format annotation file (`.atr`).
pub fn read_annotations(bytes: &[u8]) -> Result<Vec<Annotation>, EcgError> {
    let mut out = Vec::new();
    let mut time: u64 = 0;
    let mut i = 0;
    let word = |i: usize| -> Option<u16> { Some(u16::from_le_bytes([*bytes.get(i)?, *bytes.get(i + 1)?])) };
    while let Some(w) = word(i) {
        i += 2;
        let (code, interval) = ((w >> 10) as u8, (w & 0x3FF) as u64);
        match code {
            0 if interval == 0 => return Ok(out),
            59 => {
                // SKIP: a 32-bit interval follows, high 16 bits first.
                let (hi, lo) = (word(i), word(i + 2));
                let (Some(hi), Some(lo)) = (hi, lo) else { break };
                let skip = ((hi as u32) << 16 | lo as u32) as i32;
                time = time.checked_add_signed(skip as i64).ok_or_else(|| invalid("annotation SKIP before start"))?;
                i += 4;
            }
            60..=62 => {}                                   // NUM, SUB, CHN: attributes of the previous annotation
            63 => i += (interval as usize).div_ceil(2) * 2, // AUX string
            _ => {
                time += interval;
                out.push(Annotation { sample: time, code });
            }
        }
    }
    Err(invalid("annotation file ends without its end marker"))
}

/// WFDB's `isqrs`: the codes that label a beat (N, L, R, a, V, F, J, A, S,
/// E, j, /, Q, B, e, n, x, f, r), as EC57 scoring counts them.
pub fn is_beat(code: u8) -> bool {
    matches!(code, 1..=13 | 25 | 30 | 34 | 35 | 37 | 38 | 41)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_212_unpacks_two_signed_twelve_bit_samples_per_triple() {
        // 0x7FF and -1 (0xFFF): low byte, nibbles (hi of 2nd | hi of 1st), low byte.
        let values = unpack(212, &[0xFF, 0xF7, 0xFF], "t").unwrap();
        assert_eq!(values, vec![2047, -1]);
    }

    #[test]
    fn header_sample_count_must_match_the_data() {
        let header = "r 1 500 10\nr.dat 16 200/mV 16 0 0 0 0 I\n";
        let err = read(header, |_| Ok(vec![0u8; 18])).unwrap_err().to_string();
        assert!(err.contains("header says 10 samples per signal, r.dat holds 9"), "{err}");
    }

    #[test]
    fn gain_baseline_and_units_scale_to_microvolts() {
        let header = "r 1 500 2\nr.dat 16 400(10)/mV 16 0 0 420 0 II\n";
        let data: Vec<u8> = [410i16, 10].iter().flat_map(|v| v.to_le_bytes()).collect();
        let record = read(header, |_| Ok(data.clone())).unwrap();
        assert_eq!(record.leads[0].samples_uv, vec![1000.0, 0.0]);
    }
}
