//! The report form: the page a referring doctor prints, laid out like the
//! paper forms county hospitals know (centre and hospital header, patient
//! block, 检查方法 / 检查所见 / 检查结论, signers, dates, verification QR).
//!
//! Text is set in one CJK font embedded as a subset (krilla subsets what
//! the page uses); lines are broken by measured glyph advances, between any
//! two CJK characters or at spaces in Latin text. Long findings flow onto
//! further pages; the signature block closes the last one. Output is PDF/A-2b.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use krilla::color::rgb;
use krilla::configure::{Archival, ConfigurationBuilder, Validator};
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::image::Image;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::{Document, SerializeSettings};

use crate::time::Timestamp;

/// Where CJK fonts are looked for when none is configured, best first.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
];

/// Errors of laying out a report.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("no CJK font found: looked for {looked_in}; install fonts-wqy-microhei or set reports.font")]
    NoFont { looked_in: String },
    #[error("cannot read the font {path}: {reason}")]
    Font { path: PathBuf, reason: String },
    #[error("cannot write the PDF: {0}")]
    Pdf(String),
    #[error("key image {index} is neither PNG nor JPEG: {reason}")]
    Image { index: usize, reason: String },
}

/// The font every report is set in (loaded once, shared).
#[derive(Clone)]
pub struct ReportFont {
    font: Font,
    metrics: Arc<Metrics>,
}

struct Metrics {
    data: Arc<Vec<u8>>,
    index: u32,
}

impl std::fmt::Debug for ReportFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportFont")
    }
}

impl ReportFont {
    /// The font in `bytes` (a collection's first face), read from `path`
    /// by the caller: this crate reads no files. Refused without CJK glyphs.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<ReportFont, FormError> {
        let data = Arc::new(bytes);
        let refused = |reason: String| FormError::Font { path: path.to_path_buf(), reason };
        let face = ttf_parser::Face::parse(&data, 0).map_err(|e| refused(e.to_string()))?;
        if face.glyph_index('报').is_none() {
            return Err(refused("it has no CJK glyphs (报 is missing)".into()));
        }
        let font = Font::new(krilla::Data::from(data.clone()), 0).ok_or_else(|| refused("krilla cannot read it".into()))?;
        Ok(ReportFont { font, metrics: Arc::new(Metrics { data, index: 0 }) })
    }

    /// Where to read the font from: `configured`, or the first of
    /// [`FONT_CANDIDATES`] that `exists` says is there.
    pub fn locate(configured: Option<&Path>, exists: impl Fn(&Path) -> bool) -> Result<PathBuf, FormError> {
        match configured {
            Some(path) => Ok(path.to_path_buf()),
            None => FONT_CANDIDATES
                .iter()
                .map(PathBuf::from)
                .find(|p| exists(p))
                .ok_or_else(|| FormError::NoFont { looked_in: FONT_CANDIDATES.join(", ") }),
        }
    }

    /// Width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let Ok(face) = ttf_parser::Face::parse(&self.metrics.data, self.metrics.index) else { return 0.0 };
        let per_unit = size / f32::from(face.units_per_em());
        text.chars()
            .map(|c| face.glyph_index(c).and_then(|g| face.glyph_hor_advance(g)).map_or(size * 0.5, |a| f32::from(a) * per_unit))
            .sum()
    }

    /// Breaks `text` into lines no wider than `max_width`: explicit newlines
    /// are kept; CJK breaks anywhere (but not before closing punctuation),
    /// Latin words stay whole unless a word alone is too wide.
    pub fn wrap(&self, text: &str, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.replace("\r\n", "\n").split('\n') {
            let mut line = String::new();
            for token in tokens(paragraph) {
                let candidate = format!("{line}{token}");
                if self.width(&candidate, size) <= max_width || line.is_empty() {
                    if self.width(&candidate, size) > max_width {
                        // One word wider than the line: break it by characters.
                        for c in token.chars() {
                            if self.width(&format!("{line}{c}"), size) > max_width && !line.is_empty() {
                                lines.push(std::mem::take(&mut line));
                            }
                            line.push(c);
                        }
                    } else {
                        line = candidate;
                    }
                } else if is_closing_punctuation(&token) {
                    line.push_str(&token);
                } else {
                    lines.push(line.trim_end().to_owned());
                    line = token.trim_start().to_owned();
                }
            }
            lines.push(line.trim_end().to_owned());
        }
        lines
    }
}

/// What a signature field shows on the page once signed: where it sits
/// (PDF user space, points, origin bottom-left) and the drawing in its own
/// box (a content stream whose origin is the rectangle's lower-left corner).
///
/// A second signer's name cannot be part of the page content the first
/// signer signed; it is the appearance of their signature field, added in
/// their own revision. Its text is drawn as glyph outlines so the revision
/// needs no font of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureStamp {
    pub rect: [f32; 4],
    pub content: Vec<u8>,
}

/// The stamp of the reviewing doctor (审核医师) in the footer slot the form
/// leaves empty when it is rendered for the reporting doctor alone: their
/// name after "审核医师：" and the signing time beneath, as the reporting
/// doctor's are printed.
pub fn reviewer_stamp(font: &ReportFont, reviewer: &PrintedSigner) -> SignatureStamp {
    // The slot as `footer` lays it out: the label "审核医师：" is page
    // content; the stamp covers the label's line and the one beneath.
    let top = PAGE_H - MARGIN - FOOTER_H + 16.0;
    let x0 = MARGIN + (PAGE_W - 2.0 * MARGIN) / 2.0;
    let (width, height) = (PAGE_W - MARGIN - x0, 2.0 * LINE);
    let name_x = font.width("审核医师：", BODY);
    let mut content = Vec::new();
    content.extend_from_slice(format!("q 0 g 0 G {:.3} w\n", (BODY + 1.0) / 28.0).as_bytes());
    content.extend(font.outline(&reviewer.name, BODY + 1.0, name_x, height - BODY));
    content.extend_from_slice(b"B\nQ\nq 0 g\n");
    content.extend(font.outline(&format!("签名时间：{}", reviewer.signed_at.date_time()), 8.5, 0.0, height - LINE - 8.5));
    content.extend_from_slice(b"f\nQ\n");
    SignatureStamp { rect: [x0, PAGE_H - top - height, x0 + width, PAGE_H - top], content }
}

impl ReportFont {
    /// `text` at `size` as PDF path operators (filled by the caller), its
    /// first glyph's origin at (`x`, `baseline`) in PDF (y-up) space.
    fn outline(&self, text: &str, size: f32, x: f32, baseline: f32) -> Vec<u8> {
        let Ok(face) = ttf_parser::Face::parse(&self.metrics.data, self.metrics.index) else { return Vec::new() };
        let scale = size / f32::from(face.units_per_em());
        let mut path = PdfPath { out: String::new(), scale, x, y: baseline, last: (0.0, 0.0) };
        for c in text.chars() {
            let Some(glyph) = face.glyph_index(c) else {
                path.x += size * 0.5;
                continue;
            };
            face.outline_glyph(glyph, &mut path);
            path.x += face.glyph_hor_advance(glyph).map_or(size * 0.5, |a| f32::from(a) * scale);
        }
        path.out.into_bytes()
    }
}

/// Glyph outlines (font units, y up) written as PDF path operators.
struct PdfPath {
    out: String,
    scale: f32,
    x: f32,
    y: f32,
    /// The current point in font units, for raising quadratics to cubics.
    last: (f32, f32),
}

impl PdfPath {
    fn point(&self, x: f32, y: f32) -> String {
        format!("{:.2} {:.2}", self.x + x * self.scale, self.y + y * self.scale)
    }
}

impl ttf_parser::OutlineBuilder for PdfPath {
    fn move_to(&mut self, x: f32, y: f32) {
        self.out += &format!("{} m\n", self.point(x, y));
        self.last = (x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.out += &format!("{} l\n", self.point(x, y));
        self.last = (x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (x0, y0) = self.last;
        let c1 = (x0 + 2.0 / 3.0 * (x1 - x0), y0 + 2.0 / 3.0 * (y1 - y0));
        let c2 = (x + 2.0 / 3.0 * (x1 - x), y + 2.0 / 3.0 * (y1 - y));
        self.out += &format!("{} {} {} c\n", self.point(c1.0, c1.1), self.point(c2.0, c2.1), self.point(x, y));
        self.last = (x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.out += &format!("{} {} {} c\n", self.point(x1, y1), self.point(x2, y2), self.point(x, y));
        self.last = (x, y);
    }
    fn close(&mut self) {
        self.out += "h\n";
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

fn is_closing_punctuation(token: &str) -> bool {
    token.chars().count() == 1 && "，。、；：？！）》」』】,.;:?!)".contains(token)
}

/// Splits into break units: single CJK characters, Latin words with their trailing space.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        } else {
            word.push(c);
            if c == ' ' {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A signer as printed on the form.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintedSigner {
    pub name: String,
    pub signed_at: Timestamp,
}

/// A page drawn at its true size: an image and the paper size it stands for.
#[derive(Debug, Clone)]
pub struct Tracing {
    /// PNG or JPEG.
    pub image: Vec<u8>,
    pub width_mm: f32,
    pub height_mm: f32,
    /// What the page says of itself, printed beside it, e.g.
    /// "12 导联心电图 · 25 mm/s · 10 mm/mV".
    pub caption: String,
}

/// Everything the form shows.
#[derive(Debug, Clone)]
pub struct ReportForm {
    pub centre_name: String,
    pub hospital_name: String,
    /// E.g. "CT 检查报告单", "心电图诊断报告单".
    pub title: String,
    pub patient_name: String,
    pub sex: String,
    pub age: String,
    pub patient_id: String,
    pub department: String,
    pub inpatient_number: String,
    pub bed_number: String,
    pub exam_number: String,
    pub requesting_physician: String,
    pub exam_name: String,
    /// Study date and time as printed (检查日期 / 检查时间): the exam's, not
    /// the report's (报告日期 is in the footer).
    pub exam_date: String,
    pub exam_time: String,
    /// The referring hospital's clinical history (临床资料), printed under
    /// the patient block when given.
    pub clinical_history: String,
    pub method: String,
    pub findings: String,
    pub conclusion: String,
    pub critical: bool,
    /// E.g. "更正报告：替代 2026-11-23 发出的第 1 版" for an amended version.
    pub version_note: Option<String>,
    pub reporting_doctor: Option<PrintedSigner>,
    pub reviewing_doctor: Option<PrintedSigner>,
    pub report_date: Timestamp,
    pub printed_at: Timestamp,
    /// PNG or JPEG key images, at most four are printed.
    pub key_images: Vec<Vec<u8>>,
    /// Pages printed at their true size, each on a page of its own after
    /// the report: an ECG's 12-lead page (297 × 210 mm), so that its
    /// 25 mm/s and 10 mm/mV hold on paper and a ruler measures true
    /// intervals. (Shrunk into the report's text width it was 52 %.)
    pub tracings: Vec<Tracing>,
    pub report_id: String,
    pub verify_url: String,
}

impl ReportForm {
    /// A filled-in specimen (样张): a two-doctor chest CT report with long
    /// findings, for previewing the layout, tests and benchmarks.
    pub fn specimen(verify_url: &str) -> ReportForm {
        let t = |ms| Timestamp::new(ms, 480);
        ReportForm {
            centre_name: "云南省远程影像诊断中心".into(),
            hospital_name: "禄劝县人民医院".into(),
            title: "CT 检查报告单".into(),
            patient_name: "张三丰".into(),
            sex: "男".into(),
            age: "67岁".into(),
            patient_id: "P20261123001".into(),
            department: "呼吸内科".into(),
            inpatient_number: "ZY0098123".into(),
            bed_number: "12床".into(),
            exam_number: "CT202611230017".into(),
            requesting_physician: "王建国".into(),
            exam_name: "胸部CT平扫".into(),
            exam_date: "2026-11-23".into(),
            exam_time: "09:41".into(),
            clinical_history: "咳嗽、咳痰两周，低热，既往吸烟 40 年。".into(),
            method: "胸部CT平扫，层厚5mm，肺窗及纵隔窗观察。".into(),
            findings: "双肺纹理增多、紊乱。右肺上叶尖段见一大小约 18 mm × 15 mm 的结节影，边缘可见分叶及毛刺，邻近胸膜牵拉。左肺下叶见条索状高密度影。\n纵隔居中，纵隔内未见明显肿大淋巴结。心影不大，主动脉壁见钙化。双侧胸腔未见积液。".repeat(2),
            conclusion: "1. 右肺上叶尖段结节，考虑周围型肺癌可能，建议增强CT进一步检查。\n2. 左肺下叶少许纤维灶。\n3. 主动脉硬化。".into(),
            critical: false,
            version_note: None,
            reporting_doctor: Some(PrintedSigner { name: "陈医生".into(), signed_at: t(1_795_430_000_000) }),
            reviewing_doctor: Some(PrintedSigner { name: "黄主任".into(), signed_at: t(1_795_431_800_000) }),
            report_date: t(1_795_431_800_000),
            printed_at: t(1_795_431_800_000),
            key_images: vec![],
            tracings: vec![],
            report_id: "R-17-1".into(),
            verify_url: verify_url.into(),
        }
    }
}

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 48.0;
const BODY: f32 = 10.5;
const LINE: f32 = 16.0;
const QR_SIZE: f32 = 64.0;
/// The smallest size a long patient-block value is set in before it wraps.
const SMALLEST: f32 = 7.5;
/// Room kept at the bottom of the last page for the signature block.
const FOOTER_H: f32 = 118.0;

fn black() -> rgb::Color {
    rgb::Color::new(0, 0, 0)
}

fn fill(color: rgb::Color) -> Fill {
    Fill { paint: color.into(), ..Default::default() }
}

struct Pen<'a> {
    font: &'a ReportFont,
}

impl Pen<'_> {
    fn text(&self, surface: &mut Surface<'_>, x: f32, baseline: f32, size: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        surface.set_fill(Some(fill(black())));
        surface.set_stroke(None);
        surface.draw_text(Point::from_xy(x, baseline), self.font.font.clone(), size, text, false, TextDirection::Auto);
    }

    /// Heavier text: the glyphs filled and outlined with a hairline (the font has no bold face).
    fn bold(&self, surface: &mut Surface<'_>, x: f32, baseline: f32, size: f32, text: &str) {
        surface.set_fill(Some(fill(black())));
        surface.set_stroke(Some(Stroke { paint: black().into(), width: size / 28.0, ..Default::default() }));
        surface.draw_text(Point::from_xy(x, baseline), self.font.font.clone(), size, text, false, TextDirection::Auto);
        surface.set_stroke(None);
    }

    fn centred(&self, surface: &mut Surface<'_>, baseline: f32, size: f32, text: &str, bold: bool) {
        let x = (PAGE_W - self.font.width(text, size)) / 2.0;
        if bold { self.bold(surface, x, baseline, size, text) } else { self.text(surface, x, baseline, size, text) }
    }

    fn rule(&self, surface: &mut Surface<'_>, y: f32, width: f32) {
        let mut path = PathBuilder::new();
        path.move_to(MARGIN, y);
        path.line_to(PAGE_W - MARGIN, y);
        if let Some(path) = path.finish() {
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke { paint: black().into(), width, ..Default::default() }));
            surface.draw_path(&path);
            surface.set_stroke(None);
        }
    }
}

/// The QR code of `url` (error correction M) as its width in modules and
/// the dark modules' (column, row) positions.
fn qr_modules(url: &str) -> Result<(usize, Vec<(usize, usize)>), FormError> {
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| FormError::Pdf(format!("QR code for {url}: {e}")))?;
    let modules = code.width();
    let dark =
        code.to_colors().iter().enumerate().filter(|(_, c)| **c == qrcode::Color::Dark).map(|(i, _)| (i % modules, i / modules)).collect();
    Ok((modules, dark))
}

/// Quiet zone around a QR code, in modules.
const QR_QUIET: usize = 2;

/// The verification QR code the printed form carries, as an SVG image for
/// screens (the site's page shows it beside the download).
pub fn verification_qr_svg(url: &str) -> Result<String, FormError> {
    let (modules, dark) = qr_modules(url)?;
    let side = modules + 2 * QR_QUIET;
    let path: String = dark.iter().map(|(x, y)| format!("M{} {}h1v1h-1z", x + QR_QUIET, y + QR_QUIET)).collect();
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

fn draw_qr(surface: &mut Surface<'_>, url: &str, x: f32, y: f32, size: f32) -> Result<(), FormError> {
    let (modules, dark) = qr_modules(url)?;
    let cell = size / (modules + 2 * QR_QUIET) as f32;
    let mut path = PathBuilder::new();
    for (mx, my) in dark {
        let (mx, my) = (mx + QR_QUIET, my + QR_QUIET);
        if let Some(rect) = Rect::from_xywh(x + mx as f32 * cell, y + my as f32 * cell, cell, cell) {
            path.push_rect(rect);
        }
    }
    if let Some(path) = path.finish() {
        surface.set_stroke(None);
        surface.set_fill(Some(fill(black())));
        surface.draw_path(&path);
    }
    Ok(())
}

fn pdf_datetime(t: &Timestamp) -> DateTime {
    let c = t.civil();
    DateTime::new(c.year.clamp(0, 9999) as u16)
        .month(c.month as u8)
        .day(c.day as u8)
        .hour(c.hour as u8)
        .minute(c.minute as u8)
        .second(c.second as u8)
        .utc_offset_hour((t.offset_minutes / 60) as i8)
        .utc_offset_minute((t.offset_minutes.unsigned_abs() % 60) as u8)
}

/// Lays the form out as a PDF/A-2b document.
pub fn render(form: &ReportForm, font: &ReportFont) -> Result<Vec<u8>, FormError> {
    let configuration =
        ConfigurationBuilder::new().set_validator(Validator::A(Archival::A2_B)).finish().map_err(|e| FormError::Pdf(format!("{e:?}")))?;
    let settings = SerializeSettings { configuration, ..SerializeSettings::default() };
    let mut document = Document::new_with(settings);
    document.set_metadata(
        Metadata::new()
            .title(format!("{} {}", form.hospital_name, form.title))
            .creator("Telediag".into())
            .language("zh-CN".into())
            .creation_date(pdf_datetime(&form.printed_at))
            .document_id(form.report_id.clone()),
    );
    let pen = Pen { font };
    let text_width = PAGE_W - 2.0 * MARGIN;

    // The body as lines, each with its indent and whether it is a heading.
    let mut body: Vec<(f32, bool, String)> = Vec::new();
    for (heading, text) in [("检查方法：", &form.method), ("检查所见：", &form.findings), ("检查结论：", &form.conclusion)] {
        body.push((0.0, true, heading.to_owned()));
        for line in font.wrap(text.trim(), BODY, text_width - 2.0 * BODY) {
            body.push((2.0 * BODY, false, line));
        }
        body.push((0.0, false, String::new()));
    }
    for tracing in &form.tracings {
        body.push((0.0, false, format!("附：{}，按原大（1:1）印于报告之后的横向页。", tracing.caption)));
    }

    let images = form
        .key_images
        .iter()
        .take(4)
        .enumerate()
        .map(|(index, bytes)| {
            let data = krilla::Data::from(bytes.clone());
            // PDF/A forbids asking viewers to interpolate images.
            let image = if bytes.starts_with(b"\x89PNG") { Image::from_png(data, false) } else { Image::from_jpeg(data, false) };
            image.map_err(|reason| FormError::Image { index, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One key image (an ECG tracing, a single slice) gets the text width and
    // up to `tallest`; several share a row. Images shrink to the room left
    // above the signatures, down to `shortest`; below that they move on.
    let (shortest, tallest) = match images.len() {
        0 => (0.0, 0.0),
        1 => (160.0, 370.0),
        _ => (100.0, 132.0),
    };
    let footer_top = PAGE_H - MARGIN - FOOTER_H;
    let conclusion_at = body.iter().rposition(|(_, heading, _)| *heading).unwrap_or(0);
    let keep_with_signatures = (body.len() - conclusion_at).min(12);

    let mut next_line = 0;
    let mut page_number = 0;
    loop {
        page_number += 1;
        let mut page = document.start_page_with(PageSettings::new(Size::from_wh(PAGE_W, PAGE_H).expect("A4")));
        let mut surface = page.surface();
        let mut y = header(&pen, &mut surface, form, page_number)?;
        let page_limit = PAGE_H - MARGIN - 24.0;
        while next_line < body.len() {
            let remaining = body.len() - next_line;
            let fits_all = y + remaining as f32 * LINE <= footer_top - shortest;
            // When the rest will not fit above the signatures, the conclusion
            // moves on with them rather than leave them alone on a page.
            if !fits_all && (y + LINE > page_limit || remaining <= keep_with_signatures) {
                break;
            }
            let (indent, heading, text) = &body[next_line];
            if *heading {
                pen.bold(&mut surface, MARGIN + indent, y + BODY, BODY + 1.0, text);
            } else {
                pen.text(&mut surface, MARGIN + indent, y + BODY, BODY, text);
            }
            y += LINE;
            next_line += 1;
        }
        let room = footer_top - y - 16.0;
        let done = next_line >= body.len() && room >= shortest;
        if done {
            if !images.is_empty() {
                key_image_row(&mut surface, &images, y + 4.0, room.min(tallest));
            }
            footer(&pen, &mut surface, form)?;
        } else {
            pen.text(&mut surface, PAGE_W - MARGIN - 60.0, PAGE_H - MARGIN + 8.0, 8.0, &format!("第 {page_number} 页，续下页"));
        }
        surface.finish();
        page.finish();
        if done {
            break;
        }
        if page_number > 50 {
            return Err(FormError::Pdf("the report would run past 50 pages".into()));
        }
    }
    for (index, tracing) in form.tracings.iter().enumerate() {
        tracing_page(&mut document, &pen, form, tracing, index)?;
    }
    document.finish().map_err(|e| FormError::Pdf(format!("{e:?}")))
}

/// Points per millimetre.
const PT_PER_MM: f32 = 72.0 / 25.4;

/// A page of its own, the tracing's paper size, with the tracing drawn at
/// 1:1 and a line saying so (and that it must be printed at actual size).
fn tracing_page(document: &mut Document, pen: &Pen<'_>, form: &ReportForm, tracing: &Tracing, index: usize) -> Result<(), FormError> {
    let data = krilla::Data::from(tracing.image.clone());
    let image = if tracing.image.starts_with(b"\x89PNG") { Image::from_png(data, false) } else { Image::from_jpeg(data, false) };
    let image = image.map_err(|reason| FormError::Image { index: 100 + index, reason })?;
    let (w, h) = (tracing.width_mm * PT_PER_MM, tracing.height_mm * PT_PER_MM);
    let size = Size::from_wh(w, h).ok_or_else(|| FormError::Pdf(format!("a tracing of {w} x {h} pt")))?;
    let mut page = document.start_page_with(PageSettings::new(size));
    let mut surface = page.surface();
    surface.draw_image(image, size);
    let note =
        format!("{} · {} · {} · 原大（1:1）打印：请选择“实际大小”，勿“适合页面”", form.patient_name, form.report_id, tracing.caption);
    let note_w = pen.font.width(&note, 7.0);
    pen.text(&mut surface, w - 10.0 * PT_PER_MM - note_w, 8.0 * PT_PER_MM, 7.0, &note);
    surface.finish();
    page.finish();
    Ok(())
}

/// Draws the header and patient block; returns where the body starts.
fn header(pen: &Pen<'_>, surface: &mut Surface<'_>, form: &ReportForm, page_number: usize) -> Result<f32, FormError> {
    let mut y = MARGIN;
    pen.centred(surface, y + 18.0, 18.0, &form.centre_name, true);
    y += 28.0;
    pen.centred(surface, y + 15.0, 15.0, &format!("{}  {}", form.hospital_name, form.title), true);
    y += 22.0;
    if page_number == 1 {
        draw_qr(surface, &form.verify_url, PAGE_W - MARGIN - QR_SIZE + 6.0, MARGIN - 14.0, QR_SIZE)?;
        pen.text(surface, PAGE_W - MARGIN - QR_SIZE + 16.0, MARGIN + QR_SIZE + 2.0, 7.0, "扫码验证报告");
    }
    if form.critical {
        pen.bold(surface, MARGIN, MARGIN + 12.0, 12.0, "【危急值】");
    }
    if let Some(note) = &form.version_note {
        pen.text(surface, MARGIN, y + 9.0, 8.5, note);
        y += 12.0;
    }
    y += 6.0;
    pen.rule(surface, y, 1.2);
    y += 6.0;
    let rows = [
        [("姓名", &form.patient_name), ("性别", &form.sex), ("年龄", &form.age), ("病人编号", &form.patient_id)],
        [("科室", &form.department), ("住院号", &form.inpatient_number), ("床号", &form.bed_number), ("检查编号", &form.exam_number)],
        [
            ("申请医师", &form.requesting_physician),
            ("检查日期", &form.exam_date),
            ("检查时间", &form.exam_time),
            ("检查项目", &form.exam_name),
        ],
    ];
    // Names and sexes are short, IDs and exam names long.
    let shares = [0.2, 0.23, 0.18, 0.39];
    let width = PAGE_W - 2.0 * MARGIN;
    for row in rows {
        // A value never loses characters: it is set smaller, down to
        // SMALLEST, and then wraps within its column (the row grows).
        let cells: Vec<(String, f32, Vec<String>)> = row
            .iter()
            .enumerate()
            .map(|(i, (label, value))| {
                let label = format!("{label}：");
                let available = shares[i] * width - pen.font.width(&label, BODY) - 4.0;
                let mut size = BODY;
                while pen.font.width(value, size) > available && size > SMALLEST {
                    size -= 0.5;
                }
                (label, size, pen.font.wrap(value, size, available))
            })
            .collect();
        let lines = cells.iter().map(|(_, _, lines)| lines.len()).max().unwrap_or(1).max(1);
        let mut x = MARGIN;
        for (i, (label, size, value_lines)) in cells.iter().enumerate() {
            pen.text(surface, x, y + BODY, BODY, label);
            let label_w = pen.font.width(label, BODY);
            for (n, line) in value_lines.iter().enumerate() {
                pen.text(surface, x + label_w, y + BODY + n as f32 * (size + 3.0), *size, line);
            }
            x += shares[i] * width;
        }
        y += LINE + 2.0 + (lines - 1) as f32 * (SMALLEST + 3.0);
    }
    if !form.clinical_history.trim().is_empty() {
        let label = "临床资料：";
        let label_w = pen.font.width(label, BODY);
        pen.text(surface, MARGIN, y + BODY, BODY, label);
        for line in pen.font.wrap(form.clinical_history.trim(), BODY, width - label_w) {
            pen.text(surface, MARGIN + label_w, y + BODY, BODY, &line);
            y += LINE;
        }
        y += 2.0;
    }
    y += 2.0;
    pen.rule(surface, y, 0.6);
    Ok(y + 10.0)
}

fn key_image_row(surface: &mut Surface<'_>, images: &[Image], top: f32, height: f32) {
    let gap = 8.0;
    let columns = if images.len() == 1 { 1.0 } else { 4.0 };
    let slot = (PAGE_W - 2.0 * MARGIN - gap * (columns - 1.0)) / columns;
    for (i, image) in images.iter().enumerate() {
        let (w, h) = image.size();
        let scale = (slot / w as f32).min(height / h as f32);
        let (dw, dh) = (w as f32 * scale, h as f32 * scale);
        let x = MARGIN + i as f32 * (slot + gap) + (slot - dw) / 2.0;
        surface.push_transform(&krilla::geom::Transform::from_translate(x, top));
        if let Some(size) = Size::from_wh(dw, dh) {
            surface.draw_image(image.clone(), size);
        }
        surface.pop();
    }
}

fn footer(pen: &Pen<'_>, surface: &mut Surface<'_>, form: &ReportForm) -> Result<(), FormError> {
    let mut y = PAGE_H - MARGIN - FOOTER_H + 8.0;
    pen.rule(surface, y, 0.6);
    y += 8.0;
    let half = (PAGE_W - 2.0 * MARGIN) / 2.0;
    let signer = |who: &Option<PrintedSigner>| match who {
        Some(s) => (s.name.clone(), s.signed_at.date_time()),
        None => (String::new(), String::new()),
    };
    let (reporter, reported_at) = signer(&form.reporting_doctor);
    let (reviewer, reviewed_at) = signer(&form.reviewing_doctor);
    pen.text(surface, MARGIN, y + BODY, BODY, "报告医师：");
    pen.bold(surface, MARGIN + pen.font.width("报告医师：", BODY), y + BODY, BODY + 1.0, &reporter);
    pen.text(surface, MARGIN + half, y + BODY, BODY, "审核医师：");
    pen.bold(surface, MARGIN + half + pen.font.width("审核医师：", BODY), y + BODY, BODY + 1.0, &reviewer);
    y += LINE;
    pen.text(surface, MARGIN, y + 8.5, 8.5, &if reported_at.is_empty() { String::new() } else { format!("签名时间：{reported_at}") });
    pen.text(
        surface,
        MARGIN + half,
        y + 8.5,
        8.5,
        &if reviewed_at.is_empty() { String::new() } else { format!("签名时间：{reviewed_at}") },
    );
    y += LINE;
    pen.text(surface, MARGIN, y + BODY, BODY, &format!("报告日期：{}", form.report_date.date()));
    pen.text(surface, MARGIN + half, y + BODY, BODY, &format!("打印日期：{}", form.printed_at.date_time()));
    y += LINE + 6.0;
    pen.rule(surface, y, 0.4);
    y += 4.0;
    let notice = "本报告经签名医师数字签名（PAdES，附时间戳），仅供临床参考。扫描右上角二维码或访问以下地址核验签名医师与版本：";
    for line in pen.font.wrap(notice, 7.5, PAGE_W - 2.0 * MARGIN) {
        pen.text(surface, MARGIN, y + 8.0, 7.5, &line);
        y += 10.0;
    }
    pen.text(surface, MARGIN, y + 8.0, 7.5, &format!("{}    报告编号：{}", form.verify_url, form.report_id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> Option<ReportFont> {
        let loaded = ReportFont::locate(None, Path::exists).and_then(|path| {
            let bytes = std::fs::read(&path).map_err(|e| FormError::Font { path: path.clone(), reason: e.to_string() })?;
            ReportFont::from_bytes(bytes, &path)
        });
        match loaded {
            Ok(f) => Some(f),
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "CI installs a CJK font: {e}");
                eprintln!("skipping: {e}");
                None
            }
        }
    }

    #[test]
    fn the_verification_qr_is_a_square_svg_of_dark_modules() {
        let svg = verification_qr_svg("https://centre.example/verify/0123456789abcdef0123456789abcdef").unwrap();
        // 69 bytes at level M need a version-4 code: 33 modules, plus the quiet zone.
        assert!(svg.starts_with("<svg") && svg.contains("viewBox=\"0 0 37 37\""), "{}", &svg[..120]);
        // Each finder pattern's top-left module is dark, the one inside its ring light.
        for (x, y) in [(2, 2), (28, 2), (2, 28)] {
            assert!(!svg.contains(&format!("M{} {}h1v1h-1z", x + 1, y + 1)), "ring at {x},{y}");
            assert!(svg.contains(&format!("M{x} {y}h1v1h-1z")), "finder at {x},{y}");
        }
    }

    #[test]
    fn wrapping_keeps_lines_within_width_and_loses_no_character() {
        let Some(font) = font() else { return };
        let text = "双肺纹理清晰，走行自然，未见明确实质性病变。Left lower lobe nodule measuring 8 mm, unchanged since 2025-10-01。纵隔居中，心影不大。";
        let lines = font.wrap(text, 10.5, 200.0);
        assert!(lines.len() >= 3, "{lines:?}");
        for line in &lines {
            assert!(font.width(line, 10.5) <= 200.0 + 10.5, "{line:?} is too wide");
            assert!(!line.starts_with('，') && !line.starts_with('。'), "{line:?} starts with closing punctuation");
        }
        let joined: String = lines.concat().chars().filter(|c| !c.is_whitespace()).collect();
        let original: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined, original);
        assert!(lines.iter().any(|l| l.contains("nodule")), "a Latin word stays whole: {lines:?}");
    }
}
