//! From stored values to what a reader sees: the grayscale pipeline of
//! PS3.4 N.2 (Modality LUT → VOI LUT → Presentation LUT) and the colour
//! spaces (palette, YBR, RGB), ending in 8 bits a sample.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use image::{DynamicImage, GrayImage, RgbImage};

use crate::RenderError;
use crate::decode::{Samples, StoredFrame};
use crate::pixel_module::{PixelModule, string};

/// Pixel Value Transformation Sequence, in the functional groups.
const PIXEL_VALUE_TRANSFORMATION: Tag = Tag(0x0028, 0x9145);
/// Frame VOI LUT Sequence, in the functional groups.
const FRAME_VOI_LUT: Tag = Tag(0x0028, 0x9132);

/// Stored value to modality value (e.g. Hounsfield units).
#[derive(Debug, Clone, PartialEq)]
pub enum ModalityLut {
    Rescale { slope: f64, intercept: f64 },
    Table(Lut),
}

/// Modality value to display value.
#[derive(Debug, Clone, PartialEq)]
pub enum Voi {
    Window {
        center: f64,
        width: f64,
        function: VoiFunction,
    },
    Table(Lut),
    /// None given: a percentile window is computed from the frame.
    Automatic,
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

/// A lookup table: `first` maps to `entries[0]`; inputs outside the table
/// take its first or last entry (PS3.3 C.11.1.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Lut {
    pub first: i64,
    pub bits: u16,
    pub entries: Vec<u16>,
    /// The value that maps to white, from [`Lut::max_output`], kept
    /// because it is needed for every pixel.
    white: f64,
}

impl Lut {
    pub fn new(first: i64, bits: u16, entries: Vec<u16>) -> Lut {
        let mut lut = Lut { first, bits, entries, white: 0.0 };
        lut.white = lut.max_output();
        lut
    }

    /// The entry for `value`, scaled to 8 bits.
    fn get_8bit(&self, value: i64) -> u8 {
        scale_to_8(f64::from(self.get(value)), self.white)
    }

    fn get(&self, value: i64) -> u16 {
        let index = (value - self.first).clamp(0, self.entries.len() as i64 - 1);
        self.entries[index as usize]
    }

    /// The largest value an entry may hold, from the descriptor, widened
    /// when the data exceeds it (a common encoder mistake).
    fn max_output(&self) -> f64 {
        let declared = ((1u32 << self.bits.min(16)) - 1) as f64;
        let actual = f64::from(self.entries.iter().copied().max().unwrap_or(0));
        if actual > declared { 65535.0 } else { declared }
    }
}

/// Everything between a frame's stored values and an 8-bit image.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayTransform {
    pub modality: ModalityLut,
    pub voi: Voi,
    /// MONOCHROME1, or a Presentation LUT Shape of INVERSE.
    pub invert: bool,
    pub palette: Option<[Lut; 3]>,
    /// A Supplemental Palette (PS3.3 C.7.6.16.2.7, e.g. a perfusion map in a
    /// CT): stored values in its range are shown in its colours, the others
    /// through the grayscale pipeline.
    pub supplemental: Option<[Lut; 3]>,
    /// Pixel Padding Value: left out of the automatic window.
    pub padding: Option<i64>,
}

impl DisplayTransform {
    /// Reads the transform for `frame`: a per-frame functional group wins over
    /// the shared one, which wins over the top-level attributes.
    pub fn read(object: &InMemDicomObject, module: &PixelModule, frame: u32) -> Result<DisplayTransform, RenderError> {
        let modality_item = group_item(object, frame, PIXEL_VALUE_TRANSFORMATION).unwrap_or(object);
        let voi_item = group_item(object, frame, FRAME_VOI_LUT).unwrap_or(object);
        let modality = match first_item(object, tags::MODALITY_LUT_SEQUENCE) {
            Some(item) if module.is_monochrome() => {
                ModalityLut::Table(read_lut(item, tags::LUT_DESCRIPTOR, tags::LUT_DATA, module.signed)?)
            }
            _ => ModalityLut::Rescale {
                slope: float(modality_item, tags::RESCALE_SLOPE).filter(|s| *s != 0.0).unwrap_or(1.0),
                intercept: float(modality_item, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
            },
        };
        let window = float(voi_item, tags::WINDOW_CENTER).zip(float(voi_item, tags::WINDOW_WIDTH));
        let voi = match (window, first_item(object, tags::VOILUT_SEQUENCE)) {
            (Some((center, width)), _) if width > 0.0 => {
                let function = match string(voi_item, tags::VOILUT_FUNCTION).as_deref() {
                    Some("LINEAR_EXACT") => VoiFunction::LinearExact,
                    Some("SIGMOID") => VoiFunction::Sigmoid,
                    _ => VoiFunction::Linear,
                };
                // LINEAR needs a width of at least 1.
                let width = if function == VoiFunction::Linear { width.max(1.0) } else { width };
                Voi::Window { center, width, function }
            }
            (_, Some(item)) => Voi::Table(read_lut(item, tags::LUT_DESCRIPTOR, tags::LUT_DATA, module.signed)?),
            _ => Voi::Automatic,
        };
        let read = |descriptor, data, segmented| {
            read_lut(object, descriptor, data, module.signed)
                .or_else(|e| read_segmented_lut(object, descriptor, segmented, module.signed).ok_or(e))
        };
        let palette = || -> Result<[Lut; 3], RenderError> {
            Ok([
                read(
                    tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                    tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                    tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                )?,
                read(
                    tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                    tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                    tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                )?,
                read(
                    tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                    tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                    tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                )?,
            ])
        };
        let supplemental_declared = module.is_monochrome()
            && matches!(string(object, tags::PIXEL_PRESENTATION).as_deref(), Some("COLOR" | "MIXED"))
            && object.get(tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR).is_some();
        let supplemental = if supplemental_declared { Some(palette()?) } else { None };
        let palette = if module.photometric == "PALETTE COLOR" { Some(palette()?) } else { None };
        let presentation_inverse = string(object, tags::PRESENTATION_LUT_SHAPE).as_deref() == Some("INVERSE");
        let padding = object.get(tags::PIXEL_PADDING_VALUE).and_then(|e| e.to_int::<i64>().ok());
        Ok(DisplayTransform {
            modality,
            voi,
            invert: (module.photometric == "MONOCHROME1") != presentation_inverse,
            palette,
            supplemental,
            padding,
        })
    }
}

/// Renders `frame` to an 8-bit grey or RGB image.
pub fn to_image(frame: &StoredFrame, transform: &DisplayTransform) -> Result<DynamicImage, RenderError> {
    crate::decode::each_width!(&frame.samples, samples => image_of(frame, samples, transform))
}

/// A stored sample, at any of the widths [`Samples`] holds.
trait Sample: Copy + Ord + Into<i64> {
    /// The smallest and largest of `samples`, `None` when there are none.
    fn range(samples: &[Self]) -> Option<(i64, i64)>;
    /// `self - base` as a table index, for values at most 65535 above `base`.
    fn offset_from(self, base: i64) -> u16;
}

macro_rules! sample {
    ($t:ty) => {
        impl Sample for $t {
            fn range(samples: &[$t]) -> Option<(i64, i64)> {
                // By value over plain integers, so the loop vectorises.
                let (mut low, mut high) = (<$t>::MAX, <$t>::MIN);
                for &v in samples {
                    low = low.min(v);
                    high = high.max(v);
                }
                (!samples.is_empty()).then(|| (low.into(), high.into()))
            }

            fn offset_from(self, base: i64) -> u16 {
                // Wrapping in the sample's own width: the low 16 bits agree.
                self.wrapping_sub(base as $t) as u16
            }
        }
    };
}
sample!(u16);
sample!(i16);
sample!(i32);
sample!(i64);

fn image_of<T: Sample>(frame: &StoredFrame, samples: &[T], transform: &DisplayTransform) -> Result<DynamicImage, RenderError> {
    let (w, h) = (frame.columns, frame.rows);
    if let Some(palette) = &transform.palette {
        let mut rgb = Vec::with_capacity(samples.len() * 3);
        for &value in samples {
            for lut in palette {
                rgb.push(lut.get_8bit(value.into()));
            }
        }
        return Ok(DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).expect("sized")));
    }
    if frame.samples_per_pixel == 3 {
        return Ok(DynamicImage::ImageRgb8(colour(frame, samples)));
    }
    let grey = monochrome(frame, samples, transform);
    let Some(palette) = &transform.supplemental else {
        return Ok(DynamicImage::ImageLuma8(grey));
    };
    let [red, ..] = palette;
    let range = red.first..red.first + red.entries.len() as i64;
    let mut rgb = Vec::with_capacity(samples.len() * 3);
    for (&value, &level) in samples.iter().zip(grey.as_raw()) {
        let value: i64 = value.into();
        if range.contains(&value) {
            rgb.extend(palette.iter().map(|lut| lut.get_8bit(value)));
        } else {
            rgb.extend([level; 3]);
        }
    }
    Ok(DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).expect("sized")))
}

fn scale_to_8(value: f64, max: f64) -> u8 {
    (value / max * 255.0).round().clamp(0.0, 255.0) as u8
}

/// RGB or YBR_FULL samples to 8-bit RGB.
fn colour<T: Sample>(frame: &StoredFrame, samples: &[T]) -> RgbImage {
    let max = ((1u64 << frame.bits_stored.min(32)) - 1).max(1) as f64;
    let to_8 = |v: i64| if frame.bits_stored == 8 { v.clamp(0, 255) as u8 } else { scale_to_8(v as f64, max) };
    let mut rgb: Vec<u8> = samples.iter().map(|&v| to_8(v.into())).collect();
    if frame.photometric == "YBR_FULL" {
        for pixel in rgb.chunks_exact_mut(3) {
            let (y, cb, cr) = (f64::from(pixel[0]), f64::from(pixel[1]) - 128.0, f64::from(pixel[2]) - 128.0);
            let clamp = |v: f64| v.round().clamp(0.0, 255.0) as u8;
            pixel[0] = clamp(y + 1.402 * cr);
            pixel[1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
            pixel[2] = clamp(y + 1.772 * cb);
        }
    }
    RgbImage::from_raw(frame.columns, frame.rows, rgb).expect("sized")
}

/// The grayscale pipeline. Stored values usually span at most 16 bits, so the
/// whole pipeline is computed once per distinct value into a table.
fn monochrome<T: Sample>(frame: &StoredFrame, samples: &[T], transform: &DisplayTransform) -> GrayImage {
    if samples.is_empty() {
        return GrayImage::new(frame.columns, frame.rows);
    }
    // The values samples can take: for up to 16 bits, every value Bits
    // Stored allows (the decoders mask to it), which spares a pass over the
    // frame; wider data is measured.
    let (min, max) = match frame.bits_stored {
        bits @ 1..=16 if frame.signed => (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1),
        bits @ 1..=16 => (0, (1i64 << bits) - 1),
        _ => T::range(samples).expect("not empty"),
    };
    let modality = |v: i64| -> f64 {
        match &transform.modality {
            ModalityLut::Rescale { slope, intercept } => (v as f64) * slope + intercept,
            ModalityLut::Table(lut) => f64::from(lut.get(v)),
        }
    };
    let voi = match &transform.voi {
        Voi::Automatic => {
            let (low, high) = percentile_range(samples, transform.padding, min, max);
            let (a, b) = (modality(low), modality(high));
            let (low, high) = (a.min(b), a.max(b));
            Voi::Window { center: (low + high) / 2.0, width: (high - low).max(1.0), function: VoiFunction::LinearExact }
        }
        other => other.clone(),
    };
    let display = |v: i64| -> u8 {
        let x = modality(v);
        let y = match &voi {
            Voi::Window { center, width, function } => window(x, *center, *width, *function),
            Voi::Table(lut) => lut.get_8bit(x.round() as i64),
            Voi::Automatic => unreachable!("resolved above"),
        };
        if transform.invert { 255 - y } else { y }
    };
    let span = max - min;
    let pixels: Vec<u8> = if span < 1 << 16 {
        // The usual 8 to 16 bits: a table the index cannot overrun by its
        // type, so the per-pixel lookup carries no bounds check.
        let mut table = Box::new([0u8; 1 << 16]);
        for (entry, value) in table.iter_mut().zip(min..=max) {
            *entry = display(value);
        }
        let mut pixels = vec![0u8; samples.len()];
        for (pixel, &v) in pixels.iter_mut().zip(samples) {
            *pixel = table[usize::from(v.offset_from(min))];
        }
        pixels
    } else if span <= 1 << 20 {
        let table: Vec<u8> = (min..=max).map(display).collect();
        samples.iter().map(|&v| table[(v.into() - min) as usize]).collect()
    } else {
        samples.iter().map(|&v| display(v.into())).collect()
    };
    GrayImage::from_raw(frame.columns, frame.rows, pixels).expect("sized")
}

/// A VOI window (PS3.3 C.11.2.1.2) to 0..=255.
pub fn window(x: f64, center: f64, width: f64, function: VoiFunction) -> u8 {
    let y = match function {
        VoiFunction::Linear => {
            let (c, w) = (center - 0.5, width - 1.0);
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 || w <= 0.0 {
                1.0
            } else {
                (x - c) / w + 0.5
            }
        }
        VoiFunction::LinearExact => ((x - center) / width + 0.5).clamp(0.0, 1.0),
        VoiFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - center) / width).exp()),
    };
    (y * 255.0).round().clamp(0.0, 255.0) as u8
}

/// The stored values at the 0.5th and 99.5th percentiles, so a few hot or
/// dead pixels do not flatten the rest; padding pixels are left out.
fn percentile_range<T: Sample>(samples: &[T], padding: Option<i64>, min: i64, max: i64) -> (i64, i64) {
    let span = (max - min) as usize;
    let mut histogram = vec![0u32; if span <= 1 << 20 { span + 1 } else { 0 }];
    let mut counted = 0u64;
    if histogram.is_empty() {
        // Wide 32-bit data: sort a copy instead.
        let mut values: Vec<i64> = samples.iter().map(|&v| v.into()).filter(|v| Some(*v) != padding).collect();
        if values.is_empty() {
            return (min, max);
        }
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        return (at(0.005), at(0.995));
    }
    for &v in samples {
        let v: i64 = v.into();
        if Some(v) != padding {
            histogram[(v - min) as usize] += 1;
            counted += 1;
        }
    }
    if counted == 0 {
        return (min, max);
    }
    let find = |q: f64| -> i64 {
        let target = ((counted - 1) as f64 * q).round() as u64;
        let mut seen = 0u64;
        for (i, &n) in histogram.iter().enumerate() {
            seen += u64::from(n);
            if seen > target {
                return min + i as i64;
            }
        }
        max
    };
    (find(0.005), find(0.995))
}

/// The first item of the functional group `group` for `frame`: per-frame,
/// then shared.
fn group_item(object: &InMemDicomObject, frame: u32, group: Tag) -> Option<&InMemDicomObject> {
    let in_sequence = |sequence: Tag, index: usize| -> Option<&InMemDicomObject> {
        let items = object.get(sequence)?.items()?;
        first_item(items.get(index)?, group)
    };
    in_sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frame as usize)
        .or_else(|| in_sequence(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0))
}

fn first_item(object: &InMemDicomObject, sequence: Tag) -> Option<&InMemDicomObject> {
    object.get(sequence)?.items()?.first()
}

fn float(object: &InMemDicomObject, tag: Tag) -> Option<f64> {
    let value = object.get(tag)?.to_multi_float64().ok()?.first().copied()?;
    value.is_finite().then_some(value)
}

/// A LUT from its descriptor (entries, first mapped value, bits per entry;
/// PS3.3 C.11.1.1) and data.
fn read_lut(object: &InMemDicomObject, descriptor: Tag, data: Tag, signed: bool) -> Result<Lut, RenderError> {
    let invalid = |what: String| RenderError::Invalid(what);
    let values = object
        .element(descriptor)
        .map_err(|_| invalid(format!("LUT Descriptor {descriptor} is missing")))?
        .to_multi_int::<i64>()
        .map_err(|e| invalid(format!("LUT Descriptor {descriptor} is unreadable: {e}")))?;
    let [entries, first, bits] = values[..] else {
        return Err(invalid(format!("LUT Descriptor {descriptor} has {} values, expected 3", values.len())));
    };
    let entries = if entries == 0 { 65536 } else { (entries as u64 & 0xFFFF) as usize };
    // The first mapped value is US or SS as the pixel data is; read as US
    // (implicit VR), a negative one arrives as its 16-bit pattern.
    let first = if signed && first > 32767 { first - 65536 } else { first };
    let bytes = object
        .element(data)
        .map_err(|_| invalid(format!("LUT Data {data} is missing ")))?
        .value()
        .to_bytes()
        .map_err(|e| invalid(format!("LUT Data {data} is unreadable: {e}")))?;
    let mut table: Vec<u16> = if bits <= 8 && bytes.len() == entries {
        bytes.iter().map(|&b| u16::from(b)).collect()
    } else {
        bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
    };
    if bits <= 8 && table.iter().all(|v| v & 0xFF == 0) && table.iter().any(|&v| v > 0) {
        // 8-bit entries written into the high byte of each word.
        table.iter_mut().for_each(|v| *v >>= 8);
    }
    if table.len() < entries {
        return Err(invalid(format!("LUT Data {data} has {} entries, the descriptor says {entries}", table.len())));
    }
    table.truncate(entries);
    Ok(Lut::new(first, bits.clamp(1, 16) as u16, table))
}

/// A segmented palette (PS3.3 C.7.9.2): its descriptor, and data expanded
/// from discrete, linear and indirect segments.
fn read_segmented_lut(object: &InMemDicomObject, descriptor: Tag, data: Tag, signed: bool) -> Option<Lut> {
    let values = object.get(descriptor)?.to_multi_int::<i64>().ok()?;
    let [entries, first, bits] = values[..] else { return None };
    let entries = if entries == 0 { 65536 } else { (entries as u64 & 0xFFFF) as usize };
    let bytes = object.get(data)?.value().to_bytes().ok()?;
    let words: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let mut table = Vec::with_capacity(entries);
    expand_segments(&words, &mut table, entries, 0)?;
    table.resize(entries, *table.last()?);
    let first = if signed && first > 32767 { first - 65536 } else { first };
    Some(Lut::new(first, bits.clamp(1, 16) as u16, table))
}

/// Appends the expansion of `words` to `out`; `depth` bounds indirection.
fn expand_segments(words: &[u16], out: &mut Vec<u16>, limit: usize, depth: u8) -> Option<()> {
    let mut i = 0;
    while i + 1 < words.len() && out.len() < limit {
        let (opcode, length) = (words[i], usize::from(words[i + 1]));
        match opcode {
            0 => {
                out.extend_from_slice(words.get(i + 2..i + 2 + length)?);
                i += 2 + length;
            }
            1 => {
                let start = f64::from(*out.last()?);
                let end = f64::from(*words.get(i + 2)?);
                for step in 1..=length {
                    out.push((start + (end - start) * step as f64 / length as f64).round() as u16);
                }
                i += 3;
            }
            2 if depth < 4 => {
                let offset = usize::from(*words.get(i + 2)?) | usize::from(*words.get(i + 3)?) << 16;
                // The offset counts bytes from the start of the data.
                let copied = words.get(offset / 2..)?;
                let mut nested = Vec::new();
                let mut taken = 0;
                let mut j = 0;
                while taken < length && j + 1 < copied.len() {
                    let size = match copied[j] {
                        0 => 2 + usize::from(copied[j + 1]),
                        1 => 3,
                        _ => return None,
                    };
                    nested.extend_from_slice(copied.get(j..j + size)?);
                    j += size;
                    taken += 1;
                }
                expand_segments(&nested, out, limit, depth + 1)?;
                i += 4;
            }
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_follows_the_standard() {
        // PS3.3 C.11.2.1.2.1 with c=40, w=400 (a soft-tissue CT window).
        assert_eq!(window(-161.0, 40.0, 400.0, VoiFunction::Linear), 0);
        assert_eq!(window(240.0, 40.0, 400.0, VoiFunction::Linear), 255);
        assert_eq!(window(40.0, 40.0, 400.0, VoiFunction::Linear), 128);
        assert_eq!(window(0.0, 0.5, 1.0, VoiFunction::Linear), 0, "width 1 is a threshold");
        assert_eq!(window(1.0, 0.5, 1.0, VoiFunction::Linear), 255);
        assert_eq!(window(40.0, 40.0, 400.0, VoiFunction::LinearExact), 128);
        assert_eq!(window(40.0, 40.0, 400.0, VoiFunction::Sigmoid), 128);
        // 255 / (1 + e^-1) at a quarter width above the centre.
        assert_eq!(window(140.0, 40.0, 400.0, VoiFunction::Sigmoid), 186);
    }

    #[test]
    fn segmented_palettes_expand() {
        // Discrete 0, 10; linear to 40 over 3 entries; discrete 7.
        let words = [0, 2, 0, 10, 1, 3, 40, 0, 1, 7];
        let mut out = Vec::new();
        expand_segments(&words, &mut out, 100, 0).unwrap();
        assert_eq!(out, vec![0, 10, 20, 30, 40, 7]);
        // An indirect segment copying the first (discrete) segment again.
        let words = [0, 2, 5, 6, 2, 1, 0, 0];
        let mut out = Vec::new();
        expand_segments(&words, &mut out, 100, 0).unwrap();
        assert_eq!(out, vec![5, 6, 5, 6]);
    }

    #[test]
    fn percentiles_skip_outliers_and_padding() {
        let mut samples: Vec<i64> = (-500..500).collect();
        samples.push(30_000); // one hot pixel
        samples.extend(std::iter::repeat_n(-2000, 500)); // padding outside the field of view
        let (low, high) = percentile_range(&samples, Some(-2000), -2000, 30_000);
        assert!((low - -495).abs() <= 2 && (high - 495).abs() <= 2, "{low}..{high}");
    }
}
