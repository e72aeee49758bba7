//! QRS detection on all leads at once.
//!
//! Each lead is band-passed to the QRS band (8–20 Hz... see [`QRS_BAND`]),
//! differentiated and squared; the leads' energies, each divided by its own
//! typical QRS energy so a noisy lead cannot drown a clean one, are summed
//! and integrated over a 120 ms window. Peaks of that curve are classified
//! with Pan and Tompkins' adaptive signal and noise levels (IEEE TBME 1985):
//! refractory period, T-wave rejection by slope, and search-back at a lower
//! threshold when a beat is overdue. The fiducial is placed at the largest
//! combined band-passed amplitude near the peak, i.e. the R (or S) apex.

use crate::filter::Biquad;
use crate::signal::{moving_average, percentile};

/// Algorithm name and version, recorded with every result.
pub const ALGORITHM: &str = "telediag-qrs 1.0 (multi-lead Pan-Tompkins)";

/// The pass band (Hz) where QRS energy dominates P, T and baseline.
const QRS_BAND: (f64, f64) = (8.0, 20.0);
/// No two QRS complexes closer than this (physiological refractory period).
const REFRACTORY_S: f64 = 0.2;
/// A candidate within this of the previous QRS must have a steep slope.
const T_WAVE_WINDOW_S: f64 = 0.36;
const INTEGRATION_S: f64 = 0.12;

/// Sample index (in the record's own sampling) of every detected QRS.
pub fn detect(leads: &[&[f32]], rate_hz: f64) -> Vec<usize> {
    let n = leads.first().map_or(0, |l| l.len());
    if n < (rate_hz * 1.0) as usize {
        return Vec::new();
    }
    let (band_passed, energy) = combined_energy(leads, rate_hz);
    let integrated = moving_average(&energy, (INTEGRATION_S * rate_hz).round().max(1.0) as usize);
    let candidates = local_maxima(&integrated, (REFRACTORY_S * rate_hz) as usize / 2);
    let beats = classify(&candidates, &integrated, &energy, rate_hz);
    let half = (0.06 * rate_hz) as usize;
    beats.into_iter().map(|p| apex(&band_passed, p, half)).collect()
}

/// Per-lead QRS-band signals, and their normalised squared slopes summed.
fn combined_energy(leads: &[&[f32]], rate_hz: f64) -> (Vec<f32>, Vec<f32>) {
    let n = leads[0].len();
    let mut energy = vec![0.0f32; n];
    let mut amplitude = vec![0.0f32; n];
    let high = QRS_BAND.1.min(rate_hz * 0.45);
    let mut band_passed: Vec<Vec<f32>> = leads.iter().map(|lead| lead.to_vec()).collect();
    Biquad::high_pass(QRS_BAND.0, rate_hz).filtfilt_each(&mut band_passed);
    Biquad::low_pass(high, rate_hz).filtfilt_each(&mut band_passed);
    for x in &band_passed {
        let mut slope: Vec<f32> = vec![0.0; n];
        for i in 2..n.saturating_sub(2) {
            // Five-point derivative, as Pan-Tompkins.
            let d = (2.0 * x[i + 2] + x[i + 1] - x[i - 1] - 2.0 * x[i - 2]) / 8.0;
            slope[i] = d * d;
        }
        // The lead's typical QRS energy: a high percentile of its slope.
        let scale = percentile(&slope, 0.99).max(1e-6);
        let amp_scale = percentile(&x.iter().map(|v| v.abs()).collect::<Vec<_>>(), 0.99).max(1e-3);
        for i in 0..n {
            energy[i] += slope[i] / scale;
            amplitude[i] += x[i].abs() / amp_scale;
        }
    }
    (amplitude, energy)
}

/// Indices that are the maximum of their ±`radius` neighbourhood.
fn local_maxima(x: &[f32], radius: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = x.len();
    while i < n {
        let a = i.saturating_sub(radius);
        let b = (i + radius + 1).min(n);
        let window = &x[a..b];
        let (j, &m) = window.iter().enumerate().max_by(|p, q| p.1.total_cmp(q.1)).unwrap();
        if a + j == i && m > 0.0 {
            out.push(i);
            i += radius.max(1);
        } else if a + j > i {
            i = a + j;
        } else {
            i += 1;
        }
    }
    out
}

/// Pan-Tompkins' decision rules over the integrated-energy peaks.
fn classify(candidates: &[usize], integrated: &[f32], energy: &[f32], rate_hz: f64) -> Vec<usize> {
    let refractory = (REFRACTORY_S * rate_hz) as usize;
    let t_window = (T_WAVE_WINDOW_S * rate_hz) as usize;
    let half = (INTEGRATION_S * rate_hz) as usize / 2 + 1;
    let max_slope = |p: usize| {
        let a = p.saturating_sub(half);
        let b = (p + half).min(energy.len());
        energy[a..b].iter().copied().fold(0.0f32, f32::max)
    };
    // Learning phase: levels from the first two seconds.
    let learn = ((2.0 * rate_hz) as usize).min(integrated.len());
    let first_max = integrated[..learn].iter().copied().fold(0.0f32, f32::max);
    let first_mean = integrated[..learn].iter().sum::<f32>() / learn.max(1) as f32;
    let mut signal_level = 0.25 * first_max;
    let mut noise_level = 0.5 * first_mean;
    let mut rr_recent: Vec<usize> = Vec::new();
    let mut beats: Vec<usize> = Vec::new();
    let mut beat_slopes: Vec<f32> = Vec::new();
    let mut since_last: Vec<usize> = Vec::new(); // candidates after the last beat

    let threshold = |s: f32, n: f32| n + 0.25 * (s - n);
    for &p in candidates {
        let height = integrated[p];
        // Search-back: a beat is overdue; take the best candidate above half threshold.
        if let Some(&last) = beats.last() {
            let rr_average = average_rr(&rr_recent).unwrap_or(rate_hz as usize);
            if p - last > rr_average * 166 / 100 {
                let t1 = threshold(signal_level, noise_level);
                let best = since_last
                    .iter()
                    .copied()
                    .filter(|&c| c - last > refractory && integrated[c] > 0.5 * t1)
                    .max_by(|a, b| integrated[*a].total_cmp(&integrated[*b]));
                if let Some(c) = best {
                    signal_level = 0.25 * integrated[c] + 0.75 * signal_level;
                    rr_recent.push(c - last);
                    beats.push(c);
                    beat_slopes.push(max_slope(c));
                    since_last.retain(|&x| x > c);
                }
            }
        }
        let t1 = threshold(signal_level, noise_level);
        let last = beats.last().copied();
        let is_beat = height > t1
            && match last {
                None => true,
                Some(l) if p - l <= refractory => false,
                Some(l) if p - l < t_window => {
                    // T wave or a premature beat: a QRS is at least half as steep.
                    max_slope(p) >= 0.5 * beat_slopes.last().copied().unwrap_or(0.0)
                }
                Some(_) => true,
            };
        if is_beat {
            signal_level = 0.125 * height + 0.875 * signal_level;
            if let Some(l) = last {
                rr_recent.push(p - l);
            }
            beats.push(p);
            beat_slopes.push(max_slope(p));
            since_last.clear();
        } else {
            noise_level = 0.125 * height + 0.875 * noise_level;
            since_last.push(p);
        }
    }
    beats
}

/// Mean of the last eight RR intervals that lie within 92–116 % of their
/// own average (Pan-Tompkins' "RR average 2"), else of the last eight.
fn average_rr(rr: &[usize]) -> Option<usize> {
    let recent = &rr[rr.len().saturating_sub(8)..];
    if recent.is_empty() {
        return None;
    }
    let mean = recent.iter().sum::<usize>() / recent.len();
    let regular: Vec<usize> = recent.iter().copied().filter(|&r| r * 100 >= mean * 92 && r * 100 <= mean * 116).collect();
    Some(if regular.len() >= 4 { regular.iter().sum::<usize>() / regular.len() } else { mean })
}

/// The sample of largest combined amplitude within ±`half` of `p`.
fn apex(amplitude: &[f32], p: usize, half: usize) -> usize {
    let a = p.saturating_sub(half);
    let b = (p + half + 1).min(amplitude.len());
    a + amplitude[a..b].iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic ECG: narrow QRS spikes with broad T waves at 75 bpm.
    fn synthetic(rate: f64, seconds: f64, beat_s: f64) -> (Vec<f32>, Vec<usize>) {
        let n = (rate * seconds) as usize;
        let mut x = vec![0.0f32; n];
        let mut beats = Vec::new();
        let mut t = 0.5;
        while t < seconds - 0.5 {
            let c = (t * rate) as usize;
            beats.push(c);
            for (i, v) in x.iter_mut().enumerate() {
                let dt = (i as f64 - c as f64) / rate;
                *v += (1200.0 * (-(dt / 0.012).powi(2)).exp() + 300.0 * (-((dt - 0.3) / 0.06).powi(2)).exp()) as f32;
            }
            t += beat_s;
        }
        (x, beats)
    }

    #[test]
    fn finds_every_synthetic_beat_and_no_t_waves() {
        let (x, truth) = synthetic(500.0, 20.0, 0.8);
        let found = detect(&[&x], 500.0);
        assert_eq!(found.len(), truth.len(), "{found:?}");
        for (f, t) in found.iter().zip(&truth) {
            assert!(f.abs_diff(*t) <= 3, "beat at {t} found at {f}");
        }
    }
}
