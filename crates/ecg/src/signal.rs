//! Small numeric helpers on runs of samples, shared by detection and
//! delineation.

/// The `q` quantile (0..=1) of `x`, nearest rank. Runs longer than 40 000
/// samples (30-minute records) are sub-sampled to about 20 000, to which a
/// percentile is robust; shorter runs are exact.
pub(crate) fn percentile(x: &[f32], q: f64) -> f32 {
    let stride = (x.len() / 20_000).max(1);
    let mut sample: Vec<f32> = x.iter().step_by(stride).copied().collect();
    if sample.is_empty() {
        return 0.0;
    }
    let k = ((sample.len() - 1) as f64 * q) as usize;
    *sample.select_nth_unstable_by(k, f32::total_cmp).1
}

/// Centred moving average over `window` samples (shorter at the ends), by
/// prefix sums so its cost does not grow with the window.
pub(crate) fn moving_average(x: &[f32], window: usize) -> Vec<f32> {
    let n = x.len();
    let half = window / 2;
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0f64);
    let mut sum = 0.0f64;
    for &v in x {
        sum += v as f64;
        prefix.push(sum);
    }
    (0..n)
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + half + 1).min(n);
            ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
        })
        .collect()
}
