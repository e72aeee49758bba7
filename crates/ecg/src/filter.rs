//! Zero-phase IIR filters for analysis and display: baseline-wander
//! high-pass, powerline notch, muscle-noise low-pass, and the QRS band.
//!
//! Each is a second-order section (RBJ cookbook biquad) run forward and
//! backward (`filtfilt`), so waves keep their timing: a QRS onset measured
//! on the filtered signal is where it is on the raw one. The input is never
//! modified; every function returns a new signal.

use serde::Serialize;

/// One second-order section, normalised so a0 = 1.
#[derive(Debug, Clone, Copy)]
pub struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    fn from_cookbook(b: [f64; 3], a: [f64; 3]) -> Biquad {
        Biquad { b: [b[0] / a[0], b[1] / a[0], b[2] / a[0]], a: [a[1] / a[0], a[2] / a[0]] }
    }

    fn omega(cutoff_hz: f64, rate_hz: f64) -> (f64, f64) {
        let w = 2.0 * std::f64::consts::PI * cutoff_hz / rate_hz;
        (w.cos(), w.sin())
    }

    /// Butterworth-response (Q = 1/√2) high-pass.
    pub fn high_pass(cutoff_hz: f64, rate_hz: f64) -> Biquad {
        let (cos, sin) = Biquad::omega(cutoff_hz, rate_hz);
        let alpha = sin / std::f64::consts::SQRT_2;
        Biquad::from_cookbook([(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0], [1.0 + alpha, -2.0 * cos, 1.0 - alpha])
    }

    /// Butterworth-response (Q = 1/√2) low-pass.
    pub fn low_pass(cutoff_hz: f64, rate_hz: f64) -> Biquad {
        let (cos, sin) = Biquad::omega(cutoff_hz, rate_hz);
        let alpha = sin / std::f64::consts::SQRT_2;
        Biquad::from_cookbook([(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0], [1.0 + alpha, -2.0 * cos, 1.0 - alpha])
    }

    /// Notch at `centre_hz`, bandwidth `centre_hz / q`.
    pub fn notch(centre_hz: f64, q: f64, rate_hz: f64) -> Biquad {
        let (cos, sin) = Biquad::omega(centre_hz, rate_hz);
        let alpha = sin / (2.0 * q);
        Biquad::from_cookbook([1.0, -2.0 * cos, 1.0], [1.0 + alpha, -2.0 * cos, 1.0 - alpha])
    }

    /// Forward then backward: zero phase, squared magnitude response.
    pub fn filtfilt(&self, x: &mut [f32]) {
        self.run(&mut [&mut *x], false);
        self.run(&mut [x], true);
    }

    /// [`Biquad::filtfilt`] on each of `signals`, with the same result.
    /// The recursion is a chain of dependent multiply-adds, so one signal
    /// keeps a core waiting on each step; four signals of the same length
    /// run side by side, step by step, fill those waits.
    pub fn filtfilt_each(&self, signals: &mut [Vec<f32>]) {
        let same_length = signals.windows(2).all(|w| w[0].len() == w[1].len());
        let mut groups = signals.chunks_exact_mut(LANES);
        if same_length {
            for group in &mut groups {
                let mut lanes: [&mut [f32]; LANES] = std::array::from_fn(|_| &mut [][..]);
                for (lane, signal) in lanes.iter_mut().zip(group.iter_mut()) {
                    *lane = signal.as_mut_slice();
                }
                self.run(&mut lanes, false);
                self.run(&mut lanes, true);
            }
        }
        let rest = if same_length { groups.into_remainder() } else { signals };
        rest.iter_mut().for_each(|signal| self.filtfilt(signal));
    }

    /// Runs the section over `L` signals of one length in place, side by
    /// side, in the given direction, each starting from the steady state
    /// for its first sample (no start-up transient).
    fn run<const L: usize>(&self, lanes: &mut [&mut [f32]; L], reverse: bool) {
        let n = lanes[0].len();
        if n == 0 {
            return;
        }
        let gain_dc = (self.b[0] + self.b[1] + self.b[2]) / (1.0 + self.a[0] + self.a[1]);
        // Transposed direct form II state for a constant input x0.
        let (mut s1, mut s2) = ([0.0f64; L], [0.0f64; L]);
        for (l, lane) in lanes.iter().enumerate() {
            let x0 = f64::from(if reverse { lane[n - 1] } else { lane[0] });
            let y0 = x0 * gain_dc;
            s1[l] = y0 - self.b[0] * x0;
            s2[l] = self.b[2] * x0 - self.a[1] * y0;
        }
        for k in 0..n {
            let i = if reverse { n - 1 - k } else { k };
            for l in 0..L {
                let input = f64::from(lanes[l][i]);
                let out = self.b[0] * input + s1[l];
                s1[l] = self.b[1] * input - self.a[0] * out + s2[l];
                s2[l] = self.b[2] * input - self.a[1] * out;
                lanes[l][i] = out as f32;
            }
        }
    }
}

/// Signals filtered side by side by [`Biquad::filtfilt_each`].
const LANES: usize = 4;

/// The filters applied to a signal for analysis or display, recorded with
/// each result so a reader knows what the trace went through.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FilterSettings {
    /// Baseline-wander removal cut-off (Hz), e.g. 0.5.
    pub high_pass_hz: Option<f64>,
    /// Powerline frequency to notch out: 50 Hz in China, 60 in the Americas.
    pub notch_hz: Option<f64>,
    /// Muscle-noise low-pass cut-off (Hz), e.g. 40 for display.
    pub low_pass_hz: Option<f64>,
}

impl FilterSettings {
    /// What measurements are made on: baseline and mains removed, QRS
    /// detail kept up to 100 Hz.
    pub const ANALYSIS: FilterSettings = FilterSettings { high_pass_hz: Some(0.5), notch_hz: Some(50.0), low_pass_hz: Some(100.0) };
    /// The printed page's usual "0.5–40 Hz, 50 Hz notch".
    pub const DISPLAY: FilterSettings = FilterSettings { high_pass_hz: Some(0.5), notch_hz: Some(50.0), low_pass_hz: Some(40.0) };
    pub const NONE: FilterSettings = FilterSettings { high_pass_hz: None, notch_hz: None, low_pass_hz: None };

    pub fn with_mains(mut self, mains_hz: f64) -> FilterSettings {
        if self.notch_hz.is_some() {
            self.notch_hz = Some(mains_hz);
        }
        self
    }

    /// A filtered copy of `samples`. Cut-offs at or above Nyquist are
    /// skipped (a 100 Hz low-pass on a 200 Hz recording would alias).
    pub fn apply(&self, samples: &[f32], rate_hz: f64) -> Vec<f32> {
        let mut out = samples.to_vec();
        for section in self.sections(rate_hz) {
            section.filtfilt(&mut out);
        }
        out
    }

    /// [`FilterSettings::apply`] on each of `signals`, faster when they
    /// have one length (the leads of a recording).
    pub fn apply_each(&self, signals: &[&[f32]], rate_hz: f64) -> Vec<Vec<f32>> {
        let mut out: Vec<Vec<f32>> = signals.iter().map(|s| s.to_vec()).collect();
        for section in self.sections(rate_hz) {
            section.filtfilt_each(&mut out);
        }
        out
    }

    /// The sections `apply` runs, in order.
    fn sections(&self, rate_hz: f64) -> Vec<Biquad> {
        let nyquist = rate_hz / 2.0;
        let mut sections = Vec::new();
        if let Some(hp) = self.high_pass_hz.filter(|f| *f > 0.0 && *f < nyquist) {
            sections.push(Biquad::high_pass(hp, rate_hz));
        }
        if let Some(notch) = self.notch_hz.filter(|f| *f > 0.0 && *f < nyquist * 0.95) {
            sections.push(Biquad::notch(notch, 30.0, rate_hz));
        }
        if let Some(lp) = self.low_pass_hz.filter(|f| *f > 0.0 && *f < nyquist * 0.9) {
            sections.push(Biquad::low_pass(lp, rate_hz));
        }
        sections
    }

    /// "0.5–40 Hz, notch 50 Hz", for the page header.
    pub fn describe(&self) -> String {
        let band = match (self.high_pass_hz, self.low_pass_hz) {
            (Some(h), Some(l)) => format!("{h}–{l} Hz"),
            (Some(h), None) => format!("≥{h} Hz"),
            (None, Some(l)) => format!("≤{l} Hz"),
            (None, None) => "unfiltered".to_string(),
        };
        match self.notch_hz {
            Some(n) => format!("{band}, notch {n} Hz"),
            None => band,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtering_side_by_side_gives_what_filtering_one_by_one_gives() {
        let signals: Vec<Vec<f32>> =
            (0..7).map(|k| sine(1.0 + k as f64 * 7.0, 500.0, 1000).iter().map(|v| v + 300.0 * k as f32).collect()).collect();
        let views: Vec<&[f32]> = signals.iter().map(|s| s.as_slice()).collect();
        let together = FilterSettings::DISPLAY.apply_each(&views, 500.0);
        for (signal, filtered) in signals.iter().zip(&together) {
            assert_eq!(&FilterSettings::DISPLAY.apply(signal, 500.0), filtered);
        }
        // Signals of different lengths are filtered one by one.
        let uneven = [&signals[0][..900], &signals[1][..]];
        let filtered = FilterSettings::ANALYSIS.apply_each(&uneven, 500.0);
        assert_eq!(filtered[0], FilterSettings::ANALYSIS.apply(uneven[0], 500.0));
    }

    fn sine(freq: f64, rate: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin() as f32 * 1000.0).collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn notch_removes_mains_and_keeps_ten_hertz() {
        let rate = 500.0;
        let hum = sine(50.0, rate, 5000);
        let signal = sine(10.0, rate, 5000);
        let settings = FilterSettings { high_pass_hz: None, notch_hz: Some(50.0), low_pass_hz: None };
        let hum_left = rms(&settings.apply(&hum, rate)[500..4500]);
        let signal_left = rms(&settings.apply(&signal, rate)[500..4500]);
        assert!(hum_left < 10.0, "50 Hz left at {hum_left} µV rms of 707");
        assert!((signal_left - 707.1).abs() < 10.0, "10 Hz came out at {signal_left}");
    }

    #[test]
    fn high_pass_removes_baseline_offset_and_drift_without_shifting_waves() {
        let rate = 500.0;
        let drift: Vec<f32> = (0..5000).map(|i| 3000.0 + i as f32 * 0.2).collect();
        let out = Biquad::high_pass(0.5, rate);
        let mut x = drift.clone();
        out.filtfilt(&mut x);
        assert!(x[1000..4000].iter().all(|v| v.abs() < 20.0), "drift not removed: {}", x[2500]);
        // A narrow spike stays where it was (zero phase).
        let mut spike = vec![0.0f32; 2000];
        spike[1000] = 1000.0;
        Biquad::low_pass(40.0, rate).filtfilt(&mut spike);
        let peak = spike.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(peak, 1000);
    }
}
