//! QRS detection on all leads at once.
//!
//! Each lead is band-passed to Pan and Tompkins' QRS band (5–15 Hz, see
//! [`QRS_BAND`]), differentiated and squared, and divided by its own
//! typical QRS energy. The leads are then averaged, each weighted by the
//! inverse of its noise around that moment (the median of its energy over
//! a second), so that a lead in a burst of electrode motion gives way to
//! a quiet one, and integrated over 120 ms. Peaks of the square root of
//! that curve — an envelope proportional to the ECG's amplitude — are
//! classified with Pan and Tompkins' adaptive signal and noise levels
//! (IEEE TBME 1985): refractory period; in the 360 ms T-wave window, a
//! candidate is a beat if it is half as steep as both the last beat and
//! the recent ones, or (a wide ventricular beat) nearly as strong as they
//! are;
//! search-back when a beat is overdue, for the best candidate that is not
//! a T wave and reaches half the threshold or stands far above the other
//! candidates (after the amplitude fell). The fiducial is placed at the
//! largest combined band-passed amplitude near the peak, i.e. the R (or S)
//! apex.
//!
//! `tests/qrs_accuracy.rs` scores it beat by beat (EC57) on record 100 and
//! on record 100 made hard: ventricular bigeminy and trigeminy of several
//! shapes, fast rates, amplitude steps, tall T waves, and muscle, baseline and
//! electrode-motion noise.

use crate::filter::Biquad;
use crate::signal::{moving_average, percentile};

/// Algorithm name and version, recorded with every result.
pub const ALGORITHM: &str = "telediag-qrs 1.2 (multi-lead Pan-Tompkins)";

/// The pass band (Hz) where QRS energy dominates P, T and baseline:
/// Pan and Tompkins'. Above 8 Hz, a wide ventricular beat (140 ms) keeps
/// too little of its energy to be told from a T wave: with 8–20 Hz every
/// premature ventricular beat of a bigeminy was missed.
const QRS_BAND: (f64, f64) = (5.0, 15.0);
/// No two QRS complexes closer than this (physiological refractory period).
const REFRACTORY_S: f64 = 0.2;
/// A candidate within this of the previous QRS must have a steep slope
/// (Pan and Tompkins'). Following a regular rhythm's QT instead (Bazett,
/// QTc 400 or 460 ms) changed two beats in 2273 at 190 bpm.
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

/// Per-lead QRS-band signals, and their normalised squared slopes averaged
/// with each lead weighted by the inverse of its noise.
fn combined_energy(leads: &[&[f32]], rate_hz: f64) -> (Vec<f32>, Vec<f32>) {
    let n = leads[0].len();
    let mut energy = vec![0.0f32; n];
    let mut amplitude = vec![0.0f32; n];
    let high = QRS_BAND.1.min(rate_hz * 0.45);
    let mut band_passed: Vec<Vec<f32>> = leads.iter().map(|lead| lead.to_vec()).collect();
    Biquad::high_pass(QRS_BAND.0, rate_hz).filtfilt_each(&mut band_passed);
    Biquad::low_pass(high, rate_hz).filtfilt_each(&mut band_passed);
    let mut weight_sum = vec![0.0f32; n];
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
        for v in &mut slope {
            *v /= scale;
        }
        let noise = local_noise(&slope, rate_hz);
        for i in 0..n {
            let weight = 1.0 / (NOISE_FLOOR + noise[i]);
            energy[i] += weight * slope[i];
            weight_sum[i] += weight;
            amplitude[i] += x[i].abs() / amp_scale;
        }
    }
    for (e, w) in energy.iter_mut().zip(&weight_sum) {
        *e /= w;
    }
    (amplitude, energy)
}

/// A lead's noise around each moment: the median of its normalised
/// squared slope over [`NOISE_WINDOW_S`], in steps of 250 ms, taken from
/// about 100 samples a second: plenty for a median, and together a tenth
/// of the cost of every sample every 100 ms (which added 1.3 ms, half the
/// analysis time, to a 10 s 12-lead ECG) for the same detections.
fn local_noise(slope: &[f32], rate_hz: f64) -> Vec<f32> {
    let n = slope.len();
    let block = ((0.25 * rate_hz) as usize).max(1);
    let half = (NOISE_WINDOW_S * rate_hz / 2.0) as usize;
    let stride = ((rate_hz / 100.0) as usize).max(1);
    let mut window: Vec<f32> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        let middle = (start + end) / 2;
        window.clear();
        window.extend(slope[middle.saturating_sub(half)..(middle + half + 1).min(n)].iter().step_by(stride));
        let k = window.len() / 2;
        let level = *window.select_nth_unstable_by(k, f32::total_cmp).1;
        out.extend(std::iter::repeat_n(level, end - start));
    }
    out
}

/// Long enough that QRS complexes fill well under half of it (a third at
/// 150 bpm with 140 ms wide beats), so that its median is the noise
/// between them; short enough to follow a burst of electrode motion.
const NOISE_WINDOW_S: f64 = 1.0;
/// The noise level of a lead whose noise is negligible, relative to its
/// QRS energy: two quiet leads weigh alike, whatever their residual noise.
const NOISE_FLOOR: f32 = 0.01;

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

/// Pan-Tompkins' decision rules over the integrated-energy peaks, on its
/// square root: an envelope that scales with the ECG's amplitude, not its
/// square, so that after a lead's gain falls fivefold its beats fall
/// fivefold (not 25-fold) below the learnt level and are found again.
fn classify(candidates: &[usize], integrated: &[f32], energy: &[f32], rate_hz: f64) -> Vec<usize> {
    let refractory = (REFRACTORY_S * rate_hz) as usize;
    let t_window = (T_WAVE_WINDOW_S * rate_hz) as usize;
    let half = (INTEGRATION_S * rate_hz) as usize / 2 + 1;
    let max_slope = |p: usize| {
        let a = p.saturating_sub(half);
        let b = (p + half).min(energy.len());
        energy[a..b].iter().copied().fold(0.0f32, f32::max)
    };
    let envelope = |p: usize| integrated[p].max(0.0).sqrt();
    // Learning phase: levels from the first two seconds.
    let learn = ((2.0 * rate_hz) as usize).min(integrated.len());
    let first_max = integrated[..learn].iter().copied().fold(0.0f32, f32::max);
    let first_mean = integrated[..learn].iter().sum::<f32>() / learn.max(1) as f32;
    let mut signal_level = (0.25 * first_max).sqrt();
    let mut noise_level = (0.5 * first_mean).sqrt();
    let mut rr_recent: Vec<usize> = Vec::new();
    let mut beats: Vec<usize> = Vec::new();
    let mut beat_slopes: Vec<f32> = Vec::new();
    let mut since_last: Vec<usize> = Vec::new(); // candidates after the last beat

    let threshold = |s: f32, n: f32| n + THRESHOLD * (s - n);
    for &p in candidates {
        let height = envelope(p);
        // Search-back: a beat is overdue. Take the best candidate since the
        // last beat if it reaches half the threshold, or if it stands well
        // above every other candidate there (the ECG's amplitude fell).
        if let Some(&last) = beats.last() {
            let rr_average = average_rr(&rr_recent).unwrap_or(rate_hz as usize);
            if p - last > rr_average * 166 / 100 {
                let t1 = threshold(signal_level, noise_level);
                let eligible: Vec<usize> = since_last
                    .iter()
                    .copied()
                    .filter(|&c| {
                        c - last > refractory
                            && (c - last >= t_window || not_a_t_wave(max_slope(c), envelope(c), &beat_slopes, signal_level))
                    })
                    .collect();
                let best = eligible.iter().copied().max_by(|a, b| integrated[*a].total_cmp(&integrated[*b]));
                let stands_out = |c: usize| {
                    let others: Vec<f32> = eligible.iter().filter(|&&o| o != c).map(|&o| envelope(o)).collect();
                    others.is_empty() || envelope(c) >= STANDS_OUT * percentile(&others, 0.5)
                };
                if let Some(c) = best.filter(|&c| envelope(c) > 0.5 * t1 || stands_out(c)) {
                    signal_level = 0.25 * envelope(c) + 0.75 * signal_level;
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
                Some(l) if p - l < t_window => not_a_t_wave(max_slope(p), height, &beat_slopes, signal_level),
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
            // Search-back looks at the last few seconds only: a record that
            // falls silent after a beat must not make every later candidate
            // reconsider all the ones before it.
            if since_last.len() == SEARCH_BACK_CANDIDATES {
                since_last.remove(0);
            }
            since_last.push(p);
        }
    }
    beats
}

/// Whether a candidate in the T-wave window after a beat is a beat (a
/// premature one) rather than that beat's T wave. A QRS is at least half
/// as steep as the beat before it and as the recent beats — after a wide
/// premature beat, a test against it alone would pass its own discordant
/// T wave; in bigeminy, a test against the recent beats alone, half of them
/// wide, would pass the normal beats' T waves — or, a wide ventricular
/// beat, less steep, it reaches well into the beats' level, which a T wave,
/// slow and low in the QRS band, does not.
fn not_a_t_wave(slope: f32, height: f32, beat_slopes: &[f32], signal_level: f32) -> bool {
    let steepest = beat_slopes.last().copied().unwrap_or(0.0).max(typical(beat_slopes));
    slope >= 0.5 * steepest || height >= T_OR_BEAT * signal_level
}

/// The median of the last eight beats' steepest slopes.
fn typical(slopes: &[f32]) -> f32 {
    let recent = &slopes[slopes.len().saturating_sub(8)..];
    if recent.is_empty() {
        return 0.0;
    }
    let mut sorted = recent.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted[sorted.len() / 2]
}

/// How near the beats' level a candidate in the T-wave window must come to
/// be a beat although it is less steep than they are.
const T_OR_BEAT: f32 = 0.6;

/// Where between the noise and signal levels the detection threshold
/// lies, on the envelope.
const THRESHOLD: f32 = 0.4;
/// Candidates since the last beat that search-back considers (at most one
/// per half refractory period, so about 6 s of them).
const SEARCH_BACK_CANDIDATES: usize = 64;

/// How many times the median of the other candidates a search-back
/// candidate must be to be taken as a beat whatever the threshold.
const STANDS_OUT: f32 = 3.0;

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
