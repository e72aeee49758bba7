//! Global fiducial points on the median beats of all leads together:
//! QRS onset and offset, P onset and offset, T end.
//!
//! Like the global measurements of resting-ECG programs, the points come
//! from all leads at once: QRS onset is where the *spatial velocity* (the
//! length of the vector of all leads' slopes) first rises above the
//! isoelectric noise, offset where it settles again, so a QRS is as wide
//! as its widest projection. P and T are found on the *spatial magnitude*
//! (all leads' amplitudes, baseline-corrected at the PR segment); T end by
//! the trapezium area after the steepest descent past the T apex
//! ([`trapezium_end`]).

use crate::median::MedianBeats;
use crate::signal::{moving_average, percentile};

/// Fiducial points as sample indices within the median beats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fiducials {
    pub p_onset: Option<usize>,
    pub p_offset: Option<usize>,
    pub qrs_onset: Option<usize>,
    pub qrs_offset: Option<usize>,
    pub t_end: Option<usize>,
}

/// Finds the global fiducials of `beats` sampled at `rate_hz`.
pub fn delineate(beats: &MedianBeats, rate_hz: f64) -> Fiducials {
    let ms = |v: f64| ((v / 1000.0) * rate_hz).round() as usize;
    let len = beats.leads[0].len();
    let fid = beats.fiducial;
    let velocity = moving_average(&spatial_velocity(&beats.leads), ms(8.0).max(1));

    // QRS: velocity peak near the fiducial, noise from the quietest 20 ms
    // stretch of the PR segment region.
    let (qrs_lo, qrs_hi) = (fid.saturating_sub(ms(60.0)), (fid + ms(60.0)).min(len - 1));
    let peak = max_in(&velocity, qrs_lo, qrs_hi).1;
    let noise = quietest(&velocity, fid.saturating_sub(ms(200.0)), fid.saturating_sub(ms(40.0)), ms(20.0));
    // The QRS ends where its velocity falls back to the level at which it
    // began: one threshold for both ends. (An offset threshold half as
    // high again ended the QRS 6 ms early on average against six carts.)
    let threshold = noise + 0.04 * (peak - noise);
    let mut fiducials = Fiducials::default();

    let first_steep = (qrs_lo..=fid).find(|&i| velocity[i] >= 0.3 * peak).unwrap_or(fid);
    let qrs_onset = (fid.saturating_sub(ms(150.0))..first_steep).rev().find(|&i| velocity[i] < threshold);
    let last_steep = (fid..=qrs_hi).rev().find(|&i| velocity[i] >= 0.3 * peak).unwrap_or(fid);
    let qrs_offset = (last_steep..(fid + ms(200.0)).min(len)).find(|&i| velocity[i] < threshold);
    let (Some(qrs_onset), Some(qrs_offset)) = (qrs_onset, qrs_offset) else { return fiducials };
    fiducials.qrs_onset = Some(qrs_onset);
    fiducials.qrs_offset = Some(qrs_offset);

    // Baseline: each lead's level over the 16 ms before QRS onset.
    let base_from = qrs_onset.saturating_sub(ms(20.0));
    let base_to = qrs_onset.saturating_sub(ms(4.0)).max(base_from + 1);
    let corrected: Vec<Vec<f32>> = beats
        .leads
        .iter()
        .map(|lead| {
            let level = lead[base_from..base_to].iter().sum::<f32>() / (base_to - base_from) as f32;
            lead.iter().map(|v| v - level).collect()
        })
        .collect();
    let magnitude = moving_average(&spatial_magnitude(&corrected), ms(10.0).max(1));

    // T: apex after the ST segment, its steepest descent, then the end.
    let t_from = qrs_offset + ms(80.0);
    let t_to = len.saturating_sub(ms(10.0));
    if t_from + ms(40.0) < t_to {
        let (t_apex, t_height) = max_in(&magnitude, t_from, t_to);
        let base = quietest(&magnitude, base_from, base_to + 1, 2);
        if t_height > base + 25.0 {
            let step = ms(4.0).max(1);
            let descent_end = (t_apex + ms(250.0)).min(len - 1 - step);
            let steepest =
                (t_apex..descent_end).map(|i| (i, (magnitude[i + step] - magnitude[i]) / step as f32)).min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((at, _)) = steepest.filter(|(_, s)| *s < 0.0) {
                fiducials.t_end = Some(trapezium_end(&magnitude, at, (at + ms(T_DESCENT_MS)).min(len - 1)));
            }
        }
    }

    // P: on the velocity of the low-passed beats, which no baseline offset
    // between the TP and PR segments disturbs. A P wave is one or two
    // velocity humps (up- and down-slope, a dip at its apex) between
    // 320 and 20 ms before QRS onset.
    let p_from = qrs_onset.saturating_sub(ms(320.0));
    let p_to = qrs_onset.saturating_sub(ms(20.0));
    if p_from + ms(60.0) < p_to {
        let slow = moving_average(&velocity, ms(20.0).max(1));
        let (hump, hump_height) = max_in(&slow, p_from + ms(10.0), p_to);
        // The noise level: most of the window is PR segment and TP, so a
        // low percentile of its velocity is the noise, not the P wave.
        let noise = percentile(&slow[p_from..qrs_onset.saturating_sub(ms(10.0))], 0.4);
        // At least 1 µV/ms of spatial slope, and well clear of the noise.
        let min_slope = 1.0 * 1000.0 / rate_hz as f32;
        if hump_height - noise >= min_slope && hump_height >= 1.8 * noise {
            let threshold = noise + 0.2 * (hump_height - noise);
            let gap = ms(20.0);
            let above = |i: usize| slow[i] >= threshold;
            let mut onset = hump;
            let mut i = hump;
            while i > p_from {
                i -= 1;
                if above(i) {
                    onset = i;
                } else if onset - i > gap {
                    break;
                }
            }
            let mut offset = hump;
            for i in hump..p_to {
                if above(i) {
                    offset = i;
                } else if i - offset > gap {
                    break;
                }
            }
            if onset > p_from && offset > onset + ms(40.0) {
                fiducials.p_onset = Some(onset);
                fiducials.p_offset = Some(offset);
            }
        }
    }
    fiducials
}

/// The longest a T wave's descent lasts after its steepest point: the
/// trapezium's far corner, which need only lie beyond the T end.
const T_DESCENT_MS: f64 = 150.0;

/// T end by the trapezium area (Vázquez-Seisdedos et al., BioMedical
/// Engineering OnLine 2011): of the points `xi` after the steepest descent
/// `xm`, the one that maximises the area of the trapezium with corners
/// (xm, y(xm)), (xi, y(xi)), (xr, y(xi)), (xr, y(xm)). Where the tangent
/// method extends the steepest slope to a baseline, and so ends the T wave
/// where its curve is still bending towards it (8–32 ms before the carts'
/// T ends on every ECG of the corpus), the trapezium finds where the curve
/// has flattened, and needs no baseline level.
fn trapezium_end(y: &[f32], xm: usize, xr: usize) -> usize {
    let area = |xi: usize| 0.5 * (y[xm] - y[xi]) * (2 * xr - xi - xm) as f32;
    (xm + 1..=xr).max_by(|a, b| area(*a).total_cmp(&area(*b))).unwrap_or(xm)
}

/// |d/dt| of the vector of all leads (central difference), µV per sample.
fn spatial_velocity(leads: &[Vec<f32>]) -> Vec<f32> {
    let n = leads[0].len();
    let mut out = vec![0.0f32; n];
    for (i, o) in out.iter_mut().enumerate().take(n - 1).skip(1) {
        let sum: f32 = leads.iter().map(|l| ((l[i + 1] - l[i - 1]) / 2.0).powi(2)).sum();
        *o = sum.sqrt();
    }
    out[0] = out[1];
    out[n - 1] = out[n - 2];
    out
}

/// Length of the vector of all leads' amplitudes.
fn spatial_magnitude(leads: &[Vec<f32>]) -> Vec<f32> {
    let n = leads[0].len();
    (0..n).map(|i| leads.iter().map(|l| l[i] * l[i]).sum::<f32>().sqrt()).collect()
}

fn max_in(x: &[f32], from: usize, to: usize) -> (usize, f32) {
    let to = to.min(x.len());
    if from >= to {
        return (from.min(x.len().saturating_sub(1)), x.get(from).copied().unwrap_or(0.0));
    }
    x[from..to].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, &v)| (from + i, v)).unwrap()
}

/// Lowest mean over any `window`-sample stretch within `from..to`.
fn quietest(x: &[f32], from: usize, to: usize, window: usize) -> f32 {
    let to = to.min(x.len());
    let window = window.max(1);
    if from + window > to {
        return x.get(from.min(x.len().saturating_sub(1))).copied().unwrap_or(0.0);
    }
    (from..=to - window).map(|i| x[i..i + window].iter().sum::<f32>() / window as f32).fold(f32::MAX, f32::min)
}
