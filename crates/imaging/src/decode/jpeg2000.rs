//! JPEG 2000 (lossless and lossy) and HTJ2K through openjp2, the pure-Rust
//! port of OpenJPEG 2.5 (the reference decoder, HTJ2K block decoding
//! included), by way of the jpeg2k crate.

use super::StoredFrame;
use crate::RenderError;
use crate::pixel_module::PixelModule;

pub(super) fn decode(bytes: &[u8], module: &PixelModule) -> Result<StoredFrame, RenderError> {
    let image = jpeg2k::Image::from_bytes(bytes).map_err(|e| RenderError::Decode(format!("JPEG 2000: {e}")))?;
    let components = image.components();
    let spp = usize::from(module.samples_per_pixel);
    if components.len() < spp {
        return Err(RenderError::Decode(format!("the JPEG 2000 stream has {} components, the dataset says {spp}", components.len())));
    }
    let pixels = module.rows as usize * module.columns as usize;
    for (i, component) in components.iter().take(spp).enumerate() {
        if component.width() != module.columns || component.height() != module.rows || component.data().len() < pixels {
            return Err(RenderError::Decode(format!(
                "JPEG 2000 component {} is {}x{}, the dataset says {}x{}",
                i + 1,
                component.width(),
                component.height(),
                module.columns,
                module.rows
            )));
        }
    }
    // The decoder undoes the reversible/irreversible component transform.
    let photometric = match module.photometric.as_str() {
        "YBR_RCT" | "YBR_ICT" => "RGB".into(),
        other => other.into(),
    };
    Ok(if spp == 1 {
        StoredFrame::new(module, module.samples_per_pixel, photometric, components[0].data()[..pixels].iter().map(|&v| v as u32), 0)
    } else {
        let interleaved = (0..pixels).flat_map(|pixel| components[..spp].iter().map(move |c| c.data()[pixel] as u32));
        StoredFrame::new(module, module.samples_per_pixel, photometric, interleaved, 0)
    })
}
