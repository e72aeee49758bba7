//! Prints our measurements beside the device's for each file given.
fn main() {
    for path in std::env::args().skip(1) {
        let record = telediag_ecg::read_path(std::path::Path::new(&path)).unwrap();
        let a = telediag_ecg::analyse(&record);
        let m = &a.measurements;
        let d = &a.device;
        println!(
            "{path}: beats {} HR {:?} | PR {:?}/{:?} P {:?}/{:?} QRS {:?}/{:?} QT {:?}/{:?} QTcB {:?}/{:?} axes P {:?}/{:?} QRS {:?}/{:?} T {:?}/{:?} | fid {:?}",
            a.qrs_samples.len(), m.hr_bpm, m.pr_ms, d.pr_ms, m.p_ms, d.p_ms, m.qrs_ms, d.qrs_ms, m.qt_ms, d.qt_ms,
            m.qtc_bazett_ms, d.qtc_ms, m.p_axis_deg, d.p_axis_deg, m.qrs_axis_deg, d.qrs_axis_deg, m.t_axis_deg, d.t_axis_deg, a.fiducials_ms
        );
    }
}
