//! QRS detection scored as ANSI/AAMI EC57 (150 ms match window, every
//! record scored on its own) against reference beats: the cardiologists'
//! labels of MIT-BIH record 100; the carts' own beat times in the 12-lead
//! exports; and record 100 made hard in the ways MIT-BIH's difficult
//! records are — premature ventricular beats in bigeminy and trigeminy
//! (wide, tall or not, opposite in polarity, early after a normal beat),
//! fast rates, abrupt changes of amplitude, tall T waves, and muscle
//! noise, baseline wander and electrode motion added as the MIT-BIH Noise
//! Stress Test adds them (to both leads, from minute 5, two minutes on
//! and two off, at 12, 6 and 0 dB).
//!
//! The altered records are built here, from record 100 and a fixed seed:
//! their reference beats are record 100's, plus the beats inserted.

mod common;

use telediag_ecg::read::wfdb;
use telediag_ecg::scoring::{self, BeatScore};
use telediag_ecg::{EcgRecord, qrs, read_path};

/// Record 100 and its labelled beats (sample indices at 360 Hz).
fn record_100() -> Option<(EcgRecord, Vec<usize>)> {
    let root = common::corpus()?;
    let record = read_path(&root.join("wfdb/100.hea")).unwrap();
    let annotations = wfdb::read_annotations(&std::fs::read(root.join("wfdb/100.atr")).unwrap()).unwrap();
    let beats: Vec<usize> = annotations.iter().filter(|a| wfdb::is_beat(a.code)).map(|a| a.sample as usize).collect();
    assert_eq!(beats.len(), 2273, "MIT-BIH 100 has 2273 labelled beats");
    Some((record, beats))
}

fn detect(leads: &[Vec<f32>], rate_hz: f64) -> Vec<usize> {
    let views: Vec<&[f32]> = leads.iter().map(Vec::as_slice).collect();
    qrs::detect(&views, rate_hz)
}

/// EC57 scores of one record, printed as `bxb` prints them.
fn scored(name: &str, reference: &[usize], detected: &[usize], rate_hz: f64) -> BeatScore {
    let score = scoring::score(reference, detected, (0.15 * rate_hz) as usize, 0);
    if std::env::var("QRS_DEBUG").is_ok() {
        let window = (0.15 * rate_hz) as usize;
        let extras: Vec<String> = detected
            .iter()
            .filter(|d| !reference.iter().any(|r| r.abs_diff(**d) <= window))
            .take(40)
            .map(|d| {
                let before = reference.iter().rev().find(|r| *r <= d).copied().unwrap_or(0);
                format!("{d} (+{} ms)", (d - before) as f64 * 1000.0 / rate_hz)
            })
            .collect();
        let misses: Vec<String> =
            reference.iter().filter(|r| !detected.iter().any(|d| d.abs_diff(**r) <= window)).take(40).map(|r| r.to_string()).collect();
        println!("   extra {extras:?}\n   missed {misses:?}");
    }
    println!(
        "{name:<34} beats {:>5}  TP {:>5} FN {:>3} FP {:>3}  Se {:>7.3} %  +P {:>7.3} %",
        reference.len(),
        score.true_positives,
        score.false_negatives,
        score.false_positives,
        score.sensitivity(),
        score.positive_predictivity()
    );
    score
}

/// A reproducible stream of numbers (xorshift64*), for noise.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, by Box and Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// First-order low-pass of `x` at `hz` (for shaping noise).
fn smooth(x: &[f64], hz: f64, rate_hz: f64) -> Vec<f64> {
    let a = 1.0 - (-2.0 * std::f64::consts::PI * hz / rate_hz).exp();
    let mut y = 0.0;
    x.iter()
        .map(|v| {
            y += a * (v - y);
            y
        })
        .collect()
}

/// The kinds of noise of the MIT-BIH Noise Stress Test, emulated: its
/// recordings are not on this machine.
#[derive(Clone, Copy, Debug)]
enum NoiseKind {
    /// Muscle (EMG): broadband, most power 20–100 Hz.
    Muscle,
    /// Baseline wander: respiration and slow drift, below 1 Hz.
    Wander,
    /// Electrode motion: bursts of large slow swings and steps, 1–10 Hz,
    /// the hardest for detectors because it overlaps the QRS band. The
    /// body moves: the bursts come at the same moments in every lead.
    ElectrodeMotion,
    /// The same bursts, each lead at moments of its own: one electrode
    /// loose at a time.
    LooseElectrode,
}

fn noise(kind: NoiseKind, n: usize, rate_hz: f64, seed: u64) -> Vec<f64> {
    let mut g = Noise(seed);
    let white: Vec<f64> = (0..n).map(|_| g.normal()).collect();
    match kind {
        NoiseKind::Muscle => {
            // White minus its 20 Hz low-pass: mostly above 20 Hz.
            let low = smooth(&white, 20.0, rate_hz);
            white.iter().zip(&low).map(|(w, l)| w - l).collect()
        }
        NoiseKind::Wander => {
            let drift = smooth(&smooth(&white, 0.05, rate_hz), 0.05, rate_hz);
            let scale = drift.iter().map(|v| v.abs()).fold(1e-9, f64::max);
            (0..n)
                .map(|i| {
                    let t = i as f64 / rate_hz;
                    (2.0 * std::f64::consts::PI * 0.27 * t).sin()
                        + 0.6 * (2.0 * std::f64::consts::PI * 0.11 * t + 1.0).sin()
                        + drift[i] / scale
                })
                .collect()
        }
        NoiseKind::ElectrodeMotion | NoiseKind::LooseElectrode => {
            // Bursts (about one a second, 0.2–1 s long) of 1–10 Hz swings
            // with steps in them; their waveforms differ from lead to lead.
            let band: Vec<f64> = {
                let low = smooth(&smooth(&white, 10.0, rate_hz), 10.0, rate_hz);
                let lower = smooth(&low, 1.0, rate_hz);
                low.iter().zip(&lower).map(|(a, b)| a - b).collect()
            };
            let mut timing = Noise(if matches!(kind, NoiseKind::LooseElectrode) { seed ^ 0xB0D1_0F00 } else { 0xB0D1_0F00 });
            let mut out = vec![0.0; n];
            let mut i = 0;
            while i < n {
                let gap = (timing.uniform() * 1.5 * rate_hz) as usize;
                let length = ((0.2 + 0.8 * timing.uniform()) * rate_hz) as usize;
                let step = g.normal() * 0.5;
                for k in (i + gap).min(n)..(i + gap + length).min(n) {
                    out[k] = band[k] * 4.0 + step;
                }
                i += gap + length;
            }
            out
        }
    }
}

/// The noise-stress signal power of a lead (NST's convention): the mean
/// squared peak-to-peak QRS amplitude over eight, here over the labelled
/// beats.
fn signal_power(lead: &[f32], beats: &[usize], rate_hz: f64) -> f64 {
    let half = (0.05 * rate_hz) as usize;
    let powers: Vec<f64> = beats
        .iter()
        .filter(|&&b| b >= half && b + half < lead.len())
        .map(|&b| {
            let window = &lead[b - half..b + half];
            let (lo, hi) = window.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            f64::from(hi - lo).powi(2) / 8.0
        })
        .collect();
    powers.iter().sum::<f64>() / powers.len() as f64
}

/// Record 100 with `kind` noise at `snr_db`, on from minute 5, two minutes
/// on and two off, each lead its own noise.
fn noise_stressed(record: &EcgRecord, beats: &[usize], kind: NoiseKind, snr_db: f64) -> Vec<Vec<f32>> {
    let rate = record.sampling_rate_hz;
    let minute = (60.0 * rate) as usize;
    record
        .leads
        .iter()
        .enumerate()
        .map(|(l, lead)| {
            let n = lead.samples_uv.len();
            let raw = noise(kind, n, rate, 0x5EED + l as u64 * 7919 + kind as u64 * 104_729);
            let power = raw.iter().map(|v| v * v).sum::<f64>() / n as f64;
            let gain = (signal_power(&lead.samples_uv, beats, rate) / power / 10f64.powf(snr_db / 10.0)).sqrt();
            lead.samples_uv
                .iter()
                .enumerate()
                .map(
                    |(i, v)| {
                        if i >= 5 * minute && ((i - 5 * minute) / (2 * minute)).is_multiple_of(2) { v + (raw[i] * gain) as f32 } else { *v }
                    },
                )
                .collect()
        })
        .collect()
}

/// The shape of an inserted premature ventricular complex.
#[derive(Clone, Copy)]
enum Ectopic {
    /// A smooth Gaussian of this standard deviation (s): 140 ms wide at
    /// 35 ms, with little energy left in the QRS band.
    Smooth { sigma_s: f64 },
    /// The preceding normal QRS itself (±50 ms), stretched this many times
    /// in time: a real complex's notches and onset, made wide.
    Widened { factor: f64 },
}

/// Record 100 with a premature ventricular beat in every `every`-th RR
/// interval — bigeminy (N V N V) at 1, trigeminy (N V N N V N) at 2 — at
/// 45 % of the interval, the next normal beat kept where it was (the
/// hardest case): wide, `height` times the normal R and opposite to it,
/// with its broad discordant T wave. Returns the leads and the reference
/// beats, inserted ones too.
fn ventricular_ectopy(record: &EcgRecord, beats: &[usize], every: usize, height: f64, shape: Ectopic) -> (Vec<Vec<f32>>, Vec<usize>) {
    let rate = record.sampling_rate_hz;
    let original: Vec<&[f32]> = record.leads.iter().map(|l| l.samples_uv.as_slice()).collect();
    let mut leads: Vec<Vec<f32>> = original.iter().map(|l| l.to_vec()).collect();
    let mut reference = beats.to_vec();
    let qrs_half = (0.05 * rate) as usize;
    for pair in beats.windows(2).step_by(every) {
        let at = pair[0] + (pair[1] - pair[0]) * 45 / 100;
        // Not where the next beat would come within 400 ms of the ectopic
        // one, inside its own QT, where the ventricles cannot beat again
        // (after record 100's atrial premature beats, and at rates above
        // 82 bpm).
        if (pair[1] - at) as f64 / rate < 0.4 {
            continue;
        }
        reference.push(at);
        for (lead, source) in leads.iter_mut().zip(&original) {
            let normal = pair[0];
            let r_height = f64::from(source[normal] - source[normal.saturating_sub((0.1 * rate) as usize)]);
            // The normal QRS less the straight line between its ends.
            let (a, z) = (normal.saturating_sub(qrs_half), (normal + qrs_half).min(source.len() - 1));
            let qrs_at = |t: f64| -> f64 {
                let x = normal as f64 + t * rate;
                if x < a as f64 || x >= z as f64 {
                    return 0.0;
                }
                let (i, f) = (x as usize, x.fract());
                let v = f64::from(source[i]) * (1.0 - f) + f64::from(source[i + 1]) * f;
                let line = f64::from(source[a]) + (f64::from(source[z]) - f64::from(source[a])) * (x - a as f64) / (z - a) as f64;
                v - line
            };
            let span = (0.5 * rate) as isize;
            for k in -span..span {
                let Some(i) = at.checked_add_signed(k).filter(|i| *i < lead.len()) else { continue };
                let t = k as f64 / rate;
                let qrs = match shape {
                    Ectopic::Smooth { sigma_s } => -height * r_height * (-(t / sigma_s).powi(2) / 2.0).exp(),
                    Ectopic::Widened { factor } => -height * qrs_at(t / factor),
                };
                let t_wave = 0.45 * height * r_height * (-((t - 0.24) / 0.07).powi(2) / 2.0).exp();
                lead[i] += (qrs + t_wave) as f32;
            }
        }
    }
    reference.sort_unstable();
    (leads, reference)
}

/// Record 100 with its amplitude changed abruptly every 20 s, through
/// ×1, ×0.2, ×4 and ×0.5 (a lead cable moved, a gain switched). Each lead
/// is scaled about its median, as an AC-coupled amplifier's gain would
/// scale it: scaling record 100's DC offset too would put a step, as tall
/// as a QRS, at every change.
fn amplitude_steps(record: &EcgRecord) -> Vec<Vec<f32>> {
    let period = (20.0 * record.sampling_rate_hz) as usize;
    let gains = [1.0f32, 0.2, 4.0, 0.5];
    record
        .leads
        .iter()
        .map(|l| {
            let mut sorted = l.samples_uv.clone();
            sorted.sort_by(f32::total_cmp);
            let baseline = sorted[sorted.len() / 2];
            l.samples_uv.iter().enumerate().map(|(i, v)| baseline + (v - baseline) * gains[i / period % gains.len()]).collect()
        })
        .collect()
}

/// Record 100 with every T wave three times as tall: the stretch 150–450 ms
/// after each beat, less its own mean, added twice over under a smooth
/// window.
fn tall_t_waves(record: &EcgRecord, beats: &[usize]) -> Vec<Vec<f32>> {
    let rate = record.sampling_rate_hz;
    let (from, to) = ((0.15 * rate) as usize, (0.45 * rate) as usize);
    record
        .leads
        .iter()
        .map(|l| {
            let mut out = l.samples_uv.clone();
            for &b in beats {
                if b + to >= out.len() {
                    continue;
                }
                let window = &l.samples_uv[b + from..b + to];
                let base = (window[0] + window[window.len() - 1]) / 2.0;
                for (k, v) in window.iter().enumerate() {
                    let hann = (std::f32::consts::PI * k as f32 / (to - from) as f32).sin().powi(2);
                    out[b + from + k] += 2.0 * hann * (v - base);
                }
            }
            out
        })
        .collect()
}

/// A scored record.
struct Case {
    name: String,
    reference: Vec<usize>,
    leads: Vec<Vec<f32>>,
    rate_hz: f64,
    /// The floors of its sensitivity and positive predictivity (%).
    floors: (f64, f64),
}

impl Case {
    fn new(name: impl Into<String>, reference: Vec<usize>, leads: Vec<Vec<f32>>, rate_hz: f64, floors: (f64, f64)) -> Self {
        Case { name: name.into(), reference, leads, rate_hz, floors }
    }
}

/// Every record this test scores, with the floors its sensitivity and
/// positive predictivity must reach: the 99.7 % where the detector
/// reaches it, else just under what it scores today (in the comments:
/// what keeps it there), so that no change makes any case worse unseen.
#[test]
fn every_record_meets_its_floor_beat_by_beat() {
    let Some((record, beats)) = record_100() else { return };
    let rate = record.sampling_rate_hz;
    let plain: Vec<Vec<f32>> = record.leads.iter().map(|l| l.samples_uv.clone()).collect();
    let goal = (99.7, 99.7);
    let mut cases = vec![Case::new("100", beats.clone(), plain.clone(), rate, goal)];
    // Played faster, as if sampled more slowly: 150 and 190 bpm, every
    // wave proportionally narrower. At ×2.5 every beat falls in the 360 ms
    // T-wave window, the QRS (30 ms) has left the QRS band and the T wave
    // has entered it.
    for (speed, floors) in [(2.0, goal), (2.5, (99.4, 99.7))] {
        cases.push(Case::new(format!("100 played ×{speed} (tachycardia)"), beats.clone(), plain.clone(), rate * speed, floors));
    }
    for (name, every, height, shape, floors) in [
        ("100 in bigeminy, PVC 1 R ×2 wide", 1, 1.0, Ectopic::Widened { factor: 2.0 }, goal),
        ("100 in bigeminy, smooth PVC 1.8 R", 1, 1.8, Ectopic::Smooth { sigma_s: 0.035 }, goal),
        ("100 in trigeminy, smooth PVC 1.8 R", 2, 1.8, Ectopic::Smooth { sigma_s: 0.035 }, goal),
        // A smooth complex keeps little energy in the QRS band: at R's
        // height its envelope is half a normal beat's and a fifth of them
        // fall under the threshold. Squared amplitude in place of squared
        // slope finds 99.5 % of them but takes 59 of the tall T waves and
        // more noise for beats.
        ("100 in trigeminy, smooth PVC 1 R", 2, 1.0, Ectopic::Smooth { sigma_s: 0.035 }, (78.0, 99.7)),
        ("100 in trigeminy, PVC 1.8 R ×2 wide", 2, 1.8, Ectopic::Widened { factor: 2.0 }, goal),
        ("100 in trigeminy, PVC 1 R ×2 wide", 2, 1.0, Ectopic::Widened { factor: 2.0 }, goal),
        ("100 in trigeminy, PVC 0.6 R ×2 wide", 2, 0.6, Ectopic::Widened { factor: 2.0 }, goal),
        ("100 in trigeminy, PVC 1 R ×2.5 wide", 2, 1.0, Ectopic::Widened { factor: 2.5 }, goal),
    ] {
        let (leads, reference) = ventricular_ectopy(&record, &beats, every, height, shape);
        cases.push(Case::new(name, reference, leads, rate, floors));
    }
    // Each step from ×0.2 to ×4 (twentyfold) makes the T wave of the beat
    // before it, or the P and T waves after it, as large as beats until
    // the levels have learnt the new amplitude.
    cases.push(Case::new("100, amplitude steps ×0.2–×4", beats.clone(), amplitude_steps(&record), rate, (99.7, 98.8)));
    cases.push(Case::new("100, T waves ×3", beats.clone(), tall_t_waves(&record, &beats), rate, goal));
    for (kind, levels) in [
        (NoiseKind::Muscle, [(12.0, goal), (6.0, goal), (0.0, goal)]),
        (NoiseKind::Wander, [(12.0, goal), (6.0, goal), (0.0, goal)]),
        // Electrode motion lies in the QRS band itself (1–10 Hz against
        // 5–15 Hz, a band wide ventricular beats need): at 6 and 0 dB its
        // bursts, in both leads at once, are taken for beats. A threshold
        // against the surrounding second (CFAR) removed half to two thirds
        // of them but misses a fifth to a third of the beats at 190 bpm,
        // where beats fill that second.
        (NoiseKind::ElectrodeMotion, [(12.0, (99.9, 99.6)), (6.0, (98.2, 82.0)), (0.0, (94.5, 75.5))]),
        // Weighting each lead by its own noise lets a quiet lead carry the
        // beats while another's electrode is loose.
        (NoiseKind::LooseElectrode, [(12.0, goal), (6.0, (98.7, 88.0)), (0.0, (95.0, 77.5))]),
    ] {
        for (snr, floors) in levels {
            let leads = noise_stressed(&record, &beats, kind, snr);
            cases.push(Case::new(format!("100 + {kind:?} at {snr} dB"), beats.clone(), leads, rate, floors));
        }
    }
    let mut failures = Vec::new();
    let mut gross = BeatScore { true_positives: 0, false_negatives: 0, false_positives: 0 };
    // QRS_CASE=<part of a name> scores only the cases it names.
    let only = std::env::var("QRS_CASE").unwrap_or_default();
    for Case { name, reference, leads, rate_hz, floors: (se_floor, ppv_floor) } in cases.iter().filter(|c| c.name.contains(&only)) {
        let score = scored(name, reference, &detect(leads, *rate_hz), *rate_hz);
        gross = gross.plus(score);
        if score.sensitivity() < *se_floor || score.positive_predictivity() < *ppv_floor {
            failures.push(format!(
                "{name}: Se {:.3} % +P {:.3} % (floors {se_floor} %, {ppv_floor} %)",
                score.sensitivity(),
                score.positive_predictivity()
            ));
        }
    }
    println!("gross: Se {:.3} % +P {:.3} %", gross.sensitivity(), gross.positive_predictivity());
    assert!(gross.true_positives > 0, "QRS_CASE={only:?} names no case");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The carts' own beat times (GE MUSE's `<QRSTimesTypes>`) as the
/// reference on their 12-lead strips.
#[test]
fn the_carts_beats_are_found_on_their_own_strips() {
    let Some(root) = common::corpus() else { return };
    for name in ["muse/muse_example1.xml", "muse/muse_example2.xml"] {
        let record = read_path(&root.join(name)).unwrap();
        let rate = record.sampling_rate_hz;
        let reference: Vec<usize> = record.device.qrs_times_ms.iter().map(|ms| (ms / 1000.0 * rate).round() as usize).collect();
        let leads: Vec<Vec<f32>> = record.leads.iter().map(|l| l.samples_uv.clone()).collect();
        let score = scored(name, &reference, &detect(&leads, rate), rate);
        assert_eq!((score.false_negatives, score.false_positives), (0, 0), "{name}: {score:?}");
    }
}
