//! QRS detection scored as ANSI/AAMI EC57 (150 ms match window) against the
//! cardiologists' beat labels of MIT-BIH record 100.

mod common;

use telediag_ecg::read::wfdb;
use telediag_ecg::{qrs, read_path, scoring};

#[test]
fn mit_bih_100_sensitivity_and_positive_predictivity_at_least_99_7() {
    let Some(root) = common::corpus() else { return };
    let record = read_path(&root.join("wfdb/100.hea")).unwrap();
    let annotations = wfdb::read_annotations(&std::fs::read(root.join("wfdb/100.atr")).unwrap()).unwrap();
    let reference: Vec<usize> = annotations.iter().filter(|a| wfdb::is_beat(a.code)).map(|a| a.sample as usize).collect();
    assert_eq!(reference.len(), 2273, "MIT-BIH 100 has 2273 labelled beats");
    let leads: Vec<&[f32]> = record.leads.iter().map(|l| l.samples_uv.as_slice()).collect();
    let detected = qrs::detect(&leads, record.sampling_rate_hz);
    let window = (0.15 * record.sampling_rate_hz) as usize;
    let whole = scoring::score(&reference, &detected, window, 0);
    println!(
        "record 100: {} beats, TP {} FN {} FP {}: Se {:.3} % +P {:.3} %",
        reference.len(),
        whole.true_positives,
        whole.false_negatives,
        whole.false_positives,
        whole.sensitivity(),
        whole.positive_predictivity()
    );
    assert!(whole.sensitivity() >= 99.7, "{whole:?}");
    assert!(whole.positive_predictivity() >= 99.7, "{whole:?}");
}
