//! Beat-by-beat comparison of detected QRS locations with reference
//! annotations, as ANSI/AAMI EC57 (and WFDB's `bxb`) score detectors.

use serde::Serialize;

/// Counts and the two figures EC57 reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BeatScore {
    pub true_positives: usize,
    pub false_negatives: usize,
    pub false_positives: usize,
}

impl BeatScore {
    /// Sensitivity, %: detected reference beats over all reference beats.
    pub fn sensitivity(&self) -> f64 {
        100.0 * self.true_positives as f64 / (self.true_positives + self.false_negatives).max(1) as f64
    }

    /// Positive predictivity, %: true detections over all detections.
    pub fn positive_predictivity(&self) -> f64 {
        100.0 * self.true_positives as f64 / (self.true_positives + self.false_positives).max(1) as f64
    }

    /// Sums the counts of two records (EC57's gross statistics).
    pub fn plus(self, other: BeatScore) -> BeatScore {
        BeatScore {
            true_positives: self.true_positives + other.true_positives,
            false_negatives: self.false_negatives + other.false_negatives,
            false_positives: self.false_positives + other.false_positives,
        }
    }
}

/// Matches each reference beat with the nearest unmatched detection within
/// `window` samples (EC57: 150 ms). Both lists must be sorted. Only beats
/// and detections at or after `start` count (EC57 leaves a 5-minute learning
/// period; pass 0 to score the whole record).
pub fn score(reference: &[usize], detected: &[usize], window: usize, start: usize) -> BeatScore {
    let reference: Vec<usize> = reference.iter().copied().filter(|&r| r >= start).collect();
    let detected: Vec<usize> = detected.iter().copied().filter(|&d| d >= start).collect();
    let mut used = vec![false; detected.len()];
    let mut true_positives = 0;
    let mut j = 0;
    for &r in &reference {
        while j < detected.len() && detected[j] + window < r {
            j += 1;
        }
        let best =
            (j..detected.len()).take_while(|&k| detected[k] <= r + window).filter(|&k| !used[k]).min_by_key(|&k| detected[k].abs_diff(r));
        if let Some(k) = best {
            used[k] = true;
            true_positives += 1;
        }
    }
    BeatScore { true_positives, false_negatives: reference.len() - true_positives, false_positives: detected.len() - true_positives }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_misses_and_extras() {
        let s = score(&[100, 400, 700, 1000], &[105, 390, 560, 1100], 54, 0);
        assert_eq!(s, BeatScore { true_positives: 2, false_negatives: 2, false_positives: 2 });
        assert_eq!(s.sensitivity(), 50.0);
    }
}
