//! Decoding and windowing one frame.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use image::DynamicImage;
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutOption, WindowLevel};

/// Why an object could not be rendered. The message is what the study API
/// shows as `undecodable: <reason>`.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("not an image: the object has no Pixel Data")]
    NoPixelData,
    #[error("frame {frame} requested but the object has {frames}")]
    NoSuchFrame { frame: u32, frames: u32 },
    #[error("pixel data cannot be decoded: {0}")]
    Decode(String),
}

/// A rendered frame, 8 bits per sample (grey or RGB).
#[derive(Debug)]
pub struct Rendered {
    pub image: DynamicImage,
    /// Frames in the object.
    pub frames: u32,
}

/// Decodes frame `frame` of the Part 10 file at `path` and windows it to 8 bits.
pub fn render_file(path: &Path, frame: u32) -> Result<Rendered, RenderError> {
    let object = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| RenderError::Open { path: path.display().to_string(), reason: e.to_string() })?;
    if object.element(tags::PIXEL_DATA).is_err() {
        return Err(RenderError::NoPixelData);
    }
    let decoded = object.decode_pixel_data_frame(frame).map_err(|e| RenderError::Decode(e.to_string()))?;
    let frames = object
        .element(tags::NUMBER_OF_FRAMES)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    if frame >= frames {
        return Err(RenderError::NoSuchFrame { frame, frames });
    }
    let has_voi = object.element(tags::WINDOW_CENTER).is_ok() || object.element(tags::VOILUT_SEQUENCE).is_ok();
    let voi = if !has_voi && decoded.samples_per_pixel() == 1 {
        let values: Vec<f32> = decoded.to_vec_frame(0).map_err(|e| RenderError::Decode(e.to_string()))?;
        VoiLutOption::Custom(auto_window(values))
    } else {
        VoiLutOption::First
    };
    let options = ConvertOptions::new().with_voi_lut(voi).force_8bit();
    let image = decoded.to_dynamic_image_with_options(0, &options).map_err(|e| RenderError::Decode(e.to_string()))?;
    Ok(Rendered { image, frames })
}

/// A window for an image that brings none: from the 0.5th to the 99.5th
/// percentile of its (modality-LUT) values, so a few hot or dead pixels do not
/// flatten the rest, and signed data is handled like any other.
pub fn auto_window(mut values: Vec<f32>) -> WindowLevel {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return WindowLevel { center: 0.0, width: 1.0 };
    }
    let at = |q: f64, values: &mut Vec<f32>| {
        let index = ((values.len() - 1) as f64 * q).round() as usize;
        *values.select_nth_unstable_by(index, f32::total_cmp).1 as f64
    };
    let low = at(0.005, &mut values);
    let high = at(0.995, &mut values);
    WindowLevel { center: (low + high) / 2.0, width: (high - low).max(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_window_spans_the_bulk_of_the_values() {
        let mut values: Vec<f32> = (0..1000).map(|v| v as f32 - 500.0).collect();
        values.push(30_000.0); // one hot pixel
        let window = auto_window(values);
        assert!((window.center - 0.0).abs() < 10.0, "{window:?}");
        assert!((window.width - 990.0).abs() < 20.0, "{window:?}");
        assert_eq!(auto_window(vec![7.0; 10]).width, 1.0, "a flat image gets a minimal window");
        assert_eq!(auto_window(vec![]).width, 1.0);
    }
}
