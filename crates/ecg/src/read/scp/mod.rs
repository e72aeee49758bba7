//! SCP-ECG (EN 1064, ISO 11073-91064), protocol versions 1.0 to 3.0.
//!
//! A record is a CRC and length followed by sections, each with its own
//! CRC-CCITT, located through section 0's pointers. What is read:
//!
//! - 1: patient and acquisition tags (text as UTF-8, else GB18030 or Latin-1
//!   as the device's language byte says);
//! - 2: Huffman tables (or the default table), 3: leads and the
//!   reference-beat-subtraction flag, 4: QRS locations and protected zones,
//!   5: reference beats, 6: rhythm (or residual) data, possibly bimodally
//!   decimated;
//! - 7: the device's global measurements, 8: its interpretation statements.
//!
//! Rhythm = residual + reference beat in each subtraction zone; outside the
//! protected zones, bimodal compression's decimated samples are linearly
//! interpolated back to the reference beat's rate.

mod huffman;

use crate::read::lead_code_label;
use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::ScpEcg;

/// Work limits. Every size in a record is declared by its sender; these
/// bound what a hostile one can make us allocate or compute, far above any
/// resting ECG (10 s at 500–1000 Hz, 5,000–10,000 samples a lead):
/// - samples in one lead: 10 minutes at 1 kHz;
const MAX_SAMPLES_PER_LEAD: usize = 600_000;
/// - samples in the whole record (about 70 MB as the reader holds them);
const MAX_SAMPLES: usize = 4_000_000;
/// - the bimodal decimation factor (carts use 2 to 4);
const MAX_DECIMATION: usize = 16;
/// - a reference beat: 10 s at 1 kHz (a beat lasts about one second).
const MAX_REFERENCE_BEAT_SAMPLES: usize = 10_000;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// True when the bytes look like an SCP-ECG record (section 0's "SCPECG").
pub fn looks_like(bytes: &[u8]) -> bool {
    bytes.get(16..22) == Some(b"SCPECG")
}

struct Sections<'a> {
    bytes: &'a [u8],
    /// (offset, length) of each section by number, header included.
    located: Vec<Option<(usize, usize)>>,
}

impl<'a> Sections<'a> {
    /// The body of section `n` (after its 16-byte header), if present.
    fn body(&self, n: usize) -> Option<&'a [u8]> {
        let (offset, length) = (*self.located.get(n)?)?;
        Some(&self.bytes[offset + 16..offset + length])
    }
}

/// Reads an SCP-ECG record.
pub fn read(bytes: &[u8]) -> Result<EcgRecord, EcgError> {
    if bytes.len() < 22 || !looks_like(bytes) {
        return Err(invalid("no section 0 with its \"SCPECG\" marker at byte 16"));
    }
    let declared = u32_at(bytes, 2)? as usize;
    if declared > bytes.len() {
        return Err(invalid(format!("record says it is {declared} bytes long, the file has {}", bytes.len())));
    }
    let bytes = &bytes[..declared];
    let sections = locate_sections(bytes)?;

    let leads_body = sections.body(3).ok_or_else(|| invalid("section 3 (lead definition) is missing"))?;
    let lead_defs = parse_leads(leads_body)?;
    let counts = sample_counts(&lead_defs.leads)?;
    let tables = match sections.body(2) {
        Some(body) => huffman::parse_tables(body)?,
        None => Vec::new(), // no section 2: samples are stored as 16-bit integers
    };
    let qrs = sections.body(4).map(parse_qrs).transpose()?;
    let rhythm_body = sections.body(6).ok_or_else(|| invalid("section 6 (rhythm data) is missing"))?;
    let rhythm = parse_data_section(rhythm_body, 6, lead_defs.leads.len())?;

    let reference = match (lead_defs.reference_beat_subtracted, sections.body(5)) {
        (true, Some(body)) => {
            let beat = parse_data_section(body, 5, lead_defs.leads.len())?;
            let qrs = qrs.as_ref().ok_or_else(|| invalid("reference beat subtracted but section 4 is missing"))?;
            let samples = (qrs.reference_length_ms as u64 * 1000 / beat.interval_us.max(1) as u64) as usize;
            if samples > MAX_REFERENCE_BEAT_SAMPLES {
                return Err(invalid(format!(
                    "reference beat of {} ms at {} µs per sample is {samples} samples; at most {MAX_REFERENCE_BEAT_SAMPLES} are read",
                    qrs.reference_length_ms, beat.interval_us
                )));
            }
            Some((beat, samples))
        }
        (true, None) => return Err(invalid("reference beat subtracted but section 5 is missing")),
        (false, _) => None,
    };

    // Bimodal: the rhythm was stored at a lower rate outside protected zones.
    let output_interval_us = match (&reference, rhythm.bimodal) {
        (Some((beat, _)), true) => beat.interval_us,
        _ => rhythm.interval_us,
    };
    let decimation = (rhythm.interval_us / output_interval_us.max(1)).max(1) as usize;
    if decimation > MAX_DECIMATION {
        return Err(invalid(format!(
            "bimodal decimation of {decimation} (rhythm every {} µs, reference beat every {output_interval_us} µs); at most {MAX_DECIMATION} is read",
            rhythm.interval_us
        )));
    }

    let protected = qrs.as_ref().map(|q| q.protected.as_slice()).unwrap_or_default();
    let mut leads = Vec::with_capacity(lead_defs.leads.len());
    for (index, def) in lead_defs.leads.iter().enumerate() {
        let count = counts[index];
        let is_protected = protected_mask(count, protected);
        let stored_count = if decimation > 1 { stored_samples(&is_protected, decimation) } else { count };
        let residual = decode_lead(&rhythm, index, &tables, stored_count)?;
        let mut samples: Vec<f64> = if decimation > 1 { undecimate(&residual, &is_protected, decimation) } else { residual };
        if let (Some((beat, beat_len)), Some(q)) = (&reference, &qrs) {
            let beat_samples = decode_lead(beat, index, &tables, *beat_len)?;
            add_reference_beat(&mut samples, &beat_samples, q);
        }
        leads.push(Lead {
            label: lead_code_label(def.code).map(str::to_string).unwrap_or_else(|| format!("lead code {}", def.code)),
            samples_uv: samples.into_iter().map(|v| v as f32).collect(),
            derived: false,
        });
    }

    let header = sections.body(1).map(parse_header).transpose()?.unwrap_or_default();
    let mut device = DeviceReport { model: header.model, ..Default::default() };
    if let Some(body) = sections.body(7) {
        device.measurements = parse_measurements(body);
    }
    if let Some(body) = sections.body(8) {
        device.statements = parse_statements(body, header.language);
    }
    let record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz: 1_000_000.0 / output_interval_us as f64,
        leads,
        patient: header.patient,
        acquired: header.acquired,
        device,
        warnings: Vec::new(),
        received_as: None,
    };
    crate::leads::finish(record)
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, EcgError> {
    bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or_else(|| invalid(format!("cut short at byte {at}")))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, EcgError> {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| invalid(format!("cut short at byte {at}")))
}

/// CRC-CCITT as EN 1064 computes it (polynomial 0x1021, initial 0xFFFF).
fn crc_ccitt(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { crc << 1 ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

fn locate_sections(bytes: &[u8]) -> Result<Sections<'_>, EcgError> {
    let section0_length = u32_at(bytes, 10)? as usize;
    let section0 = bytes
        .get(6..6 + section0_length)
        .ok_or_else(|| invalid(format!("section 0 claims {section0_length} bytes, the record ends first")))?;
    let mut located = vec![None; 19];
    let mut at = 16;
    while at + 10 <= section0.len() {
        let number = u16_at(section0, at)? as usize;
        let length = u32_at(section0, at + 2)? as usize;
        let index = u32_at(section0, at + 6)? as usize;
        at += 10;
        if length == 0 || index == 0 {
            continue;
        }
        let offset = index - 1;
        let section = bytes.get(offset..offset + length).ok_or_else(|| {
            invalid(format!(
                "section {number} is said to span bytes {offset}..{} but the record has {} (truncated?)",
                offset + length,
                bytes.len()
            ))
        })?;
        if length < 16 {
            return Err(invalid(format!("section {number} is {length} bytes, shorter than its header")));
        }
        let stored_crc = u16::from_le_bytes([section[0], section[1]]);
        let computed = crc_ccitt(&section[2..]);
        if stored_crc != computed {
            return Err(invalid(format!(
                "section {number} CRC is {stored_crc:#06x}, its bytes give {computed:#06x} (damaged or truncated)"
            )));
        }
        let id = u16::from_le_bytes([section[2], section[3]]) as usize;
        if id != number {
            return Err(invalid(format!("section 0 points to section {number}, the header there says {id}")));
        }
        if number < located.len() {
            located[number] = Some((offset, length));
        }
    }
    Ok(Sections { bytes, located })
}

struct LeadDef {
    start: u32,
    end: u32,
    code: u16,
}

struct LeadDefs {
    reference_beat_subtracted: bool,
    leads: Vec<LeadDef>,
}

fn parse_leads(body: &[u8]) -> Result<LeadDefs, EcgError> {
    let count = *body.first().ok_or_else(|| invalid("section 3 is empty"))? as usize;
    if count == 0 {
        return Err(invalid("section 3 defines zero leads"));
    }
    let flags = body.get(1).copied().unwrap_or(0);
    let mut leads = Vec::with_capacity(count);
    for i in 0..count {
        let at = 2 + 9 * i;
        let entry = body.get(at..at + 9).ok_or_else(|| invalid(format!("section 3 ends before lead {}", i + 1)))?;
        leads.push(LeadDef {
            start: u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]),
            end: u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]),
            code: entry[8] as u16,
        });
    }
    Ok(LeadDefs { reference_beat_subtracted: flags & 1 != 0, leads })
}

struct QrsLocations {
    reference_length_ms: u16,
    /// Sample of the fiducial within the reference beat.
    reference_fiducial: u16,
    /// (start, fiducial, end) of each subtraction zone, 1-based samples.
    zones: Vec<(u32, u32, u32)>,
    /// (start, end) of each protected zone, 1-based samples.
    protected: Vec<(u32, u32)>,
}

fn parse_qrs(body: &[u8]) -> Result<QrsLocations, EcgError> {
    let reference_length_ms = u16_at(body, 0)?;
    let reference_fiducial = u16_at(body, 2)?;
    let count = u16_at(body, 4)? as usize;
    // Each zone takes 14 bytes: a count the section cannot hold fails on
    // the first missing one, before a large allocation.
    let mut zones = Vec::with_capacity(count.min(body.len() / 14));
    let mut at = 6;
    for _ in 0..count {
        // beat type (2), start, fiducial, end (4 each)
        zones.push((u32_at(body, at + 2)?, u32_at(body, at + 6)?, u32_at(body, at + 10)?));
        at += 14;
    }
    let mut protected = Vec::with_capacity(count.min(body.len() / 8));
    for _ in 0..count {
        if at + 8 > body.len() {
            break; // protected zones are present only with bimodal compression
        }
        protected.push((u32_at(body, at)?, u32_at(body, at + 4)?));
        at += 8;
    }
    Ok(QrsLocations { reference_length_ms, reference_fiducial, zones, protected })
}

struct DataSection<'a> {
    /// Nanovolts per stored unit.
    amplitude_nv: u16,
    interval_us: u32,
    difference: u8,
    bimodal: bool,
    lead_bytes: Vec<&'a [u8]>,
}

fn parse_data_section(body: &[u8], number: u8, leads: usize) -> Result<DataSection<'_>, EcgError> {
    let amplitude_nv = u16_at(body, 0)?;
    let interval_us = u16_at(body, 2)? as u32;
    if amplitude_nv == 0 || interval_us == 0 {
        return Err(invalid(format!(
            "section {number}: amplitude multiplier {amplitude_nv} nV and sample interval {interval_us} µs must be non-zero"
        )));
    }
    let difference = *body.get(4).ok_or_else(|| invalid(format!("section {number} header cut short")))?;
    let bimodal = body.get(5).copied().unwrap_or(0) == 1;
    let mut at = 6 + 2 * leads;
    let mut lead_bytes = Vec::with_capacity(leads);
    for lead in 0..leads {
        let length = u16_at(body, 6 + 2 * lead)? as usize;
        let data = body.get(at..at + length).ok_or_else(|| {
            invalid(format!(
                "section {number}: lead {} needs bytes {at}..{} but the section has {} (truncated)",
                lead + 1,
                at + length,
                body.len()
            ))
        })?;
        lead_bytes.push(data);
        at += length;
    }
    Ok(DataSection { amplitude_nv, interval_us, difference, bimodal, lead_bytes })
}

/// One lead of section 5 or 6, in microvolts.
fn decode_lead(section: &DataSection, lead: usize, tables: &[huffman::Table], count: usize) -> Result<Vec<f64>, EcgError> {
    let bytes = section.lead_bytes[lead];
    let values = if tables.is_empty() {
        if bytes.len() < count * 2 {
            return Err(invalid(format!("lead {} holds {} samples, {count} expected", lead + 1, bytes.len() / 2)));
        }
        let raw: Vec<i32> = bytes.chunks_exact(2).take(count).map(|b| i16::from_le_bytes([b[0], b[1]]) as i32).collect();
        undo_differences(raw, section.difference)
    } else {
        huffman::decode(bytes, tables, section.difference, count)
            .map_err(|e| invalid(format!("lead {}: {}", lead + 1, e.to_string().trim_start_matches("SCP-ECG: "))))?
    };
    let scale = section.amplitude_nv as f64 / 1000.0;
    Ok(values.into_iter().map(|v| v as f64 * scale).collect())
}

fn undo_differences(mut values: Vec<i32>, difference: u8) -> Vec<i32> {
    for n in 0..values.len() {
        values[n] = match (difference, n) {
            // Wrapping, as in the Huffman path: hostile values must not overflow.
            (1, 1..) => values[n].wrapping_add(values[n - 1]),
            (2, 2..) => values[n].wrapping_add(values[n - 1].wrapping_mul(2)).wrapping_sub(values[n - 2]),
            _ => values[n],
        };
    }
    values
}

/// Each lead's sample count from section 3, checked against the work limits.
fn sample_counts(leads: &[LeadDef]) -> Result<Vec<usize>, EcgError> {
    let mut total = 0usize;
    let mut counts = Vec::with_capacity(leads.len());
    for (index, def) in leads.iter().enumerate() {
        let count = def
            .end
            .checked_sub(def.start)
            .map(|n| n as usize + 1)
            .ok_or_else(|| invalid(format!("lead {}: end sample {} before start sample {}", index + 1, def.end, def.start)))?;
        if count > MAX_SAMPLES_PER_LEAD {
            return Err(invalid(format!(
                "lead {}: samples {} to {} are {count} samples; at most {MAX_SAMPLES_PER_LEAD} a lead are read",
                index + 1,
                def.start,
                def.end
            )));
        }
        total += count;
        if total > MAX_SAMPLES {
            return Err(invalid(format!("the leads declare more than {MAX_SAMPLES} samples in all")));
        }
        counts.push(count);
    }
    Ok(counts)
}

/// Which of a lead's `count` samples (1-based in the zones) lie in a
/// protected zone: one pass over the zones and one over the samples,
/// however many zones a record declares or how they overlap.
fn protected_mask(count: usize, protected: &[(u32, u32)]) -> Vec<bool> {
    let mut depth = vec![0i32; count + 1];
    for &(start, end) in protected {
        let (start, end) = (start.max(1) as usize, (end as usize).min(count));
        if start <= end {
            depth[start - 1] += 1;
            depth[end] -= 1;
        }
    }
    let mut inside = 0;
    depth[..count]
        .iter()
        .map(|d| {
            inside += d;
            inside > 0
        })
        .collect()
}

/// How many values a bimodally compressed lead stores.
fn stored_samples(is_protected: &[bool], decimation: usize) -> usize {
    let mut stored = 0;
    let mut run = 0;
    for &protected in is_protected {
        if protected {
            stored += 1;
            run = 0;
        } else {
            if run % decimation == 0 {
                stored += 1;
            }
            run += 1;
        }
    }
    stored
}

/// Expands bimodal data: protected samples as stored, the rest linearly
/// interpolated between successive decimated values.
fn undecimate(stored: &[f64], is_protected: &[bool], decimation: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(is_protected.len());
    let mut next = 0;
    let mut run = 0;
    for &protected in is_protected {
        if protected {
            out.push(stored.get(next).copied().unwrap_or(0.0));
            next += 1;
            run = 0;
            continue;
        }
        if run % decimation == 0 {
            next += 1;
        }
        let current = stored.get(next - 1).copied().unwrap_or(0.0);
        let following = stored.get(next).copied().unwrap_or(current);
        let fraction = (run % decimation) as f64 / decimation as f64;
        out.push(current + (following - current) * fraction);
        run += 1;
    }
    out
}

/// Adds the reference beat back in each subtraction zone. Each zone's
/// samples are clipped to the lead and to the beat, and zones are taken in
/// order with overlaps skipped, so the work is at most one pass over the
/// lead however the zones are declared.
fn add_reference_beat(samples: &mut [f64], beat: &[f64], qrs: &QrsLocations) {
    let mut zones = qrs.zones.clone();
    zones.sort_unstable();
    let mut done_until = 0i64; // last sample (1-based) already added to
    for (start, fiducial, end) in zones {
        // Sample s (1-based) takes beat[s - fiducial + reference_fiducial].
        let shift = qrs.reference_fiducial as i64 - fiducial as i64;
        let first = (start as i64).max(done_until + 1).max(1).max(-shift);
        let last = (end as i64).min(samples.len() as i64).min(beat.len() as i64 - 1 - shift);
        for sample in first..=last {
            samples[(sample - 1) as usize] += beat[(sample + shift) as usize];
        }
        done_until = done_until.max(last);
    }
}

#[derive(Default)]
struct Header {
    patient: Patient,
    acquired: Option<String>,
    model: Option<String>,
    language: u8,
}

fn parse_header(body: &[u8]) -> Result<Header, EcgError> {
    let mut header = Header::default();
    let mut fields: Vec<(u8, &[u8])> = Vec::new();
    let mut at = 0;
    while at + 3 <= body.len() {
        let tag = body[at];
        let length = u16::from_le_bytes([body[at + 1], body[at + 2]]) as usize;
        if tag == 255 {
            break;
        }
        let value = body
            .get(at + 3..at + 3 + length)
            .ok_or_else(|| invalid(format!("section 1 tag {tag} claims {length} bytes past the section's end")))?;
        fields.push((tag, value));
        at += 3 + length;
    }
    // The language byte (tag 14, offset 16) decides how to read text.
    if let Some((_, device)) = fields.iter().find(|(t, _)| *t == 14) {
        header.language = device.get(16).copied().unwrap_or(0);
        header.model = device.get(8..14).map(|m| decode_text(m, 0)).filter(|m| !m.is_empty());
    }
    let language = header.language;
    let text = |tag: u8| fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| decode_text(v, language)).filter(|s| !s.is_empty());
    let family = text(0);
    let given = text(1);
    header.patient.name = match (family, given) {
        (Some(f), Some(g)) if f.chars().chain(g.chars()).any(|c| c as u32 >= 0x2E80) => Some(format!("{f}{g}")),
        (Some(f), Some(g)) => Some(format!("{f} {g}")),
        (f, g) => f.or(g),
    };
    header.patient.id = text(2);
    for (tag, value) in &fields {
        match (*tag, value.len()) {
            (4, 3..) => {
                let age = u16::from_le_bytes([value[0], value[1]]) as u32;
                if value[2] == 1 && age > 0 {
                    header.patient.age_years = Some(age);
                }
            }
            (5, 4..) => {
                let year = u16::from_le_bytes([value[0], value[1]]);
                if year > 0 {
                    header.patient.birth_date = Some(format!("{year:04}{:02}{:02}", value[2], value[3]));
                }
            }
            (8, 1..) => {
                header.patient.sex = match value[0] {
                    1 => Some("M".into()),
                    2 => Some("F".into()),
                    _ => None,
                }
            }
            (25, 4..) => {
                let year = u16::from_le_bytes([value[0], value[1]]);
                let date = format!("{year:04}-{:02}-{:02}", value[2], value[3]);
                header.acquired = Some(match header.acquired.take() {
                    Some(time) => format!("{date}{time}"),
                    None => date,
                });
            }
            (26, 3..) => {
                let time = format!("T{:02}:{:02}:{:02}", value[0], value[1], value[2]);
                header.acquired = Some(match header.acquired.take() {
                    Some(date) => format!("{date}{time}"),
                    None => time,
                });
            }
            _ => {}
        }
    }
    if header.acquired.as_deref().is_some_and(|a| a.starts_with('T')) {
        header.acquired = None; // a time without a date says nothing useful
    }
    Ok(header)
}

/// Null-terminated text: UTF-8 when it is valid, else by the language byte
/// (Latin-1 variants or, by default for this centre's carts, GB18030).
fn decode_text(value: &[u8], language: u8) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let bytes = &value[..end];
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) if matches!(language, 0x01 | 0x3B) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    };
    text.trim().to_string()
}

/// Section 7: the first block of measurements belongs to reference beat
/// type 0, times in ms from the beat's start; 29999 means "not computed".
fn parse_measurements(body: &[u8]) -> DeviceMeasurements {
    let mut m = DeviceMeasurements::default();
    let value = |at: usize| u16_at(body, at).ok().map(|v| v as i16).filter(|v| *v != 29999 && *v != -29999 && *v != 29998);
    if let Some(rr) = value(2).filter(|v| *v > 0) {
        m.rr_ms = Some(rr as f64);
        m.hr_bpm = Some((60_000.0 / rr as f64).round());
    }
    let (p_on, p_off, qrs_on, qrs_off, t_off) = (value(6), value(8), value(10), value(12), value(14));
    let interval = |a: Option<i16>, b: Option<i16>| Some((b? - a?) as f64).filter(|d| *d > 0.0);
    m.pr_ms = interval(p_on, qrs_on);
    m.p_ms = interval(p_on, p_off);
    m.qrs_ms = interval(qrs_on, qrs_off);
    m.qt_ms = interval(qrs_on, t_off);
    let axis = |v: Option<i16>| v.filter(|a| (-180..=360).contains(a)).map(f64::from);
    m.p_axis_deg = axis(value(16));
    m.qrs_axis_deg = axis(value(18));
    m.t_axis_deg = axis(value(20));
    m
}

/// Section 8: confirmation flag, date, time, then numbered statements.
fn parse_statements(body: &[u8], language: u8) -> Vec<String> {
    let count = body.get(8).copied().unwrap_or(0) as usize;
    let mut out = Vec::with_capacity(count);
    let mut at = 9;
    for _ in 0..count {
        let Ok(length) = u16_at(body, at + 1) else { break };
        let Some(text) = body.get(at + 3..at + 3 + length as usize) else { break };
        let text = decode_text(text, language);
        if !text.is_empty() {
            out.push(text);
        }
        at += 3 + length as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SCP-ECG record of the given section bodies (section 0 is made).
    fn record(sections: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let section = |id: u16, body: &[u8]| {
            let mut out = vec![0, 0];
            out.extend(id.to_le_bytes());
            out.extend((16 + body.len() as u32).to_le_bytes());
            out.extend([20, 20, 0, 0, 0, 0, 0, 0]);
            if id == 0 {
                out[10..16].copy_from_slice(b"SCPECG");
            }
            out.extend(body);
            let crc = crc_ccitt(&out[2..]);
            out[..2].copy_from_slice(&crc.to_le_bytes());
            out
        };
        let pointers = 10 * (sections.len() + 1);
        let mut at = 6 + 16 + pointers; // record header, section 0
        let mut table = Vec::new();
        let mut rest = Vec::new();
        table.extend(0u16.to_le_bytes());
        table.extend((16 + pointers as u32).to_le_bytes());
        table.extend(7u32.to_le_bytes());
        for (id, body) in sections {
            let bytes = section(*id, body);
            table.extend(id.to_le_bytes());
            table.extend((bytes.len() as u32).to_le_bytes());
            table.extend((at as u32 + 1).to_le_bytes());
            at += bytes.len();
            rest.extend(bytes);
        }
        let mut out = vec![0, 0];
        out.extend((at as u32).to_le_bytes());
        out.extend(section(0, &table));
        out.extend(rest);
        out
    }

    fn leads(count: u8, start: u32, end: u32, flags: u8) -> Vec<u8> {
        let mut body = vec![count, flags];
        for code in 1..=count {
            body.extend(start.to_le_bytes());
            body.extend(end.to_le_bytes());
            body.push(code);
        }
        body
    }

    /// Section 5/6: amplitude (nV), interval (µs), no differences, and each
    /// lead's bytes.
    fn data(interval_us: u16, bimodal: bool, leads: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(5000u16.to_le_bytes());
        body.extend(interval_us.to_le_bytes());
        body.extend([0, bimodal as u8]);
        for lead in leads {
            body.extend((lead.len() as u16).to_le_bytes());
        }
        for lead in leads {
            body.extend(lead);
        }
        body
    }

    fn samples(values: impl IntoIterator<Item = i16>) -> Vec<u8> {
        values.into_iter().flat_map(i16::to_le_bytes).collect()
    }

    #[test]
    fn the_test_builder_makes_a_readable_record() {
        let bytes = record(&[(3, leads(2, 1, 10, 0)), (6, data(2000, false, &[samples(0..10), samples(10..20)]))]);
        let ecg = read(&bytes).unwrap();
        assert_eq!(ecg.sampling_rate_hz, 500.0);
        assert_eq!(ecg.leads[0].samples_uv[..3], [0.0, 5.0, 10.0]);
    }

    /// A lead ending at sample 0xFFFFFFFF asked for a 17 GB allocation.
    #[test]
    fn absurd_lead_lengths_are_refused_before_allocating() {
        let bytes = record(&[(3, leads(2, 1, u32::MAX, 0)), (6, data(2000, false, &[samples(0..10), samples(10..20)]))]);
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("4294967295 samples; at most 600000 a lead"), "{err}");
        // The same with Huffman-coded data (the default table), the path
        // that allocated for the declared count.
        let bytes = record(&[(2, 19999u16.to_le_bytes().to_vec()), (3, leads(1, 1, u32::MAX, 0)), (6, data(2000, false, &[vec![0; 8]]))]);
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("4294967295 samples; at most 600000 a lead"), "{err}");
        // 255 leads of 600,000 samples each: every lead allowed, the sum not.
        let bytes = record(&[(3, leads(255, 1, 600_000, 0)), (6, data(2000, false, &[]))]);
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("more than 4000000 samples"), "{err}");
    }

    /// Decimation 65535 cost 8 s of CPU in a 34 KB file.
    #[test]
    fn absurd_decimation_is_refused() {
        let mut qrs = vec![0; 6];
        qrs[0..2].copy_from_slice(&1u16.to_le_bytes()); // a 1 ms reference beat
        let bytes = record(&[
            (3, leads(1, 1, 5000, 1)),
            (4, qrs),
            (5, data(1, false, &[samples([0; 100])])),
            (6, data(65535, true, &[samples([0; 100])])),
        ]);
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("bimodal decimation of 65535"), "{err}");
    }

    /// Thousands of overlapping zones over a whole lead cost one pass.
    #[test]
    fn overlapping_zones_are_clipped_not_repeated() {
        let qrs = QrsLocations { reference_length_ms: 10, reference_fiducial: 2, zones: vec![(1, 3, 10); 5000], protected: vec![] };
        let mut lead = vec![0.0; 10];
        add_reference_beat(&mut lead, &[1.0, 2.0, 3.0, 4.0], &qrs);
        // Sample s takes beat[s - 3 + 2]: the beat's four samples, once each.
        assert_eq!(lead, [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "added once, within the beat");
        let mask = protected_mask(6, &[(0, 2), (2, 3), (5, u32::MAX)]);
        assert_eq!(mask, [true, true, true, false, true, true]);
    }

    #[test]
    fn crc_matches_the_ccitt_check_value() {
        assert_eq!(crc_ccitt(b"123456789"), 0x29B1);
    }

    #[test]
    fn bimodal_round_trip_keeps_protected_samples_and_interpolates_the_rest() {
        let protected = protected_mask(10, &[(5u32, 6u32)]);
        // 10 samples, decimation 2: samples 1,3 stored; 5,6 protected; 7,9 stored.
        assert_eq!(stored_samples(&protected, 2), 6);
        let out = undecimate(&[0.0, 2.0, 50.0, 60.0, 4.0, 6.0], &protected, 2);
        assert_eq!(out, vec![0.0, 1.0, 2.0, 26.0, 50.0, 60.0, 4.0, 5.0, 6.0, 6.0]);
    }
}
