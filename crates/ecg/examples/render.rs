//! Renders FILE to OUT.svg and OUT.png in the given layout.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let record = telediag_ecg::read_path(std::path::Path::new(&args[1])).unwrap();
    let analysis = telediag_ecg::analyse(&record);
    let layout = telediag_ecg::render::Layout::parse(args.get(3).map_or("3x4", |s| s.as_str())).unwrap();
    let svg = telediag_ecg::render::svg(&record, &analysis, layout);
    std::fs::write(format!("{}.svg", args[2]), &svg).unwrap();
    std::fs::write(format!("{}.png", args[2]), telediag_ecg::render::png(&svg, 1800).unwrap()).unwrap();
}
