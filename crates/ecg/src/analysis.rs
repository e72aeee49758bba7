//! The whole analysis of one record: filter, detect, median beats,
//! fiducials, measurements, rhythm and HRV, with the algorithm's name and
//! version recorded beside the numbers.

use serde::{Deserialize, Serialize};

use crate::delineate::{Fiducials, delineate};
use crate::filter::FilterSettings;
use crate::leads::STANDARD_LEADS;
use crate::median::{MedianBeats, median_beats};
use crate::qrs;
use crate::record::{DeviceMeasurements, EcgRecord};

/// Name and version of the analysis as a whole (detector version inside).
pub const ALGORITHM: &str = concat!("telediag-ecg ", env!("CARGO_PKG_VERSION"));

/// Options a caller may change; [`AnalysisOptions::default`] is what the
/// pipeline uses (50 Hz mains, as in China).
#[derive(Debug, Clone, Copy)]
pub struct AnalysisOptions {
    pub filters: FilterSettings,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions { filters: FilterSettings::ANALYSIS }
    }
}

/// Everything measured on a record. Serialised as the JSON of
/// `telediag ecg measure --json` and stored beside the ECG.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub algorithm: &'static str,
    pub qrs_detector: &'static str,
    pub filters: FilterSettings,
    pub sampling_rate_hz: f64,
    pub duration_s: f64,
    /// Leads the analysis used, in order.
    pub leads: Vec<String>,
    /// Sample index of every detected QRS, in the record's own sampling.
    pub qrs_samples: Vec<usize>,
    pub measurements: Measurements,
    pub rhythm: Rhythm,
    /// For recordings of 60 s or more.
    pub hrv: Option<Hrv>,
    /// Fiducials in ms from the start of the median beat (null where not found).
    pub fiducials_ms: FiducialsMs,
    /// How many beats formed the median beat.
    pub median_beats_used: usize,
    /// What the recording device measured, for comparison.
    pub device: DeviceMeasurements,
    pub device_statements: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub median: Option<MedianBeats>,
}

/// What a reader of a stored analysis (the report template) takes from
/// it: read back from the JSON an [`Analysis`] was written as, with the
/// same Rust field names on both sides, so renaming a measurement is a
/// compile error in the reader rather than a silent blank.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AnalysisSummary {
    pub measurements: Measurements,
    pub rhythm: Rhythm,
    #[serde(default)]
    pub device_statements: Vec<String>,
}

impl AnalysisSummary {
    /// Reads the summary from a stored analysis (`ecg-measurements` JSON).
    pub fn from_json(bytes: &[u8]) -> Result<AnalysisSummary, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Global measurements (ms, degrees, beats per minute); `None` (JSON null)
/// where the wave could not be measured, e.g. no P wave in atrial fibrillation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    pub hr_bpm: Option<f64>,
    pub rr_ms: Option<f64>,
    pub pr_ms: Option<f64>,
    pub p_ms: Option<f64>,
    pub qrs_ms: Option<f64>,
    pub qt_ms: Option<f64>,
    pub qtc_bazett_ms: Option<f64>,
    pub qtc_fridericia_ms: Option<f64>,
    pub qtc_framingham_ms: Option<f64>,
    pub qtc_hodges_ms: Option<f64>,
    pub p_axis_deg: Option<f64>,
    pub qrs_axis_deg: Option<f64>,
    pub t_axis_deg: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rhythm {
    pub beats: usize,
    /// RR coefficient of variation, %.
    pub rr_variation_pct: Option<f64>,
    /// True when every RR lies within 15 % of the median RR.
    pub regular: Option<bool>,
    /// RR intervals more than 15 % away from the mean of the intervals
    /// either side: premature beats, their pauses, dropped beats, atrial
    /// fibrillation. None of them in an irregular rhythm means its rate
    /// drifts (sinus arrhythmia with breathing): each interval then lies
    /// near the mean of its neighbours, however far from the median.
    #[serde(default)]
    pub abrupt_changes: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hrv {
    pub sdnn_ms: f64,
    pub rmssd_ms: f64,
    pub pnn50_pct: f64,
    pub nn_intervals: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FiducialsMs {
    pub p_onset: Option<f64>,
    pub p_offset: Option<f64>,
    pub qrs_onset: Option<f64>,
    pub qrs_offset: Option<f64>,
    pub t_end: Option<f64>,
}

/// Analyses a record with the default options.
pub fn analyse(record: &EcgRecord) -> Analysis {
    analyse_with(record, AnalysisOptions::default())
}

pub fn analyse_with(record: &EcgRecord, options: AnalysisOptions) -> Analysis {
    let rate = record.sampling_rate_hz;
    // The twelve standard leads when present (derived ones included), else all.
    let standard: Vec<_> = record.leads.iter().filter(|l| STANDARD_LEADS.contains(&l.label.as_str())).collect();
    let chosen = if standard.len() >= 2 { standard } else { record.leads.iter().collect() };
    let views: Vec<&[f32]> = chosen.iter().map(|l| l.samples_uv.as_slice()).collect();
    let filtered: Vec<Vec<f32>> = options.filters.apply_each(&views, rate);
    let views: Vec<&[f32]> = filtered.iter().map(|v| v.as_slice()).collect();
    let qrs_samples = qrs::detect(&views, rate);

    let mut warnings = record.warnings.clone();
    let rr_ms: Vec<f64> = qrs_samples.windows(2).map(|w| (w[1] - w[0]) as f64 * 1000.0 / rate).collect();
    let mut m = Measurements::default();
    let rhythm = rhythm(&rr_ms, qrs_samples.len());
    if !rr_ms.is_empty() {
        let mean_rr = rr_ms.iter().sum::<f64>() / rr_ms.len() as f64;
        m.rr_ms = Some(mean_rr.round());
        m.hr_bpm = Some((60_000.0 / mean_rr).round());
    } else {
        warnings.push("fewer than two QRS complexes detected: no rate or intervals".into());
    }

    let median = median_beats(&views, &qrs_samples, rate);
    let mut fiducials_ms = FiducialsMs::default();
    let mut used = 0;
    if let Some(beats) = &median {
        used = beats.beats_used;
        let f = delineate(beats, rate);
        let to_ms = |i: Option<usize>| i.map(|i| (i as f64 * 1000.0 / rate * 10.0).round() / 10.0);
        fiducials_ms = FiducialsMs {
            p_onset: to_ms(f.p_onset),
            p_offset: to_ms(f.p_offset),
            qrs_onset: to_ms(f.qrs_onset),
            qrs_offset: to_ms(f.qrs_offset),
            t_end: to_ms(f.t_end),
        };
        let interval = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) if b > a => Some(((b - a) as f64 * 1000.0 / rate).round()),
            _ => None,
        };
        m.pr_ms = interval(f.p_onset, f.qrs_onset);
        m.p_ms = interval(f.p_onset, f.p_offset);
        m.qrs_ms = interval(f.qrs_onset, f.qrs_offset);
        m.qt_ms = interval(f.qrs_onset, f.t_end);
        let labels: Vec<&str> = chosen.iter().map(|l| l.label.as_str()).collect();
        let axes = axes(beats, &labels, &f);
        m.p_axis_deg = axes.0;
        m.qrs_axis_deg = axes.1;
        m.t_axis_deg = axes.2;
    } else if qrs_samples.len() >= 2 {
        warnings.push("too few similar beats for a median beat: no intervals".into());
    }
    if let (Some(qt), Some(rr)) = (m.qt_ms, m.rr_ms) {
        let rr_s = rr / 1000.0;
        let hr = 60.0 / rr_s;
        m.qtc_bazett_ms = Some((qt / rr_s.sqrt()).round());
        m.qtc_fridericia_ms = Some((qt / rr_s.cbrt()).round());
        m.qtc_framingham_ms = Some((qt + 154.0 * (1.0 - rr_s)).round());
        m.qtc_hodges_ms = Some((qt + 1.75 * (hr - 60.0)).round());
    }

    Analysis {
        algorithm: ALGORITHM,
        qrs_detector: qrs::ALGORITHM,
        filters: options.filters,
        sampling_rate_hz: rate,
        duration_s: record.duration_s(),
        leads: chosen.iter().map(|l| l.label.clone()).collect(),
        hrv: if record.duration_s() >= 60.0 { hrv(&rr_ms) } else { None },
        qrs_samples,
        measurements: m,
        rhythm,
        fiducials_ms,
        median_beats_used: used,
        device: record.device.measurements.clone(),
        device_statements: record.device.statements.clone(),
        warnings,
        median,
    }
}

fn rhythm(rr_ms: &[f64], beats: usize) -> Rhythm {
    if rr_ms.len() < 2 {
        return Rhythm { beats, ..Default::default() };
    }
    let mean = rr_ms.iter().sum::<f64>() / rr_ms.len() as f64;
    let sd = (rr_ms.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (rr_ms.len() - 1) as f64).sqrt();
    let mut sorted = rr_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let near = |rr: f64, reference: f64| (rr - reference).abs() <= RR_TOLERANCE * reference;
    // Each interval against the mean of the ones either side (the one
    // there is, at the ends; there are at least two intervals).
    let abrupt = (0..rr_ms.len())
        .filter(|&i| {
            let before = if i > 0 { rr_ms[i - 1] } else { rr_ms[i + 1] };
            let after = rr_ms.get(i + 1).copied().unwrap_or(before);
            !near(rr_ms[i], (before + after) / 2.0)
        })
        .count();
    Rhythm {
        beats,
        rr_variation_pct: Some((100.0 * sd / mean * 10.0).round() / 10.0),
        regular: Some(rr_ms.iter().all(|&r| near(r, median))),
        abrupt_changes: Some(abrupt),
    }
}

/// How far (a fraction) an RR interval may lie from the median, or from
/// its neighbours' mean, and still count as regular.
const RR_TOLERANCE: f64 = 0.15;

/// Time-domain HRV on normal-to-normal intervals: RR intervals within 20 %
/// of their neighbours' median (ectopic beats and their pauses left out).
fn hrv(rr_ms: &[f64]) -> Option<Hrv> {
    let nn: Vec<f64> = rr_ms
        .iter()
        .enumerate()
        .filter(|&(i, &r)| {
            let a = i.saturating_sub(5);
            let b = (i + 6).min(rr_ms.len());
            let mut around: Vec<f64> = rr_ms[a..b].to_vec();
            around.sort_by(f64::total_cmp);
            let local = around[around.len() / 2];
            (r - local).abs() <= 0.2 * local
        })
        .map(|(_, &r)| r)
        .collect();
    if nn.len() < 30 {
        return None;
    }
    let mean = nn.iter().sum::<f64>() / nn.len() as f64;
    let sdnn = (nn.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (nn.len() - 1) as f64).sqrt();
    let diffs: Vec<f64> = nn.windows(2).map(|w| w[1] - w[0]).collect();
    let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let pnn50 = 100.0 * diffs.iter().filter(|d| d.abs() > 50.0).count() as f64 / diffs.len() as f64;
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    Some(Hrv { sdnn_ms: round1(sdnn), rmssd_ms: round1(rmssd), pnn50_pct: round1(pnn50), nn_intervals: nn.len() })
}

/// Frontal-plane axes from the net areas in leads I and aVF over each wave:
/// the angle of the vector (area I, area aVF), +90° pointing to aVF.
fn axes(beats: &MedianBeats, labels: &[&str], f: &Fiducials) -> (Option<f64>, Option<f64>, Option<f64>) {
    let lead = |name: &str| labels.iter().position(|l| *l == name).map(|i| &beats.leads[i]);
    let (Some(i), Some(avf)) = (lead("I"), lead("aVF")) else { return (None, None, None) };
    let Some(onset) = f.qrs_onset else { return (None, None, None) };
    // Areas relative to the PR-segment level.
    let base = |l: &[f32]| {
        let from = onset.saturating_sub(4);
        l[from..=onset].iter().sum::<f32>() / (onset - from + 1) as f32
    };
    let (base_i, base_avf) = (base(i), base(avf));
    let axis = |from: Option<usize>, to: Option<usize>| -> Option<f64> {
        let (from, to) = (from?, to?.min(i.len()));
        if to <= from {
            return None;
        }
        let area_i: f32 = i[from..to].iter().map(|v| v - base_i).sum();
        let area_avf: f32 = avf[from..to].iter().map(|v| v - base_avf).sum();
        if area_i == 0.0 && area_avf == 0.0 {
            return None;
        }
        Some((area_avf as f64).atan2(area_i as f64).to_degrees().round())
    };
    (axis(f.p_onset, f.p_offset), axis(f.qrs_onset, f.qrs_offset), axis(f.qrs_offset, f.t_end))
}

#[cfg(test)]
mod tests {
    use super::rhythm;

    /// Breathing (12 a minute) moves a 72 bpm rate ±20 % over six beats:
    /// irregular by the median, but no interval jumps.
    #[test]
    fn a_breathing_rate_drift_is_irregular_without_abrupt_changes() {
        let rr: Vec<f64> = (0..24).map(|i| 833.0 * (1.0 + 0.2 * (2.0 * std::f64::consts::PI * i as f64 / 6.0).sin())).collect();
        let r = rhythm(&rr, 21);
        assert_eq!((r.regular, r.abrupt_changes), (Some(false), Some(0)));
    }

    /// A premature beat (70 % of the RR) and its compensatory pause.
    #[test]
    fn a_premature_beat_and_its_pause_are_abrupt() {
        let mut rr = vec![800.0; 12];
        rr[5] = 560.0;
        rr[6] = 1040.0;
        let r = rhythm(&rr, 13);
        // The premature interval, its pause, and the interval before them.
        assert_eq!((r.regular, r.abrupt_changes), (Some(false), Some(3)));
        assert_eq!(rhythm(&[800.0, 810.0, 790.0], 4).abrupt_changes, Some(0));
        // An atrial premature beat at 83 %, no pause: irregular, and abrupt.
        let mut rr = vec![800.0; 11];
        rr[5] = 660.0;
        let r = rhythm(&rr, 12);
        assert_eq!((r.regular, r.abrupt_changes), (Some(false), Some(1)));
    }
}
