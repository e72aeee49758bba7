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
    assert!((ours - device).abs() <= tolerance, "{name}: {what} ours {ours}, device {device} (±{tolerance})");
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

/// The carts' own global measurements in their exports (GE MUSE, Philips)
/// against ours, held to IEC 60601-2-25's tolerances for global
/// intervals: PR and QRS within 10 ms, QT within 25 ms; the rate within
/// 2 bpm (every one of these records is regular).
///
/// Findings on the way:
/// - Our QT was 32 ms short on both MUSE exports. Delineated on the cart's
///   own median beat, our P onset, P offset, QRS onset and offset agreed
///   with the cart's within 3 samples and the T end did not: the tangent
///   method ends the T wave early. T end is now the trapezium area's.
/// - QRS ended 6 ms early on average across the six carts (by 12 ms on
///   the Philips 1.04.01 file, whose terminal S waves are slurred): the
///   offset threshold was half as high again as the onset's. Both ends now
///   use one threshold.
/// - Philips 129DYPRG (1.03, a HeartStart MRx; acute inferior infarct) says
///   QRS 135 ms where we find 100. That is a difference of definitions, not
///   a misreading: the cart's global QRS is its longest lead's, and its own
///   per-lead durations in the file run from 59 ms (aVF) to 135 ms (II,
///   whose end it placed in the elevated ST segment); the chest leads say
///   93–99 and its own beat group's mean is 96 ms. That file's QRS is held
///   to the group mean.
#[test]
fn intervals_agree_with_the_carts_own_measurements() {
    for name in [
        "muse/muse_example1.xml",
        "muse/muse_example2.xml",
        "philips/129DYPRG.XML",
        "philips/3191723_ZZDEMOPTONLY_1-04_orig.xml",
        "philips/2020-5-18_15-48-11.xml",
    ] {
        let Some(a) = analysed(name) else { return };
        let (m, d) = (&a.measurements, &a.device);
        println!(
            "{name}: HR {:?}/{:?} PR {:?}/{:?} QRS {:?}/{:?} QT {:?}/{:?}",
            m.hr_bpm, d.hr_bpm, m.pr_ms, d.pr_ms, m.qrs_ms, d.qrs_ms, m.qt_ms, d.qt_ms
        );
        assert_within(name, "PR", m.pr_ms, d.pr_ms, 10.0);
        let qrs_reference = if name.ends_with("129DYPRG.XML") { Some(96.0) } else { d.qrs_ms };
        assert_within(name, "QRS", m.qrs_ms, qrs_reference, 10.0);
        assert_within(name, "QT", m.qt_ms, d.qt_ms, 25.0);
        assert_within(name, "heart rate (bpm)", m.hr_bpm, d.hr_bpm, 2.0);
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
    assert!(a.rhythm.abrupt_changes.unwrap() >= 33, "its 33 APCs and one PVC jump: {:?}", a.rhythm);
}

/// Two carts' strips that are irregular by the median: the Philips 1.04
/// file's rate drifts from 105 to 70 bpm and back (sinus rhythm, says the
/// cart), MUSE example 2 ends on a premature beat.
#[test]
fn a_drifting_rate_is_told_from_a_premature_beat() {
    let Some(drift) = analysed("philips/3191723_ZZDEMOPTONLY_1-04_orig.xml") else { return };
    assert_eq!((drift.rhythm.regular, drift.rhythm.abrupt_changes), (Some(false), Some(0)), "{:?}", drift.rhythm);
    let Some(premature) = analysed("muse/muse_example2.xml") else { return };
    assert_eq!(premature.rhythm.regular, Some(false));
    assert!(premature.rhythm.abrupt_changes.unwrap() > 0, "{:?}", premature.rhythm);
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
