//! JPEG-LS lossless and near-lossless through CharLS, the reference
//! implementation (the one DCMTK's `dcml2pnm`, GDCM and pydicom use).

use super::{Samples, StoredFrame};
use crate::RenderError;
use crate::pixel_module::PixelModule;

pub(super) fn decode(bytes: &[u8], module: &PixelModule) -> Result<StoredFrame, RenderError> {
    let failed = |what: &str, e: charls::Error| RenderError::Decode(format!("JPEG-LS {what}: {e}"));
    // One CharLS decoder reads the header, a fresh one decodes: a decoder
    // refuses to read a second header.
    let info = charls::CharLS::default().get_frame_info(bytes).map_err(|e| failed("header", e))?;
    if info.width != module.columns || info.height != module.rows {
        return Err(RenderError::Decode(format!(
            "the JPEG-LS stream is {}x{}, the dataset says {}x{}",
            info.width, info.height, module.columns, module.rows
        )));
    }
    let components = info.component_count.max(1) as usize;
    if components != usize::from(module.samples_per_pixel) {
        return Err(RenderError::Decode(format!(
            "the JPEG-LS stream has {components} components, the dataset says {}",
            module.samples_per_pixel
        )));
    }
    let decoded = charls::CharLS::default().decode(bytes).map_err(|e| failed("decoding", e))?;
    let count = info.width as usize * info.height as usize * components;
    let samples: Vec<i32> = if info.bits_per_sample <= 8 {
        decoded.iter().take(count).map(|&b| i32::from(b)).collect()
    } else {
        decoded.chunks_exact(2).take(count).map(|c| i32::from(u16::from_le_bytes([c[0], c[1]]))).collect()
    };
    if samples.len() != count {
        return Err(RenderError::Decode(format!("JPEG-LS decoded {} samples, expected {count}", samples.len())));
    }
    // Non-interleaved colour (ILV 0) comes back plane by plane.
    let samples = Samples::Narrow(samples);
    let samples = if components > 1 && interleave_mode(bytes) == Some(0) { samples.interleaved(components) } else { samples };
    Ok(StoredFrame::new(module, module.samples_per_pixel, module.photometric.clone(), samples, 0))
}

/// The ILV parameter of the first Start Of Scan (T.87 C.2.3): marker FFDA,
/// length, Ns, Ns × (component, table), NEAR, ILV.
fn interleave_mode(bytes: &[u8]) -> Option<u8> {
    let at = bytes.windows(2).position(|w| w == [0xFF, 0xDA])?;
    let components = usize::from(*bytes.get(at + 4)?);
    bytes.get(at + 5 + 2 * components + 1).copied()
}
