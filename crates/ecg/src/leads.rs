//! Lead labels from every cart spelled one way, the 8-to-12 lead derivation,
//! and the checks every reader's output passes before analysis sees it.

use crate::record::{EcgError, EcgRecord, Lead, MedianBeat};

/// The twelve standard leads in display order.
pub const STANDARD_LEADS: [&str; 12] = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

/// Below this rate QRS onset/offset cannot be placed within ±10 ms; the
/// record is read, and the reader warned.
pub const LOW_SAMPLING_RATE_HZ: f64 = 250.0;

/// Maps a lead label as carts, standards and databases write it to the
/// standard spelling: `MDC_ECG_LEAD_AVR`, `Lead aVR`, `avr`, `aVR (Einthoven)`
/// and SCP-ECG's code 4 all become `aVR`. Anything else is kept, trimmed.
pub fn normalise_label(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut key = trimmed.to_ascii_uppercase();
    for prefix in ["MDC_ECG_LEAD_", "LEAD ", "LEAD_", "LEAD"] {
        if let Some(rest) = key.strip_prefix(prefix) {
            key = rest.trim().to_string();
            break;
        }
    }
    // "aVR (Goldberger)", "I (Einthoven)", "V1 (unipolar)"
    if let Some(cut) = key.find(['(', ',']) {
        key = key[..cut].trim().to_string();
    }
    let standard = match key.as_str() {
        "I" | "1" => "I",
        "II" | "2" => "II",
        "III" | "3" => "III",
        "AVR" | "-AVR" => "aVR",
        "AVL" => "aVL",
        "AVF" => "aVF",
        "V1" => "V1",
        "V2" => "V2",
        "V3" => "V3",
        "V4" => "V4",
        "V5" => "V5",
        "V6" => "V6",
        _ => return trimmed.to_string(),
    };
    standard.to_string()
}

/// Checks the leads a reader produced, normalises their labels, derives
/// III, aVR, aVL and aVF from I and II when the file stores only the
/// independent leads, puts the standard leads first, and notes a low rate.
pub(crate) fn finish(mut record: EcgRecord) -> Result<EcgRecord, EcgError> {
    let format = record.format;
    if record.leads.is_empty() {
        return Err(EcgError::invalid(format, "the file holds no leads"));
    }
    if !(record.sampling_rate_hz.is_finite() && record.sampling_rate_hz > 0.0) {
        return Err(EcgError::invalid(format, format!("sampling rate must be a positive number, found {}", record.sampling_rate_hz)));
    }
    let n = record.leads[0].samples_uv.len();
    if n == 0 {
        return Err(EcgError::invalid(format, "the leads hold no samples"));
    }
    if let Some(bad) = record.leads.iter().find(|l| l.samples_uv.len() != n) {
        return Err(EcgError::invalid(
            format,
            format!("lead {} has {} samples where lead {} has {n}", bad.label, bad.samples_uv.len(), record.leads[0].label),
        ));
    }
    if let Some(bad) = record.leads.iter().find(|l| l.samples_uv.iter().any(|v| !v.is_finite())) {
        return Err(EcgError::invalid(
            format,
            format!("lead {} holds samples that are not finite numbers (its scale or offset)", bad.label),
        ));
    }
    for lead in &mut record.leads {
        lead.label = normalise_label(&lead.label);
    }
    derive_limb_leads(&mut record.leads);
    if let Some(median) = record.device.median.take() {
        match finish_median(median) {
            Ok(median) => record.device.median = Some(median),
            Err(reason) => record.warnings.push(format!("the device's median beat is left out: {reason}")),
        }
    }
    record.leads.sort_by_key(|l| STANDARD_LEADS.iter().position(|s| *s == l.label).unwrap_or(STANDARD_LEADS.len()));
    if record.sampling_rate_hz < LOW_SAMPLING_RATE_HZ {
        record.warnings.push(format!(
            "low sampling rate: {} Hz (interval measurements need at least {} Hz)",
            record.sampling_rate_hz, LOW_SAMPLING_RATE_HZ
        ));
    }
    Ok(record)
}

/// The same checks for a device's median beat, which is optional: a bad
/// one is left out with the reason, the record kept.
fn finish_median(mut median: MedianBeat) -> Result<MedianBeat, String> {
    let n = median.leads.first().map(|l| l.samples_uv.len()).filter(|n| *n > 0).ok_or("it holds no samples")?;
    if median.leads.iter().any(|l| l.samples_uv.len() != n) {
        return Err("its leads differ in length".into());
    }
    if median.leads.iter().any(|l| l.samples_uv.iter().any(|v| !v.is_finite())) {
        return Err("it holds samples that are not finite numbers".into());
    }
    if !(median.sampling_rate_hz.is_finite() && median.sampling_rate_hz > 0.0) {
        return Err(format!("its sampling rate is {}", median.sampling_rate_hz));
    }
    for lead in &mut median.leads {
        lead.label = normalise_label(&lead.label);
    }
    Ok(median)
}

/// Einthoven and Goldberger: III = II − I, aVR = −(I + II)/2,
/// aVL = I − II/2, aVF = II − I/2. Only leads that are missing are added.
fn derive_limb_leads(leads: &mut Vec<Lead>) {
    let find = |leads: &[Lead], label: &str| leads.iter().position(|l| l.label == label);
    let (Some(i), Some(ii)) = (find(leads, "I"), find(leads, "II")) else { return };
    let lead_i = leads[i].samples_uv.clone();
    let lead_ii = leads[ii].samples_uv.clone();
    type Formula = fn(f32, f32) -> f32;
    let formulas: [(&str, Formula); 4] =
        [("III", |i, ii| ii - i), ("aVR", |i, ii| -(i + ii) / 2.0), ("aVL", |i, ii| i - ii / 2.0), ("aVF", |i, ii| ii - i / 2.0)];
    for (label, formula) in formulas {
        if find(leads, label).is_none() {
            let samples_uv = lead_i.iter().zip(&lead_ii).map(|(&a, &b)| formula(a, b)).collect();
            leads.push(Lead { label: label.to_string(), samples_uv, derived: true });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_every_source_become_one_spelling() {
        for (raw, want) in [
            ("MDC_ECG_LEAD_AVR", "aVR"),
            ("Lead aVR", "aVR"),
            ("avr", "aVR"),
            ("Lead I (Einthoven)", "I"),
            ("ii", "II"),
            ("V5", "V5"),
            ("MLII", "MLII"),
            ("vx", "vx"),
        ] {
            assert_eq!(normalise_label(raw), want, "{raw}");
        }
    }

    #[test]
    fn eight_leads_become_twelve_by_einthoven_and_goldberger() {
        let lead = |label: &str, v: f32| Lead { label: label.into(), samples_uv: vec![v; 3], derived: false };
        let mut leads = vec![lead("I", 300.0), lead("II", 1000.0), lead("V1", -200.0)];
        derive_limb_leads(&mut leads);
        let get = |l: &str| leads.iter().find(|x| x.label == l).unwrap().samples_uv[0];
        assert_eq!(get("III"), 700.0);
        assert_eq!(get("aVR"), -650.0);
        assert_eq!(get("aVL"), -200.0);
        assert_eq!(get("aVF"), 850.0);
        assert!(leads.iter().filter(|l| l.derived).count() == 4);
    }
}
