//! Uncompressed pixel data: little and big endian (dicom-rs has already
//! byte-swapped OW words), deflated (inflated when the file was opened),
//! 1, 8, 16 and 32 bits, planar or interleaved, and YBR_FULL_422.

use dicom_core::value::{PrimitiveValue, Value};
use dicom_object::InMemDicomObject;

use super::{Samples, StoredFrame};
use crate::RenderError;
use crate::pixel_module::PixelModule;

type PixelValue = Value<InMemDicomObject, dicom_core::value::InMemFragment>;

/// One frame's bytes in little-endian sample order; its first sample starts
/// at bit `first_bit` of the first byte (only 1-bit frames start mid-byte).
pub(crate) struct NativeFrame {
    pub bytes: Vec<u8>,
    pub first_bit: u64,
}

/// The bits frame `frame` occupies in a Pixel Data value of `length` bytes.
pub(super) fn frame_bits(module: &PixelModule, frame: u32, length: u64) -> Result<std::ops::Range<u64>, RenderError> {
    let per_frame_bits = module.samples_per_frame() * u64::from(module.bits_allocated);
    let start_bit = per_frame_bits * u64::from(frame);
    let end_bit = start_bit + per_frame_bits;
    if end_bit > length * 8 {
        return Err(RenderError::Invalid(format!(
            "Pixel Data holds {length} bytes, frame {} of {} needs bytes up to {}",
            frame + 1,
            module.frames,
            end_bit.div_ceil(8)
        )));
    }
    Ok(start_bit..end_bit)
}

/// Frame `frame` of an in-memory Pixel Data value.
pub(super) fn frame_from_value(value: &PixelValue, module: &PixelModule, frame: u32) -> Result<NativeFrame, RenderError> {
    let Value::Primitive(primitive) = value else {
        return Err(RenderError::Invalid("uncompressed transfer syntax but the Pixel Data is encapsulated".into()));
    };
    let bytes = little_endian_bytes(primitive, module.bits_allocated, module.is_big_endian());
    let bits = frame_bits(module, frame, bytes.len() as u64)?;
    let (start_bit, end_bit) = (bits.start, bits.end);
    let range = (start_bit / 8) as usize..end_bit.div_ceil(8) as usize;
    Ok(NativeFrame { bytes: bytes[range].to_vec(), first_bit: start_bit % 8 })
}

/// Raw bytes as read from a file to little-endian sample order. In big
/// endian, OW is byte-swapped as 16-bit words whatever Bits Allocated says
/// (the standard's rule, which GDCM and DCMTK follow); OB holds each
/// sample's bytes in the dataset's order.
pub(super) fn to_little_endian(bytes: &mut [u8], is_ow: bool, bits_allocated: u16, big_endian: bool) {
    if !big_endian {
        return;
    }
    match (is_ow, bits_allocated) {
        (true, _) | (false, 16) => bytes.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
        (false, 32) => bytes.chunks_exact_mut(4).for_each(|c| c.reverse()),
        _ => {}
    }
}

/// Decodes one frame's bytes.
pub(super) fn decode(frame: &NativeFrame, module: &PixelModule) -> Result<StoredFrame, RenderError> {
    let bytes = &frame.bytes;
    let count = module.samples_per_frame();
    let shift = module.high_bit + 1 - module.bits_stored;
    let samples = if module.bits_allocated == 1 {
        Samples::U16(
            (frame.first_bit..frame.first_bit + count).map(|bit| u16::from((bytes[(bit / 8) as usize] >> (bit % 8)) & 1)).collect(),
        )
    } else if module.bits_allocated == 16 && shift == 0 && (module.bits_stored == 16 || !module.signed) {
        // The common CT/MR/CR case: 16-bit words, low-aligned, in one pass
        // over fixed-size chunks, so the loop vectorises.
        if bytes.len() < count as usize * 2 {
            return Err(RenderError::Invalid(format!(
                "the file ends {} bytes into a frame that needs {} (truncated?)",
                bytes.len(),
                count * 2
            )));
        }
        let (words, _) = bytes[..count as usize * 2].as_chunks::<2>();
        if module.signed {
            Samples::I16(words.iter().map(|&w| i16::from_le_bytes(w)).collect())
        } else {
            let mask = ((1u32 << module.bits_stored) - 1) as u16;
            Samples::U16(words.iter().map(|&w| u16::from_le_bytes(w) & mask).collect())
        }
    } else {
        samples_from_le_bytes(bytes, module, count, shift)?
    };
    let (samples, photometric) = if module.photometric == "YBR_FULL_422" {
        (samples.ybr_422_expanded(module.columns as usize, module.rows as usize)?, "YBR_FULL".to_string())
    } else if module.planar && module.samples_per_pixel > 1 {
        (samples.interleaved(module.samples_per_pixel as usize), module.photometric.clone())
    } else {
        (samples, module.photometric.clone())
    };
    Ok(StoredFrame {
        rows: module.rows,
        columns: module.columns,
        samples_per_pixel: module.samples_per_pixel,
        photometric,
        bits_stored: module.bits_stored,
        signed: module.signed,
        samples,
    })
}

/// The value's bytes in little-endian sample order. dicom-rs has already
/// swapped OW as 16-bit words; OB is as the dataset orders it.
fn little_endian_bytes(primitive: &PrimitiveValue, bits_allocated: u16, big_endian: bool) -> std::borrow::Cow<'_, [u8]> {
    let bytes = primitive.to_bytes();
    if big_endian && matches!(primitive, PrimitiveValue::U8(_)) && bits_allocated > 8 {
        let mut owned = bytes.into_owned();
        to_little_endian(&mut owned, false, bits_allocated, true);
        return owned.into();
    }
    bytes
}

/// Reads `count` samples of Bits Allocated (8, 16 or 32) bits whose
/// significant bits start at bit `shift`.
pub(super) fn samples_from_le_bytes(bytes: &[u8], module: &PixelModule, count: u64, shift: u16) -> Result<Samples, RenderError> {
    let bits_allocated = module.bits_allocated;
    let width = usize::from(bits_allocated / 8);
    let count = usize::try_from(count).map_err(|_| RenderError::Invalid("frame too large".into()))?;
    if bytes.len() < count * width {
        return Err(RenderError::Decode(format!(
            "decoded frame holds {} bytes, expected {} ({count} samples of {bits_allocated} bits)",
            bytes.len(),
            count * width
        )));
    }
    let bytes = &bytes[..count * width];
    let (bits, signed) = (module.bits_stored, module.signed);
    Ok(match width {
        1 => Samples::from_raw(bytes.iter().map(|&b| u32::from(b)), shift, bits, signed),
        2 => Samples::from_raw(bytes.as_chunks::<2>().0.iter().map(|&c| u32::from(u16::from_le_bytes(c))), shift, bits, signed),
        _ => Samples::from_raw(bytes.as_chunks::<4>().0.iter().map(|&c| u32::from_le_bytes(c)), shift, bits, signed),
    })
}

impl Samples {
    /// R…R G…G B…B to R G B R G B.
    pub(super) fn interleaved(self, samples_per_pixel: usize) -> Samples {
        super::each_width!(self, v => wrap interleave(&v, samples_per_pixel))
    }

    /// Y Y Cb Cr for each horizontal pair of pixels to Y Cb Cr for every pixel.
    fn ybr_422_expanded(self, columns: usize, rows: usize) -> Result<Samples, RenderError> {
        Ok(super::each_width!(self, v => wrap expand_ybr_422(&v, columns, rows)?))
    }
}

/// R…R G…G B…B to R G B R G B.
fn interleave<T: Copy + Default>(planar: &[T], samples_per_pixel: usize) -> Vec<T> {
    let pixels = planar.len() / samples_per_pixel;
    let mut out = vec![T::default(); pixels * samples_per_pixel];
    for (plane, values) in planar.chunks_exact(pixels).enumerate() {
        for (pixel, &value) in values.iter().enumerate() {
            out[pixel * samples_per_pixel + plane] = value;
        }
    }
    out
}

/// Y Y Cb Cr for each horizontal pair of pixels to Y Cb Cr for every pixel
/// (PS3.3 C.7.6.3.1.2). An odd last column has its own Y Y Cb Cr group.
fn expand_ybr_422<T: Copy>(samples: &[T], columns: usize, rows: usize) -> Result<Vec<T>, RenderError> {
    let pairs_per_row = columns.div_ceil(2);
    if samples.len() < pairs_per_row * 4 * rows {
        return Err(RenderError::Invalid("YBR_FULL_422 data shorter than the image".into()));
    }
    let mut out = Vec::with_capacity(columns * rows * 3);
    for row in 0..rows {
        for pair in 0..pairs_per_row {
            let at = (row * pairs_per_row + pair) * 4;
            let [y1, y2, cb, cr] = [samples[at], samples[at + 1], samples[at + 2], samples[at + 3]];
            out.extend_from_slice(&[y1, cb, cr]);
            if pair * 2 + 1 < columns {
                out.extend_from_slice(&[y2, cb, cr]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_samples_are_interleaved() {
        assert_eq!(interleave(&[1, 2, 10, 20, 100, 200], 3), vec![1, 10, 100, 2, 20, 200]);
    }

    #[test]
    fn ybr_422_shares_chroma_between_two_pixels() {
        let out = expand_ybr_422(&[10, 11, 128, 129, 20, 21, 130, 131], 4, 1).unwrap();
        assert_eq!(out, vec![10, 128, 129, 11, 128, 129, 20, 130, 131, 21, 130, 131]);
    }

    #[test]
    fn stored_bits_are_masked_and_sign_extended() {
        let masked = |raw: Vec<u32>, shift, bits, signed| Samples::from_raw(raw.into_iter(), shift, bits, signed);
        // 12 bits stored, high bit 11: 0xF800 has garbage above the high bit
        // and is -2048 as a 12-bit two's complement number.
        assert_eq!(masked(vec![0xF800, 0x07FF, 0x0800], 0, 12, true), Samples::I16(vec![-2048, 2047, -2048]));
        assert_eq!(masked(vec![0xF800, 0x07FF], 0, 12, false), Samples::U16(vec![0x800, 0x7FF]));
        // High bit 14 with 12 stored: the samples sit at bits 3..14.
        assert_eq!(masked(vec![0x7FF8], 3, 12, false), Samples::U16(vec![0xFFF]));
        // High bit 23 with 16 stored in 32 allocated.
        assert_eq!(masked(vec![0x00FF_FF00], 8, 16, true), Samples::I16(vec![-1]));
        // Wider data takes wider types: only unsigned 32-bit needs i64.
        assert_eq!(masked(vec![0x1_FFFF], 0, 17, false), Samples::I32(vec![0x1_FFFF]));
        assert_eq!(masked(vec![0xFFFF_FFFB], 0, 32, true), Samples::I32(vec![-5]));
        assert_eq!(masked(vec![0xFFFF_FFFF], 0, 32, false), Samples::I64(vec![0xFFFF_FFFF]));
    }
}
