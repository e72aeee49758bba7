//! Our global intervals against those the recording devices embedded
//! (PR and QRS within ±10 ms, QT within ±25 ms), and the same ECG in three
//! formats measuring identically.

mod common;

use telediag_ecg::{Analysis, analyse, read_path};

fn analysed(name: &str) -> Option<Analysis> {
    let root = common::corpus()?;
    Some(analyse(&read_path(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))))
}

fn assert_within(name: &str, what: &str, ours: Option<f64>, device: Option<f64>, tolerance: f64) {
    let (Some(ours), Some(device)) = (ours, device) else {
        panic!("{name}: {what} ours {ours:?}, device {device:?}");
    };
    assert!((ours - device).abs() <= tolerance, "{name}: {what} ours {ours} ms, device {device} ms (±{tolerance})");
}

#[test]
fn intervals_agree_with_the_devices_own_measurements() {
    for name in ["ecgtoolkit/Example.scp", "ecgtoolkit/Example.xml", "ecgtoolkit/Example.dcm", "dicom/waveform_ecg.dcm"] {
        let Some(a) = analysed(name) else { return };
        let (m, d) = (&a.measurements, &a.device);
        println!("{name}: PR {:?}/{:?} QRS {:?}/{:?} QT {:?}/{:?}", m.pr_ms, d.pr_ms, m.qrs_ms, d.qrs_ms, m.qt_ms, d.qt_ms);
        assert_within(name, "PR", m.pr_ms, d.pr_ms, 10.0);
        assert_within(name, "QRS", m.qrs_ms, d.qrs_ms, 10.0);
        assert_within(name, "QT", m.qt_ms, d.qt_ms, 25.0);
        // Rate from our beats against the device's RR where it gave one.
        if let Some(rr) = d.rr_ms {
            assert_within(name, "RR", m.rr_ms, Some(rr), 20.0);
        }
        assert!(m.qtc_bazett_ms.is_some() && m.qtc_fridericia_ms.is_some() && m.qtc_framingham_ms.is_some() && m.qtc_hodges_ms.is_some());
        assert!(a.hrv.is_none(), "a 10 s ECG is too short for HRV");
    }
}

#[test]
fn the_same_ecg_in_three_formats_measures_identically() {
    let (Some(scp), Some(xml), Some(dcm)) =
        (analysed("ecgtoolkit/Example.scp"), analysed("ecgtoolkit/Example.xml"), analysed("ecgtoolkit/Example.dcm"))
    else {
        return;
    };
    let json = |a: &Analysis| serde_json::to_value((&a.qrs_samples, &a.measurements, &a.fiducials_ms)).unwrap();
    assert_eq!(json(&scp), json(&xml));
    assert_eq!(json(&scp), json(&dcm));
    assert_eq!(scp.qrs_samples.len(), 12);
}

#[test]
fn a_thirty_minute_record_gets_hrv_and_a_rhythm_verdict() {
    let Some(a) = analysed("wfdb/100.hea") else { return };
    let hrv = a.hrv.as_ref().expect("HRV for a 30-minute record");
    println!("record 100: HR {:?} HRV {hrv:?} rhythm {:?}", a.measurements.hr_bpm, a.rhythm);
    // Record 100: sinus rhythm near 76 bpm with 33 APCs and one PVC.
    let hr = a.measurements.hr_bpm.unwrap();
    assert!((70.0..=82.0).contains(&hr), "HR {hr}");
    assert!(hrv.sdnn_ms > 10.0 && hrv.sdnn_ms < 150.0, "{hrv:?}");
    assert!(hrv.nn_intervals > 2100, "{hrv:?}");
    assert_eq!(a.rhythm.regular, Some(false), "its premature beats make it irregular");
}

/// The report template reads a stored analysis back as `AnalysisSummary`:
/// what was written is what is read, field by field.
#[test]
fn a_stored_analysis_reads_back_as_its_summary() {
    let Some(a) = analysed("ecgtoolkit/Example.scp") else { return };
    let stored = serde_json::to_vec_pretty(&a).unwrap();
    let summary = telediag_ecg::AnalysisSummary::from_json(&stored).unwrap();
    assert_eq!(summary.measurements, a.measurements);
    assert_eq!(summary.rhythm, a.rhythm);
    assert_eq!(summary.device_statements, a.device_statements);
    assert!(summary.measurements.hr_bpm.is_some());
}
