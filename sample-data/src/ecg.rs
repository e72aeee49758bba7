//! The demo ECG: a resting 12-lead ECG of a healthy adult, 10 s at 500 Hz,
//! made from a moving cardiac dipole rather than copied from a patient.
//!
//! Each wave (P, septal Q, R, S, T) is a Gaussian in time with a direction
//! in the body (x to the patient's left, y inferior, z anterior); a lead
//! reads the projection of the sum on its own direction. That is enough
//! for what an ECG doctor expects of a normal tracing: upright P and T in
//! II, a negative aVR, R progression across V1–V6 with a small septal q in
//! V5–V6, about 72 bpm with slight sinus arrhythmia, PR ≈ 170 ms, QRS ≈
//! 95 ms, QT ≈ 390 ms. The cart's own statements and measurements travel
//! with it, as a real cart's do.

use std::path::{Path, PathBuf};

use telediag_ecg::dicom_writer::{Provenance, to_dicom};
use telediag_ecg::{DeviceMeasurements, DeviceReport, EcgRecord, Lead, Patient, SourceFormat};

use crate::{DEMO_INSTITUTION, DemoError};

const RATE_HZ: f64 = 500.0;
const SECONDS: f64 = 10.0;

/// A wave of the beat: peak (mV), time from the R peak (s), width σ (s),
/// and its direction (x left, y inferior, z anterior).
struct Wave {
    mv: f64,
    at: f64,
    sigma: f64,
    direction: [f64; 3],
}

const WAVES: [Wave; 5] = [
    Wave { mv: 0.18, at: -0.165, sigma: 0.022, direction: [0.55, 0.8, 0.25] },
    Wave { mv: 0.22, at: -0.028, sigma: 0.007, direction: [-0.6, -0.1, 0.8] },
    Wave { mv: 1.45, at: 0.0, sigma: 0.010, direction: [0.75, 0.55, -0.35] },
    Wave { mv: 0.55, at: 0.030, sigma: 0.010, direction: [-0.35, -0.25, -0.9] },
    Wave { mv: 0.38, at: 0.245, sigma: 0.042, direction: [0.65, 0.55, 0.5] },
];

/// Lead directions in the same axes: the hexaxial limb leads, then the
/// precordial leads around the chest from right-anterior (V1) to left (V6).
fn lead_directions() -> [(&'static str, [f64; 3]); 12] {
    let frontal = |degrees: f64| [degrees.to_radians().cos(), degrees.to_radians().sin(), 0.0];
    let chest = |degrees: f64| [degrees.to_radians().cos(), 0.15, degrees.to_radians().sin()];
    [
        ("I", frontal(0.0)),
        ("II", frontal(60.0)),
        ("III", frontal(120.0)),
        ("aVR", frontal(-150.0)),
        ("aVL", frontal(-30.0)),
        ("aVF", frontal(90.0)),
        ("V1", chest(120.0)),
        ("V2", chest(95.0)),
        ("V3", chest(75.0)),
        ("V4", chest(55.0)),
        ("V5", chest(30.0)),
        ("V6", chest(8.0)),
    ]
}

/// The R peaks (s): about 72 bpm, the interval breathing ±3 % over 4 s.
fn beats() -> Vec<f64> {
    let mut at = 0.35;
    let mut peaks = Vec::new();
    while at < SECONDS - 0.1 {
        peaks.push(at);
        at += 0.833 * (1.0 + 0.03 * (2.0 * std::f64::consts::PI * at / 4.0).sin());
    }
    peaks
}

/// The demo record, the same every time (its noise comes from a fixed seed).
pub fn demo_ecg() -> EcgRecord {
    let samples = (RATE_HZ * SECONDS) as usize;
    let peaks = beats();
    let mut seed: u64 = 0x7e1e_d1a6;
    let mut noise = move || {
        // A 64-bit LCG: a few µV of noise, as a good cart records.
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 10.0
    };
    let leads = lead_directions()
        .into_iter()
        .map(|(label, direction)| {
            let projections: Vec<f64> = WAVES.iter().map(|w| w.direction.iter().zip(direction).map(|(a, b)| a * b).sum()).collect();
            let samples_uv = (0..samples)
                .map(|i| {
                    let t = i as f64 / RATE_HZ;
                    let mut uv = 0.0;
                    for peak in peaks.iter().filter(|p| (t - **p).abs() < 0.6) {
                        for (wave, projection) in WAVES.iter().zip(&projections) {
                            let d = t - peak - wave.at;
                            uv += 1000.0 * wave.mv * projection * (-0.5 * (d / wave.sigma).powi(2)).exp();
                        }
                    }
                    // Stored in steps of 5 µV, as carts store them.
                    ((uv + noise()) / 5.0).round() as f32 * 5.0
                })
                .collect();
            Lead { label: label.to_owned(), samples_uv, derived: false }
        })
        .collect();
    EcgRecord {
        format: SourceFormat::DicomWaveform,
        sampling_rate_hz: RATE_HZ,
        leads,
        patient: Patient {
            name: Some("赵敏".into()),
            id: Some("DEMO0004".into()),
            sex: Some("F".into()),
            birth_date: Some("19720315".into()),
            age_years: Some(54),
        },
        acquired: Some("2026-11-23T09:12:00".into()),
        device: DeviceReport {
            manufacturer: Some("Telediag demo cart".into()),
            model: Some("12-lead, 500 Hz".into()),
            measurements: DeviceMeasurements {
                hr_bpm: Some(72.0),
                rr_ms: Some(833.0),
                pr_ms: Some(168.0),
                qrs_ms: Some(94.0),
                qt_ms: Some(388.0),
                qtc_ms: Some(425.0),
                ..DeviceMeasurements::default()
            },
            statements: vec!["窦性心律".into(), "正常心电图".into()],
            filters: Some("0.05–150 Hz, 50 Hz notch".into()),
            ..DeviceReport::default()
        },
        warnings: Vec::new(),
        received_as: None,
    }
}

/// Writes the demo ECG as a DICOM 12-lead ECG into `dir`; its UIDs are
/// fixed, so importing it twice stores it once.
pub fn write_demo_ecg(dir: &Path) -> Result<PathBuf, DemoError> {
    let provenance = Provenance {
        institution: Some(DEMO_INSTITUTION.into()),
        accession_number: Some("ECG20261123004".into()),
        source_digest: *b"telediag demo ECG, version 1....",
    };
    let bytes = to_dicom(&demo_ecg(), &provenance).map_err(|e| DemoError::Ecg(e.to_string()))?;
    let path = dir.join("ecg_001.dcm");
    std::fs::write(&path, bytes).map_err(|source| DemoError::Io { path: path.clone(), source })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The centre's own analysis reads the demo as the normal ECG it is meant to be.
    #[test]
    fn the_demo_ecg_measures_as_a_normal_resting_ecg() {
        let record = demo_ecg();
        assert_eq!(record.leads.len(), 12);
        let analysis = telediag_ecg::analyse(&record);
        let m = &analysis.measurements;
        let hr = m.hr_bpm.unwrap();
        assert!((68.0..=76.0).contains(&hr), "{hr} bpm");
        assert_eq!(analysis.qrs_samples.len(), beats().len(), "every beat found");
        for (name, value, range) in [
            ("PR", m.pr_ms, 140.0..=200.0),
            ("QRS", m.qrs_ms, 70.0..=110.0),
            ("QT", m.qt_ms, 340.0..=430.0),
            ("QRS axis", m.qrs_axis_deg, 0.0..=90.0),
        ] {
            let value = value.unwrap_or_else(|| panic!("{name} not measured"));
            assert!(range.contains(&value), "{name} {value} outside {range:?}");
        }
        // aVR is negative where II is positive.
        let peak = analysis.qrs_samples[1];
        assert!(record.lead("II").unwrap().samples_uv[peak] > 500.0);
        assert!(record.lead("aVR").unwrap().samples_uv[peak] < -300.0);
    }
}
