//! JPEG-LS lossless and near-lossless through CharLS, the reference
//! implementation (the one DCMTK's `dcml2pnm`, GDCM and pydicom use).

use super::StoredFrame;
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
    let (spp, photometric) = (module.samples_per_pixel, module.photometric.clone());
    let mut frame = if info.bits_per_sample <= 8 {
        if decoded.len() < count {
            return Err(RenderError::Decode(format!("JPEG-LS decoded {} samples, expected {count}", decoded.len())));
        }
        StoredFrame::new(module, spp, photometric, decoded[..count].iter().map(|&b| u32::from(b)), 0)
    } else {
        if decoded.len() < count * 2 {
            return Err(RenderError::Decode(format!("JPEG-LS decoded {} samples, expected {count}", decoded.len() / 2)));
        }
        let words = decoded[..count * 2].as_chunks::<2>().0.iter();
        StoredFrame::new(module, spp, photometric, words.map(|&c| u32::from(u16::from_le_bytes(c))), 0)
    };
    // Non-interleaved colour (ILV 0) comes back plane by plane.
    if components > 1 && interleave_mode(bytes) == Some(0) {
        frame.samples = frame.samples.interleaved(components);
    }
    Ok(frame)
}

/// The ILV parameter of the first Start Of Scan (T.87 C.2.3): marker FFDA,
/// length, Ns, Ns × (component, table), NEAR, ILV.
fn interleave_mode(bytes: &[u8]) -> Option<u8> {
    let at = bytes.windows(2).position(|w| w == [0xFF, 0xDA])?;
    let components = usize::from(*bytes.get(at + 4)?);
    bytes.get(at + 5 + 2 * components + 1).copied()
}
