//! RLE Lossless (PS3.5 G): a 64-byte header of segment offsets, then one
//! PackBits segment per byte of each sample, most significant byte first.
//!
//! Ours rather than dicom-rs's because that one refuses 32-bit samples.

use super::StoredFrame;
use crate::RenderError;
use crate::pixel_module::PixelModule;

pub(super) fn decode(bytes: &[u8], module: &PixelModule) -> Result<StoredFrame, RenderError> {
    if bytes.len() < 64 {
        return Err(RenderError::Decode(format!("RLE frame of {} bytes is shorter than its 64-byte header", bytes.len())));
    }
    let header: Vec<usize> = bytes[..64].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let segments = header[0];
    let bytes_per_sample = usize::from(module.bits_allocated.div_ceil(8));
    let spp = usize::from(module.samples_per_pixel);
    if module.bits_allocated == 1 || segments != bytes_per_sample * spp {
        return Err(RenderError::Decode(format!(
            "RLE header announces {segments} segments, expected {} for {spp} samples of {} bits",
            bytes_per_sample * spp,
            module.bits_allocated
        )));
    }
    let pixels = module.rows as usize * module.columns as usize;
    let mut samples = vec![0u32; pixels * spp];
    for segment in 0..segments {
        let start = header[1 + segment];
        let end = if segment + 1 < segments { header[2 + segment] } else { bytes.len() };
        if start < 64 || start > end || end > bytes.len() {
            return Err(RenderError::Decode(format!(
                "RLE segment {} spans bytes {start}..{end} of a {}-byte frame",
                segment + 1,
                bytes.len()
            )));
        }
        let plane = unpack_bits(&bytes[start..end], pixels)
            .ok_or_else(|| RenderError::Decode(format!("RLE segment {} decodes to fewer than {pixels} bytes", segment + 1)))?;
        let (sample, byte) = (segment / bytes_per_sample, segment % bytes_per_sample);
        let shift = 8 * (bytes_per_sample - 1 - byte);
        for (pixel, &value) in plane.iter().enumerate() {
            samples[pixel * spp + sample] |= u32::from(value) << shift;
        }
    }
    let shift = module.high_bit + 1 - module.bits_stored;
    Ok(StoredFrame::new(module, module.samples_per_pixel, module.photometric.clone(), samples.into_iter(), shift))
}

/// PackBits: n in 0..=127 copies n+1 literal bytes, n in -127..=-1 repeats
/// the next byte 1-n times, -128 is a no-op. Returns `None` when the
/// segment ends before `expected` bytes; extra output (segments are padded
/// to an even length) is dropped.
fn unpack_bits(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(expected);
    let mut i = 0;
    while out.len() < expected && i < input.len() {
        let n = input[i] as i8;
        i += 1;
        if n >= 0 {
            let count = n as usize + 1;
            let literal = input.get(i..i + count)?;
            out.extend_from_slice(literal);
            i += count;
        } else if n != -128 {
            let value = *input.get(i)?;
            out.resize(out.len() + (1 - n as isize) as usize, value);
            i += 1;
        }
    }
    (out.len() >= expected).then(|| {
        out.truncate(expected);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literals_and_runs() {
        // 3 literals, then 4 × 0x2A, then a no-op.
        assert_eq!(unpack_bits(&[2, 1, 2, 3, 0xFD, 0x2A, 0x80], 7).unwrap(), vec![1, 2, 3, 42, 42, 42, 42]);
        assert_eq!(unpack_bits(&[2, 1, 2], 3), None, "a literal run cut short");
        assert_eq!(unpack_bits(&[0xFF, 9], 3), None, "too few bytes in all");
    }
}
