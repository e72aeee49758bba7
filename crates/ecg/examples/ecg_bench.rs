//! Times telediag-ecg on a file: read, analyse (filters, multi-lead QRS
//! detection, median beats, delineation, measurements), draw the SVG page
//! and rasterise it. With `--export DIR`, also writes the leads as CSV (one
//! column per lead, µV) so peers can be timed on the very same samples.
//!
//! Usage: ecg_bench FILE [--runs N] [--export DIR]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let runs: usize = args.iter().position(|a| a == "--runs").map_or(5, |i| args[i + 1].parse().unwrap());
    let export = args.iter().position(|a| a == "--export").map(|i| std::path::PathBuf::from(&args[i + 1]));

    let record = telediag_ecg::read_path(path).expect("readable ECG");
    if let Some(dir) = export {
        std::fs::create_dir_all(&dir).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy();
        let mut csv = record.leads.iter().map(|l| l.label.clone()).collect::<Vec<_>>().join(",");
        csv.push('\n');
        for s in 0..record.len() {
            let row: Vec<String> = record.leads.iter().map(|l| format!("{}", l.samples_uv[s])).collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
        std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
        std::fs::write(dir.join(format!("{name}.rate")), format!("{}", record.sampling_rate_hz)).unwrap();
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect(),
        )
    };
    let read_ms = time(&mut || {
        telediag_ecg::read_path(path).unwrap();
    });
    let mut analysis = None;
    let analyse_ms = time(&mut || analysis = Some(telediag_ecg::analyse(&record)));
    let analysis = analysis.unwrap();
    let mut page = String::new();
    let svg_ms = time(&mut || page = telediag_ecg::render::svg(&record, &analysis, telediag_ecg::render::Layout::ThreeByFour));
    let png_ms = time(&mut || {
        telediag_ecg::render::png(&page, telediag_ecg::render::PAGE_PNG_WIDTH).unwrap();
    });
    println!(
        "{{\"file\":\"{}\",\"format\":\"{}\",\"bytes\":{},\"leads\":{},\"rate_hz\":{},\"seconds\":{:.1},\"qrs\":{},\"read_ms\":{read_ms:.2},\"analyse_ms\":{analyse_ms:.2},\"svg_ms\":{svg_ms:.2},\"png_ms\":{png_ms:.2}}}",
        path.display(),
        record.format.name(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        record.leads.len(),
        record.sampling_rate_hz,
        record.duration_s(),
        analysis.qrs_samples.len()
    );
}
