//! The Image Pixel module: what the stored samples are, read once per object.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::RenderError;

/// How the samples of a frame are to be read, from the object's attributes
/// (PS3.3 C.7.6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct PixelModule {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    /// Pixel Representation 1: two's complement samples.
    pub signed: bool,
    /// Photometric Interpretation as stored, e.g. `MONOCHROME2`, `YBR_FULL_422`.
    pub photometric: String,
    /// Planar Configuration 1: all red, then all green, then all blue.
    pub planar: bool,
    pub frames: u32,
    pub transfer_syntax: String,
    /// Height of a pixel over its width, from Pixel Spacing, Imager Pixel
    /// Spacing or Pixel Aspect Ratio; 1 when none is given.
    pub pixel_aspect: f64,
}

impl PixelModule {
    /// Reads the module. Missing or impossible values are reported by name.
    pub fn read(object: &InMemDicomObject, transfer_syntax: &str) -> Result<PixelModule, RenderError> {
        let rows = required_u32(object, tags::ROWS, "Rows")?;
        let columns = required_u32(object, tags::COLUMNS, "Columns")?;
        let samples_per_pixel = optional_u32(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
        let bits_allocated = required_u32(object, tags::BITS_ALLOCATED, "Bits Allocated")? as u16;
        let bits_stored = optional_u32(object, tags::BITS_STORED).map_or(bits_allocated, |b| b as u16);
        let high_bit = optional_u32(object, tags::HIGH_BIT).map_or(bits_stored.saturating_sub(1), |b| b as u16);
        let photometric = string(object, tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap_or_else(|| if samples_per_pixel == 3 { "RGB".into() } else { "MONOCHROME2".into() });
        let module = PixelModule {
            rows,
            columns,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            high_bit,
            signed: optional_u32(object, tags::PIXEL_REPRESENTATION) == Some(1),
            photometric,
            planar: optional_u32(object, tags::PLANAR_CONFIGURATION) == Some(1),
            frames: number_of_frames(object)?,
            transfer_syntax: transfer_syntax.trim_end_matches('\0').trim().to_string(),
            pixel_aspect: pixel_aspect(object),
        };
        module.check()?;
        Ok(module)
    }

    fn check(&self) -> Result<(), RenderError> {
        let invalid = |what: String| Err(RenderError::Invalid(what));
        if self.rows == 0 || self.columns == 0 {
            return invalid(format!("the image is {}x{} pixels", self.columns, self.rows));
        }
        if !matches!(self.bits_allocated, 1 | 8 | 16 | 32) {
            return invalid(format!("Bits Allocated is {}, expected 1, 8, 16 or 32", self.bits_allocated));
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return invalid(format!("Bits Stored is {} with Bits Allocated {}", self.bits_stored, self.bits_allocated));
        }
        if self.high_bit >= self.bits_allocated || self.high_bit + 1 < self.bits_stored {
            return invalid(format!("High Bit is {} with Bits Stored {}", self.high_bit, self.bits_stored));
        }
        if !matches!(self.samples_per_pixel, 1 | 3) {
            return invalid(format!("Samples per Pixel is {}, expected 1 or 3", self.samples_per_pixel));
        }
        Ok(())
    }

    /// Samples in one frame as stored (YBR_FULL_422 keeps two samples a pixel).
    pub fn samples_per_frame(&self) -> u64 {
        let pixels = u64::from(self.rows) * u64::from(self.columns);
        if self.photometric == "YBR_FULL_422" && self.is_native() { pixels * 2 } else { pixels * u64::from(self.samples_per_pixel) }
    }

    /// Whether the pixel data is stored uncompressed.
    pub fn is_native(&self) -> bool {
        matches!(
            self.transfer_syntax.as_str(),
            "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99"
        )
    }

    /// Explicit VR Big Endian (retired, still sent by old modalities).
    pub fn is_big_endian(&self) -> bool {
        self.transfer_syntax == "1.2.840.10008.1.2.2"
    }

    pub fn is_monochrome(&self) -> bool {
        self.photometric.starts_with("MONOCHROME")
    }
}

/// The number of frames, 1 when absent. A value that is present but unreadable
/// is an error rather than a guess.
fn number_of_frames(object: &InMemDicomObject) -> Result<u32, RenderError> {
    match object.get(tags::NUMBER_OF_FRAMES) {
        None => Ok(1),
        Some(element) => {
            let text = element.to_str().map(|s| s.trim().trim_end_matches('\0').to_string()).unwrap_or_default();
            if text.is_empty() {
                return Ok(1);
            }
            text.parse::<u32>()
                .map(|n| n.max(1))
                .map_err(|_| RenderError::Invalid(format!("Number of Frames is {text:?}, expected a whole number")))
        }
    }
}

fn pixel_aspect(object: &InMemDicomObject) -> f64 {
    let pair = |tag: Tag| -> Option<(f64, f64)> {
        let values = object.get(tag)?.to_multi_float64().ok()?;
        match values.as_slice() {
            [a, b, ..] if *a > 0.0 && *b > 0.0 && a.is_finite() && b.is_finite() => Some((*a, *b)),
            _ => None,
        }
    };
    let from_ratio = || -> Option<(f64, f64)> {
        let values = object.get(tags::PIXEL_ASPECT_RATIO)?.to_multi_int::<i64>().ok()?;
        match values.as_slice() {
            [v, h, ..] if *v > 0 && *h > 0 => Some((*v as f64, *h as f64)),
            _ => None,
        }
    };
    // Pixel Spacing and Imager Pixel Spacing are (row spacing, column
    // spacing): the height of a pixel first.
    let (height, width) = pair(tags::PIXEL_SPACING).or_else(|| pair(tags::IMAGER_PIXEL_SPACING)).or_else(from_ratio).unwrap_or((1.0, 1.0));
    let aspect = height / width;
    // Beyond 1:10 the attribute is more likely wrong than the pixels.
    if (0.1..=10.0).contains(&aspect) { aspect } else { 1.0 }
}

fn required_u32(object: &InMemDicomObject, tag: Tag, name: &str) -> Result<u32, RenderError> {
    optional_u32(object, tag).ok_or_else(|| RenderError::Invalid(format!("{name} {tag} is missing or not a number")))
}

pub(crate) fn optional_u32(object: &InMemDicomObject, tag: Tag) -> Option<u32> {
    object.get(tag)?.to_int::<u32>().ok()
}

pub(crate) fn string(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let text = object.get(tag)?.to_str().ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
    (!text.is_empty()).then_some(text)
}
