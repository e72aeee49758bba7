//! The printed 12-lead page, as SVG (for the viewer and print) and PNG (for
//! reports and the worklist thumbnail).
//!
//! Paper conventions: 25 mm/s, 10 mm/mV, a 1 mm grid with 5 mm major lines,
//! a 1 mV × 200 ms calibration pulse at the start of every row, each lead's
//! label at its segment's start, and a header with patient, acquisition
//! time, speed, gain, filters and measurements. The drawing is in
//! millimetres, so the SVG prints at true scale.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use crate::analysis::Analysis;
use crate::filter::FilterSettings;
use crate::record::EcgRecord;

/// How leads are arranged on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 3 rows × 4 columns of 2.5 s, plus a 10 s lead II rhythm strip.
    ThreeByFour,
    /// 6 rows × 2 columns of 5 s.
    SixByTwo,
    /// 12 rows of 10 s each, at half gain.
    TwelveByOne,
}

impl Layout {
    pub fn parse(text: &str) -> Option<Layout> {
        match text {
            "3x4" | "3x4+1" => Some(Layout::ThreeByFour),
            "6x2" => Some(Layout::SixByTwo),
            "12x1" => Some(Layout::TwelveByOne),
            _ => None,
        }
    }

    /// Rows of (lead label, column) for each row; a column spans
    /// `10 s / columns`.
    fn rows(self) -> (usize, Vec<Vec<&'static str>>) {
        match self {
            Layout::ThreeByFour => (4, vec![vec!["I", "aVR", "V1", "V4"], vec!["II", "aVL", "V2", "V5"], vec!["III", "aVF", "V3", "V6"]]),
            Layout::SixByTwo => {
                (2, vec![vec!["I", "V1"], vec!["II", "V2"], vec!["III", "V3"], vec!["aVR", "V4"], vec!["aVL", "V5"], vec!["aVF", "V6"]])
            }
            Layout::TwelveByOne => (1, crate::leads::STANDARD_LEADS.iter().map(|l| vec![*l]).collect()),
        }
    }
}

/// The page is A4 landscape, in millimetres: printed at this size, the
/// trace keeps its 25 mm/s and 10 mm/mV.
pub const PAGE_W: f64 = 297.0;
pub const PAGE_H: f64 = 210.0;
const MARGIN: f64 = 8.0;
const HEADER_H: f64 = 34.0;
pub const SPEED_MM_PER_S: f64 = 25.0;
const CALIBRATION_W: f64 = 5.0; // 200 ms at 25 mm/s
const STRIP_S: f64 = 10.0;
const FONT: &str = "WenQuanYi Micro Hei, Noto Sans CJK SC, Noto Sans SC, DejaVu Sans, sans-serif";

/// Draws `record` as an SVG page in `layout`, with `analysis` in the header.
pub fn svg(record: &EcgRecord, analysis: &Analysis, layout: Layout) -> String {
    let filters = FilterSettings::DISPLAY.with_mains(analysis.filters.notch_hz.unwrap_or(50.0));
    let rate = record.sampling_rate_hz;
    let (columns, rows) = layout.rows();
    let rhythm_strip = layout == Layout::ThreeByFour && record.lead("II").is_some();
    let gain_mm_per_mv = if layout == Layout::TwelveByOne { 5.0 } else { 10.0 };
    let GridArea { left: grid_left, top: grid_top, height: grid_h, .. } = GridArea::PAGE;
    let trace_left = grid_left + 2.0;
    let row_count = rows.len() + usize::from(rhythm_strip);
    let row_h = grid_h / row_count as f64;

    let mut out = String::with_capacity(512 * 1024);
    out.push_str(&svg_open());
    out.push_str(paper());
    header(&mut out, record, analysis, &filters, gain_mm_per_mv);

    // The displayed signal: the first 10 s, display-filtered, each lead
    // once (lead II is drawn twice on the 3×4 page).
    let shown = ((STRIP_S * rate) as usize).min(record.len());
    let mut labels: Vec<&str> = Vec::new();
    let mut views: Vec<&[f32]> = Vec::new();
    for label in rows.iter().flatten().copied() {
        if let Some(lead) = record.lead(label).filter(|_| !labels.contains(&label)) {
            labels.push(label);
            views.push(&lead.samples_uv[..shown]);
        }
    }
    let filtered_leads = filters.apply_each(&views, rate);
    let filtered = |label: &str| labels.iter().position(|l| *l == label).map(|i| &filtered_leads[i]);
    let column_s = STRIP_S / columns as f64;
    let trace_x0 = trace_left + CALIBRATION_W + 1.0;
    let draw_row = |out: &mut String, row: usize, segments: &[(&str, f64, f64)]| {
        let baseline = grid_top + row_h * (row as f64 + 0.62);
        calibration_pulse(out, trace_left, baseline, gain_mm_per_mv);
        for &(label, from_s, to_s) in segments {
            let x0 = trace_x0 + from_s * SPEED_MM_PER_S;
            let _ = writeln!(
                out,
                r##"<text x="{:.2}" y="{:.2}" font-size="3.2" font-weight="bold">{label}</text>"##,
                x0 + 0.8,
                baseline - row_h * 0.42
            );
            if from_s > 0.0 {
                let _ = writeln!(out, r##"<path d="M{x0:.2} {:.2}v4" stroke="#000" stroke-width="0.25"/>"##, baseline - 2.0);
            }
            let Some(samples) = filtered(label) else { continue };
            let a = (from_s * rate) as usize;
            let b = ((to_s * rate) as usize).min(samples.len());
            if a >= b {
                continue;
            }
            out.push_str(r#"<path d=""#);
            for (k, &v) in samples[a..b].iter().enumerate() {
                let x = x0 + k as f64 / rate * SPEED_MM_PER_S;
                let y = baseline - v as f64 / 1000.0 * gain_mm_per_mv;
                out.push(if k == 0 { 'M' } else { 'L' });
                push_hundredths(out, x);
                out.push(' ');
                push_hundredths(out, y);
            }
            out.push_str("\" fill=\"none\" stroke=\"#000\" stroke-width=\"0.28\" stroke-linejoin=\"round\"/>\n");
        }
    };
    for (r, leads) in rows.iter().enumerate() {
        let segments: Vec<(&str, f64, f64)> =
            leads.iter().enumerate().map(|(c, l)| (*l, c as f64 * column_s, (c + 1) as f64 * column_s)).collect();
        draw_row(&mut out, r, &segments);
    }
    if rhythm_strip {
        draw_row(&mut out, rows.len(), &[("II", 0.0, STRIP_S)]);
    }
    let _ = writeln!(
        out,
        r##"<text x="{MARGIN}" y="{:.1}" font-size="2.4" fill="#555">{} · QRS: {} · {} Hz</text></svg>"##,
        PAGE_H - 3.0,
        escape(analysis.algorithm),
        escape(analysis.qrs_detector),
        rate
    );
    out
}

/// Appends `value` rounded to two decimals, as `{value:.2}` would but
/// without the float formatter, which took most of the page's time (a 3×4
/// page has 20 000 trace points).
fn push_hundredths(out: &mut String, value: f64) {
    let hundredths = (value * 100.0).round() as i64;
    if hundredths < 0 {
        out.push('-');
    }
    // Digits from the right, at least three ("0.05").
    let (mut digits, mut at, mut rest) = ([b'0'; 21], 21, hundredths.unsigned_abs());
    while rest > 0 || at > 18 {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let text = std::str::from_utf8(&digits[at..]).expect("ASCII digits");
    let (whole, fraction) = text.split_at(text.len() - 2);
    out.push_str(whole);
    out.push('.');
    out.push_str(fraction);
}

/// Where the grid lies on the page (mm): below the header, wide enough for
/// the calibration pulse and 10 s of trace, centred.
struct GridArea {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl GridArea {
    const PAGE: GridArea = {
        let width = CALIBRATION_W + STRIP_S * SPEED_MM_PER_S + 4.0;
        let top = MARGIN + HEADER_H;
        GridArea { left: (PAGE_W - width) / 2.0, top, width, height: PAGE_H - top - MARGIN }
    };
}

/// The `<svg>` start tag of every page.
fn svg_open() -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_W}mm" height="{PAGE_H}mm" viewBox="0 0 {PAGE_W} {PAGE_H}" font-family="{FONT}">
"##
    )
}

/// The paper, the same on every page whatever its layout: the white sheet
/// and the grid, as one group.
fn paper() -> &'static str {
    static PAPER: OnceLock<String> = OnceLock::new();
    PAPER.get_or_init(|| {
        let mut out = format!("<g id=\"paper\">\n<rect width=\"{PAGE_W}\" height=\"{PAGE_H}\" fill=\"#ffffff\"/>\n");
        let GridArea { left, top, width, height } = GridArea::PAGE;
        grid(&mut out, left, top, width, height);
        out.push_str("</g>\n");
        out
    })
}

/// The paper rasterised at `width_px`, once per width: half of a page's
/// rasterising time is the grid's thousand anti-aliased lines.
fn paper_pixmap(width_px: u32) -> Result<resvg::tiny_skia::Pixmap, RenderError> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<u32, resvg::tiny_skia::Pixmap>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(pixmap) = cache.lock().expect("not poisoned").get(&width_px) {
        return Ok(pixmap.clone());
    }
    let pixmap = rasterise(&format!("{}{}</svg>", svg_open(), paper()), width_px, None)?;
    cache.lock().expect("not poisoned").insert(width_px, pixmap.clone());
    Ok(pixmap)
}

/// The 1 mm and 5 mm grid as two paths of lines (rasterisers draw lines
/// far faster than thousands of pattern tiles).
fn grid(out: &mut String, x: f64, y: f64, w: f64, h: f64) {
    let (mut minor, mut major) = (String::new(), String::new());
    for i in 0..=(w as usize) {
        let path = if i % 5 == 0 { &mut major } else { &mut minor };
        let _ = write!(path, "M{:.1} {y:.1}v{h:.1}", x + i as f64);
    }
    for j in 0..=(h as usize) {
        let path = if j % 5 == 0 { &mut major } else { &mut minor };
        let _ = write!(path, "M{x:.1} {:.1}h{w:.1}", y + j as f64);
    }
    let _ = writeln!(out, r##"<path d="{minor}" stroke="#f5c6c6" stroke-width="0.08"/>"##);
    let _ = writeln!(out, r##"<path d="{major}" stroke="#e58f8f" stroke-width="0.18"/>"##);
}

fn calibration_pulse(out: &mut String, x: f64, baseline: f64, gain_mm_per_mv: f64) {
    let _ = writeln!(
        out,
        r##"<path d="M{x:.2} {baseline:.2}h1v-{gain_mm_per_mv}h{CALIBRATION_W}v{gain_mm_per_mv}h1" fill="none" stroke="#000" stroke-width="0.28"/>"##,
        x = x - 1.0,
        CALIBRATION_W = CALIBRATION_W - 2.0,
    );
}

fn header(out: &mut String, record: &EcgRecord, analysis: &Analysis, filters: &FilterSettings, gain: f64) {
    let p = &record.patient;
    let m = &analysis.measurements;
    let value = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
    let name = p.name.as_deref().unwrap_or("(no name)");
    let sex = match p.sex.as_deref() {
        Some("M") => "男 M",
        Some("F") => "女 F",
        _ => "",
    };
    let age = p.age_years.map(|a| format!("{a} 岁")).unwrap_or_default();
    let lines_left = [
        [escape(name), sex.to_string(), age].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · "),
        match record.acquired.as_deref() {
            Some(acquired) => format!("ID {} · {}", escape(p.id.as_deref().unwrap_or("—")), escape(acquired)),
            None => format!("ID {}", escape(p.id.as_deref().unwrap_or("—"))),
        },
        format!("{SPEED_MM_PER_S} mm/s · {gain} mm/mV · {}", escape(&filters.describe())),
    ];
    let lines_middle = [
        format!("HR {} bpm · RR {} ms", value(m.hr_bpm), value(m.rr_ms)),
        format!("PR {} ms · P {} ms · QRS {} ms", value(m.pr_ms), value(m.p_ms), value(m.qrs_ms)),
        format!(
            "QT/QTc {}/{} ms (Bazett) · P/QRS/T {}/{}/{}°",
            value(m.qt_ms),
            value(m.qtc_bazett_ms),
            value(m.p_axis_deg),
            value(m.qrs_axis_deg),
            value(m.t_axis_deg)
        ),
    ];
    // The right column runs from its x to the page's margin, in ems of its 2.8 mm type.
    let right_ems = (PAGE_W - MARGIN - (MARGIN + 196.0)) / 2.8;
    let mut right: Vec<String> = Vec::new();
    if !record.device.statements.is_empty() {
        right.push("Device:".to_string());
        right.extend(record.device.statements.iter().take(3).map(|s| escape(&fit(s, right_ems))));
    }
    right.extend(analysis.warnings.iter().take(2).map(|w| format!("⚠ {}", escape(&fit(w, right_ems - 1.0)))));
    for (x, lines, size) in
        [(MARGIN + 6.0, &lines_left[..], 3.6), (MARGIN + 100.0, &lines_middle[..], 3.4), (MARGIN + 196.0, &right[..], 2.8)]
    {
        for (i, line) in lines.iter().enumerate() {
            let _ = writeln!(
                out,
                r##"<text x="{x}" y="{:.1}" font-size="{size}"{}>{line}</text>"##,
                MARGIN + 5.0 + i as f64 * 8.5,
                if i == 0 && x == MARGIN + 6.0 { r#" font-weight="bold""# } else { "" }
            );
        }
    }
}

/// `text` cut to about `ems` wide, with an ellipsis when cut: a cart's
/// statement with its criteria ("ANTERIOR ST ELEVATION, PROBABLY DUE TO
/// LVH (ST >0.20 mV in V1-V4 & LVH)") would run off the page. Han
/// characters are a full em, Latin ones a little over half.
fn fit(text: &str, ems: f64) -> String {
    let width = |c: char| if c as u32 >= 0x2E80 { 1.0 } else { 0.56 };
    if text.chars().map(width).sum::<f64>() <= ems {
        return text.to_owned();
    }
    let mut used = width('…');
    let kept: String = text
        .chars()
        .take_while(|c| {
            used += width(*c);
            used <= ems
        })
        .collect();
    format!("{}…", kept.trim_end())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Why a page could not be rasterised.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the SVG page did not parse: {0}")]
    Svg(String),
    #[error("cannot allocate a {0}×{1} image")]
    Size(u32, u32),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

fn fonts() -> Arc<resvg::usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            use resvg::usvg::fontdb::{Database, Source};
            let mut system = Database::new();
            system.load_system_fonts();
            // Only the page's families, held in memory: fontdb would
            // otherwise reread a multi-megabyte CJK font file for every
            // text element of every page.
            let mut db = Database::new();
            let mut loaded = std::collections::HashSet::new();
            for face in system.faces() {
                let wanted = face.families.iter().any(|(family, _)| FONT.split(", ").any(|f| f == family));
                if let (true, Source::File(path)) = (wanted, &face.source)
                    && loaded.insert(path.clone())
                    && let Ok(bytes) = std::fs::read(path)
                {
                    db.load_font_data(bytes);
                }
            }
            Arc::new(if db.is_empty() { system } else { db })
        })
        .clone()
}

/// Rasterises an SVG page to PNG, `width_px` wide (height keeps the aspect).
/// A page of [`svg`] is drawn over its paper rasterised once per width;
/// the result is the same, pixel for pixel, as drawing it whole.
pub fn png(svg: &str, width_px: u32) -> Result<Vec<u8>, RenderError> {
    let pixmap = match svg.find(paper()) {
        Some(at) => {
            let without_paper = [&svg[..at], &svg[at + paper().len()..]].concat();
            rasterise(&without_paper, width_px, Some(paper_pixmap(width_px)?))?
        }
        None => rasterise(svg, width_px, None)?,
    };
    encode_on_white(&pixmap).map_err(|e| RenderError::Png(e.to_string()))
}

/// The pixmap flattened onto white and encoded as 8-bit RGB: a page is
/// opaque, so RGBA would spend a quarter of the bytes on an alpha of 255.
fn encode_on_white(pixmap: &resvg::tiny_skia::Pixmap) -> Result<Vec<u8>, png::EncodingError> {
    // Premultiplied colour over white: c + (255 − alpha).
    let mut rgb = vec![0u8; pixmap.pixels().len() * 3];
    for (out, p) in rgb.chunks_exact_mut(3).zip(pixmap.pixels()) {
        let white = 255 - p.alpha();
        out.copy_from_slice(&[p.red() + white, p.green() + white, p.blue() + white]);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // zlib's default level with the Up filter: the grid repeats row after
    // row, so most filtered rows are zeros. A page is 290 KB where the fast
    // compressor wrote 2.5 MB (and tiny-skia's RGBA encoder 2.7 MB), for
    // about 70 ms more, once per ECG in the background.
    encoder.set_compression(png::Compression::Default);
    encoder.set_filter(png::FilterType::Up);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(out)
}

/// Draws `svg` at `width_px` onto `onto` (a pixmap of the right size), or
/// onto a transparent one.
fn rasterise(svg: &str, width_px: u32, onto: Option<resvg::tiny_skia::Pixmap>) -> Result<resvg::tiny_skia::Pixmap, RenderError> {
    let options = resvg::usvg::Options { fontdb: fonts(), ..Default::default() };
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| RenderError::Svg(e.to_string()))?;
    let size = tree.size();
    let scale = width_px as f32 / size.width();
    let height_px = (size.height() * scale).round() as u32;
    let mut pixmap = match onto {
        Some(pixmap) if (pixmap.width(), pixmap.height()) == (width_px, height_px) => pixmap,
        Some(pixmap) => {
            return Err(RenderError::Svg(format!(
                "the page is {width_px}x{height_px} px but its paper {}x{}",
                pixmap.width(),
                pixmap.height()
            )));
        }
        None => resvg::tiny_skia::Pixmap::new(width_px, height_px).ok_or(RenderError::Size(width_px, height_px))?,
    };
    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    Ok(pixmap)
}

/// PNG width for a full page at print-like detail (about 6 px per mm).
pub const PAGE_PNG_WIDTH: u32 = 1800;
/// PNG width of the worklist thumbnail.
pub const THUMBNAIL_PNG_WIDTH: u32 = 480;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_cut_to_the_column_and_short_ones_kept() {
        assert_eq!(fit("Sinus rhythm", 31.0), "Sinus rhythm");
        let long = "ANTERIOR ST ELEVATION, PROBABLY DUE TO LVH (ST >0.20 mV in V1-V4 & LVH)";
        let cut = fit(long, 31.0);
        assert!(cut.ends_with('…') && cut.chars().count() < long.chars().count() && cut.starts_with("ANTERIOR ST ELEVATION"), "{cut}");
        assert_eq!(fit("窦性心律不齐伴一度房室传导阻滞及完全性右束支传导阻滞", 10.0).chars().count(), 10);
    }

    #[test]
    fn coordinates_are_written_as_two_decimals() {
        for (value, expected) in [(0.0, "0.00"), (12.345, "12.35"), (-7.5, "-7.50"), (199.999, "200.00"), (-0.004, "0.00"), (0.05, "0.05")]
        {
            let mut out = String::new();
            push_hundredths(&mut out, value);
            assert_eq!(out, expected, "{value}");
        }
    }
}
