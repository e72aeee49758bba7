//! Thumbnails and previews: resize to fit, keep the aspect ratio, encode.

use std::borrow::Cow;
use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageFormat};

/// How a thumbnail is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbnailFormat {
    /// Quality 90: photographs and large images.
    Jpeg,
    /// Lossless: small images and line art.
    Png,
}

/// An encoded thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: ThumbnailFormat,
}

/// Fits `image` into a `size`×`size` square (never enlarging it), with a
/// Catmull-Rom convolution (fast_image_resize: SIMD, several times the speed
/// of `image`'s resizer on a 7 MB radiograph), and encodes it (JPEG through
/// libjpeg-turbo).
///
/// `pixel_aspect` is the height of a pixel over its width: an image with
/// rectangular pixels is shown at its true proportions, as on film.
pub fn make_thumbnail(image: &DynamicImage, size: u32, pixel_aspect: f64, format: ThumbnailFormat) -> Result<Thumbnail, String> {
    fit(image, (size, size), pixel_aspect, format, 90, false)
}

/// Fits `image` into `box_size` (width, height) keeping its shown
/// proportions, enlarging it too when `enlarge` (a DICOMweb viewport asks
/// for a size), and encodes it; `quality` (1–100) is for JPEG.
pub fn fit(
    image: &DynamicImage,
    box_size: (u32, u32),
    pixel_aspect: f64,
    format: ThumbnailFormat,
    quality: u8,
    enlarge: bool,
) -> Result<Thumbnail, String> {
    let (w, h) = (image.width().max(1), image.height().max(1));
    let aspect = if pixel_aspect.is_finite() && pixel_aspect > 0.0 { pixel_aspect } else { 1.0 };
    let (shown_w, shown_h) = (w as f64, h as f64 * aspect);
    let scale = (box_size.0.max(1) as f64 / shown_w).min(box_size.1.max(1) as f64 / shown_h);
    let scale = if enlarge { scale } else { scale.min(1.0) };
    let (tw, th) = (((shown_w * scale).round() as u32).max(1), ((shown_h * scale).round() as u32).max(1));
    let source = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => Cow::Borrowed(image),
        other if other.color().has_color() => Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
        other => Cow::Owned(DynamicImage::ImageLuma8(other.to_luma8())),
    };
    let resized = if (tw, th) == (w, h) {
        source
    } else {
        let mut target = DynamicImage::new(tw, th, source.color());
        Resizer::new()
            .resize(&*source, &mut target, &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom)))
            .map_err(|e| format!("cannot resize {w}x{h} to {tw}x{th}: {e}"))?;
        Cow::Owned(target)
    };
    let bytes = match format {
        ThumbnailFormat::Jpeg => {
            let channels = if resized.color().has_color() { 3 } else { 1 };
            crate::turbo::encode_jpeg(resized.as_bytes(), tw, th, channels, quality.clamp(1, 100))?
        }
        ThumbnailFormat::Png => {
            let mut bytes = Vec::new();
            resized.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).map_err(|e| format!("cannot encode the thumbnail: {e}"))?;
            bytes
        }
    };
    Ok(Thumbnail { bytes, width: tw, height: th, format })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn check(width: u32, height: u32, size: u32, expected: (u32, u32)) {
        check_aspect(width, height, size, 1.0, expected);
    }

    fn check_aspect(width: u32, height: u32, size: u32, aspect: f64, expected: (u32, u32)) {
        let image = DynamicImage::ImageLuma8(GrayImage::from_pixel(width, height, Luma([128])));
        let thumb = make_thumbnail(&image, size, aspect, ThumbnailFormat::Png).unwrap();
        assert_eq!((thumb.width, thumb.height), expected, "{width}x{height} into {size}");
        let decoded = image::load_from_memory(&thumb.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), expected);
    }

    #[test]
    fn thumbnails_keep_the_aspect_ratio_and_never_enlarge() {
        check(512, 512, 256, (256, 256));
        check(1024, 768, 256, (256, 192));
        check(600, 2000, 256, (77, 256));
        check(100, 50, 256, (100, 50));
        check(3000, 1, 256, (256, 1));
    }

    #[test]
    fn rectangular_pixels_are_shown_at_their_true_proportions() {
        // Pixels twice as tall as wide (Pixel Spacing 0.8\0.4): a square
        // matrix is a portrait picture.
        check_aspect(512, 512, 256, 2.0, (128, 256));
        check_aspect(512, 256, 256, 2.0, (256, 256));
        // The preview keeps the long side and stretches the short one.
        check_aspect(400, 100, 400, 2.0, (400, 200));
    }
}
