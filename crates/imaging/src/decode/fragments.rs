//! Which fragments of encapsulated Pixel Data make up a frame (PS3.5 A.4).

use std::borrow::Cow;

use dicom_core::Tag;
use dicom_core::value::Value;
use dicom_object::InMemDicomObject;

use super::Codec;
use crate::RenderError;
use crate::pixel_module::PixelModule;

type PixelValue = Value<InMemDicomObject, dicom_core::value::InMemFragment>;

/// Extended Offset Table (7FE0,0001), 64-bit offsets for objects over 4 GB.
const EXTENDED_OFFSET_TABLE: Tag = Tag(0x7FE0, 0x0001);

/// The compressed bytes of frame `frame`, in this order of evidence: the
/// Extended Offset Table, the Basic Offset Table, one fragment per frame,
/// all fragments for a single frame, and for JPEG-family streams the
/// fragments that open with a Start Of Image (or Start Of Codestream)
/// marker.
pub(super) fn frame_bytes<'a>(
    dataset: &InMemDicomObject,
    value: &'a PixelValue,
    module: &PixelModule,
    frame: u32,
    codec: Codec,
) -> Result<Cow<'a, [u8]>, RenderError> {
    let Value::PixelSequence(sequence) = value else {
        return Err(RenderError::Invalid(format!("transfer syntax {} is encapsulated but the Pixel Data is not", module.transfer_syntax)));
    };
    let fragments = sequence.fragments();
    if fragments.is_empty() {
        return Err(RenderError::Invalid("the Pixel Data has no fragments".into()));
    }
    let frames = module.frames as usize;
    let frame = frame as usize;
    let extended: Option<Vec<u64>> = dataset.get(EXTENDED_OFFSET_TABLE).and_then(|e| {
        let bytes = e.value().to_bytes().ok()?;
        Some(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect())
    });
    let offsets: Option<Vec<u64>> = extended.filter(|t| t.len() == frames).or_else(|| {
        let table = sequence.offset_table();
        (table.len() == frames && frames > 1).then(|| table.iter().map(|&o| u64::from(o)).collect())
    });
    if let Some(offsets) = offsets {
        let (start, end) = (offsets[frame], offsets.get(frame + 1).copied().unwrap_or(u64::MAX));
        let mut position = 0u64;
        let mut chosen = Vec::new();
        for fragment in fragments {
            if position >= start && position < end {
                chosen.push(fragment.as_slice());
            }
            position += 8 + fragment.len() as u64;
        }
        if chosen.is_empty() {
            return Err(RenderError::Invalid(format!("the offset table points frame {} at no fragment", frame + 1)));
        }
        return Ok(join(chosen));
    }
    if frames == 1 {
        return Ok(join(fragments.iter().map(|f| f.as_slice()).collect()));
    }
    if fragments.len() == frames {
        return Ok(Cow::Borrowed(fragments[frame].as_slice()));
    }
    if let Some(marker) = codec.frame_start_marker() {
        let starts: Vec<usize> = (0..fragments.len()).filter(|&i| fragments[i].starts_with(marker)).collect();
        if starts.len() == frames {
            let end = starts.get(frame + 1).copied().unwrap_or(fragments.len());
            return Ok(join(fragments[starts[frame]..end].iter().map(|f| f.as_slice()).collect()));
        }
    }
    Err(RenderError::Invalid(format!("{} fragments for {frames} frames and no offset table to tell them apart", fragments.len())))
}

fn join(parts: Vec<&[u8]>) -> Cow<'_, [u8]> {
    if parts.len() == 1 { Cow::Borrowed(parts[0]) } else { Cow::Owned(parts.concat()) }
}
