//! Median beats: one representative beat per lead, from the dominant
//! (normally conducted) beats aligned on their QRS.
//!
//! Premature beats and beats unlike the others (PVCs, artefacts) are left
//! out; the remaining beats are aligned by cross-correlation of their QRS
//! and the sample-wise median is taken, which cancels noise without
//! smearing the waves as an average over misaligned beats would.

/// One median beat per lead, all sharing one time axis.
#[derive(Debug, Clone)]
pub struct MedianBeats {
    /// Samples of each lead's median beat, in microvolts.
    pub leads: Vec<Vec<f32>>,
    /// Index of the QRS fiducial within each median beat.
    pub fiducial: usize,
    /// How many beats went into the median.
    pub beats_used: usize,
}

/// Builds median beats around `qrs` (fiducial samples) from `leads`.
/// Returns `None` with fewer than 3 usable beats.
pub fn median_beats(leads: &[&[f32]], qrs: &[usize], rate_hz: f64) -> Option<MedianBeats> {
    if qrs.len() < 3 {
        return None;
    }
    let rr: Vec<usize> = qrs.windows(2).map(|w| w[1] - w[0]).collect();
    let median_rr_samples = median_usize(&rr);
    let median_rr = median_rr_samples as f64 / rate_hz;
    let pre = ((0.45 * median_rr).clamp(0.28, 0.4) * rate_hz) as usize;
    let post = ((0.65 * median_rr).clamp(0.42, 0.7) * rate_hz) as usize;
    let n = leads[0].len();

    // Dominant beats: not premature (RR before ≥ 85 % of the median).
    let mut chosen: Vec<usize> = qrs
        .iter()
        .enumerate()
        .filter(|&(i, &q)| q >= pre + 8 && q + post + 8 < n && (i == 0 || rr[i - 1] * 100 >= median_rr_samples * 85))
        .map(|(_, &q)| q)
        .collect();
    if chosen.len() < 3 {
        return None;
    }

    // QRS window for shape comparison and alignment: ±60 ms.
    let half = (0.06 * rate_hz) as usize;
    let max_shift = (0.016 * rate_hz).ceil() as isize;
    let qrs_shape = |q: usize| -> Vec<f32> { leads.iter().flat_map(|l| l[q - half..q + half].iter().copied()).collect() };
    let template = median_of(&chosen.iter().map(|&q| qrs_shape(q)).collect::<Vec<_>>());
    // Align each beat to the template, then drop beats unlike it.
    let mut aligned = Vec::with_capacity(chosen.len());
    for &q in &chosen {
        let mut best = (f32::MIN, 0isize);
        for shift in -max_shift..=max_shift {
            let c = (q as isize + shift) as usize;
            if c < pre + 1 || c + post + 1 >= n {
                continue;
            }
            let r = correlation(&qrs_shape(c), &template);
            if r > best.0 {
                best = (r, shift);
            }
        }
        if best.0 >= 0.85 {
            aligned.push((q as isize + best.1) as usize);
        }
    }
    if aligned.len() < 3 {
        // Too few similar beats (e.g. every other beat ectopic): use all.
        aligned = chosen.clone();
    }
    chosen = aligned;

    let length = pre + post;
    let mut out = Vec::with_capacity(leads.len());
    let mut column = vec![0.0f32; chosen.len()];
    for lead in leads {
        let mut beat = vec![0.0f32; length];
        for (t, value) in beat.iter_mut().enumerate() {
            for (k, &q) in chosen.iter().enumerate() {
                column[k] = lead[q - pre + t];
            }
            *value = median_f32(&mut column);
        }
        out.push(beat);
    }
    Some(MedianBeats { leads: out, fiducial: pre, beats_used: chosen.len() })
}

fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 { 0.0 } else { ab / (aa * bb).sqrt() }
}

fn median_of(rows: &[Vec<f32>]) -> Vec<f32> {
    let width = rows[0].len();
    let mut column = vec![0.0f32; rows.len()];
    (0..width)
        .map(|t| {
            for (k, row) in rows.iter().enumerate() {
                column[k] = row[t];
            }
            median_f32(&mut column)
        })
        .collect()
}

fn median_f32(values: &mut [f32]) -> f32 {
    let mid = values.len() / 2;
    let upper = *values.select_nth_unstable_by(mid, f32::total_cmp).1;
    if values.len() % 2 == 1 {
        upper
    } else {
        let lower = values[..mid].iter().copied().fold(f32::MIN, f32::max);
        (lower + upper) / 2.0
    }
}

fn median_usize(values: &[usize]) -> usize {
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    *v.select_nth_unstable(mid).1
}
