//! Reading one frame's bytes from a file without loading the rest of its
//! Pixel Data, so a 2 GB cine loop costs one frame of memory, not two
//! gigabytes.
//!
//! The attributes come from dicom-object reading up to Pixel Data; the pixel
//! bytes from dicom-parser's lazy data set reader, which skips every value
//! it is not asked for. Files it cannot walk this way (deflated, bare
//! datasets, odd meta groups) are read whole by the caller instead.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::decode::BasicDecode;
use dicom_encoding::decode::basic::LittleEndianBasicDecoder;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::native::NativeFrame;
use crate::RenderError;
use crate::pixel_module::PixelModule;

/// One frame's pixel bytes, as stored.
pub(crate) enum FrameData {
    Native(NativeFrame),
    Compressed(Vec<u8>),
}

/// Opens the attributes of `path`, everything but Pixel Data.
pub(crate) fn open_attributes(path: &Path) -> Option<DefaultDicomObject> {
    check_readable(File::open(path).ok()?, Extent::UpToPixelData).ok()?;
    OpenFileOptions::new().read_preamble(ReadPreamble::Auto).read_until(tags::PIXEL_DATA).open_file(path).ok()
}

/// How much of a dataset a reader is about to read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    UpToPixelData,
    Whole,
}

/// Whether dicom-parser can read the Part 10 object in `source` (up to
/// `extent`) without falling out of step with it. It reads binary values
/// (SS, FL, …) in whole units, so a value whose length is not a whole
/// number of units leaves it one or more bytes adrift, taking garbage for
/// every length after it, and it reserves a value's declared length before
/// reading it: one such file asked for 1.3 GB (found by fuzzing). The lazy
/// reader skips values by their declared length and stays in step; walked
/// first, it finds such a value and names it.
///
/// Only that fault refuses the object. Where the walk itself stops (a
/// truncated file, a sequence encoded as UN, no meta group, deflate), the
/// object is left to dicom-object as before: declared lengths were checked
/// against the file at ingest (`scan::check_bytes`), and files read whole
/// are below a size limit.
pub(crate) fn check_readable<R: Read + Seek>(mut source: R, extent: Extent) -> Result<(), String> {
    source.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut file = BufReader::with_capacity(1 << 16, source);
    let Some(start) = dataset_start(&mut file) else { return Ok(()) };
    // "DICM" after the 128-byte preamble, or first (dataset_start found one of them).
    file.seek(SeekFrom::Start(128)).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 4];
    let preamble = file.read_exact(&mut magic).is_ok() && &magic == b"DICM";
    file.seek(SeekFrom::Start(if preamble { 128 } else { 0 })).map_err(|e| e.to_string())?;
    let Ok(meta) = dicom_object::meta::FileMetaTable::from_reader(&mut file) else { return Ok(()) };
    let Some(ts) = TransferSyntaxRegistry.get(meta.transfer_syntax()) else { return Ok(()) };
    if matches!(ts.codec(), dicom_encoding::transfer_syntax::Codec::Dataset(_)) {
        return Ok(()); // deflated: the stream must be inflated as a whole
    }
    file.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let Ok(mut reader) = LazyDataSetReader::new_with_ts(file, ts) else { return Ok(()) };
    let mut depth = 0usize;
    while let Some(Ok(token)) = reader.advance() {
        match token {
            LazyDataToken::SequenceStart { .. } => depth += 1,
            LazyDataToken::SequenceEnd => depth = depth.saturating_sub(1),
            LazyDataToken::LazyValue { header, decoder } => {
                if depth == 0 && header.tag == tags::PIXEL_DATA && extent == Extent::UpToPixelData {
                    return Ok(());
                }
                let unit = match header.vr {
                    VR::SS | VR::US | VR::OW => 2,
                    VR::SL | VR::UL | VR::FL | VR::AT | VR::OF | VR::OL => 4,
                    VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
                    _ => 1,
                };
                if header.len.0 % unit != 0 {
                    return Err(format!(
                        "element {} {} is {} bytes long, not a whole number of {unit}-byte values",
                        header.tag, header.vr, header.len.0
                    ));
                }
                if decoder.skip_bytes(header.len.0).is_err() {
                    return Ok(());
                }
            }
            LazyDataToken::PixelSequenceStart if depth == 0 && extent == Extent::UpToPixelData => return Ok(()),
            LazyDataToken::PixelSequenceStart => depth += 1,
            // An item that cannot be skipped (the file ends) ends the walk.
            LazyDataToken::LazyItemValue { len, decoder } => {
                let skipped = decoder.skip_bytes(len);
                if skipped.is_err() {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where the dataset starts: after the optional 128-byte preamble, "DICM"
/// and the file meta group, whose length its first element gives.
fn dataset_start(file: &mut impl Read) -> Option<u64> {
    let mut head = [0u8; 144];
    file.read_exact(&mut head).ok()?;
    let meta = if &head[128..132] == b"DICM" {
        132
    } else if &head[..4] == b"DICM" {
        4
    } else {
        return None;
    };
    // (0002,0000) UL 4 <length>, explicit VR little endian.
    let group_length = head.get(meta..meta + 12)?;
    if group_length[..6] != [0x02, 0x00, 0x00, 0x00, b'U', b'L'] {
        return None;
    }
    let length = u32::from_le_bytes(group_length[8..12].try_into().ok()?);
    Some(meta as u64 + 12 + u64::from(length))
}

/// Reads frame `frame` of `path`'s Pixel Data, skipping everything else.
/// `None` when the file cannot be walked lazily; an error when it can and
/// the frame is not there.
pub(crate) fn read_frame(path: &Path, module: &PixelModule, frame: u32) -> Option<Result<FrameData, RenderError>> {
    read_frame_from(File::open(path).ok()?, module, frame)
}

/// [`read_frame`] from a reader positioned at the start of a Part 10 object.
pub(crate) fn read_frame_from<R: Read + Seek>(source: R, module: &PixelModule, frame: u32) -> Option<Result<FrameData, RenderError>> {
    if module.transfer_syntax == "1.2.840.10008.1.2.1.99" {
        return None; // deflated: the stream must be inflated as a whole
    }
    let mut file = BufReader::with_capacity(1 << 16, source);
    let start = dataset_start(&mut file)?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let ts = TransferSyntaxRegistry.get(&module.transfer_syntax)?;
    let mut reader = LazyDataSetReader::new_with_ts(file, ts).ok()?;
    let mut depth = 0usize;
    while let Some(token) = reader.advance() {
        let Ok(token) = token else { return None };
        match token {
            LazyDataToken::SequenceStart { .. } => depth += 1,
            LazyDataToken::SequenceEnd => depth = depth.saturating_sub(1),
            LazyDataToken::LazyValue { header, decoder } => {
                if depth == 0 && header.tag == tags::PIXEL_DATA {
                    return Some(native_frame(decoder, header.vr, header.len.0, module, frame));
                }
                decoder.skip_bytes(header.len.0).ok()?;
            }
            LazyDataToken::PixelSequenceStart if depth == 0 => {
                return Some(encapsulated_frame(&mut reader, module, frame));
            }
            LazyDataToken::PixelSequenceStart => depth += 1,
            LazyDataToken::LazyItemValue { len, decoder } => decoder.skip_bytes(len).ok()?,
            _ => {}
        }
    }
    Some(Err(RenderError::NoPixelData))
}

fn native_frame(
    decoder: &mut impl StatefulDecode,
    vr: VR,
    length: u32,
    module: &PixelModule,
    frame: u32,
) -> Result<FrameData, RenderError> {
    let bits = super::native::frame_bits(module, frame, u64::from(length))?;
    let (start_bit, end_bit) = (bits.start, bits.end);
    let (mut from, mut to) = (start_bit / 8, end_bit.div_ceil(8));
    let big_endian = module.is_big_endian();
    // Big-endian words are swapped in whole 16-bit (or 32-bit) units
    // counted from the start of the value: read whole units.
    let unit = if big_endian { if vr == VR::OW { 2 } else { u64::from(module.bits_allocated / 8).max(1) } } else { 1 };
    let lead = from % unit;
    from -= lead;
    to = (to.div_ceil(unit) * unit).min(u64::from(length));
    let unreadable = |e: dicom_parser::stateful::decode::Error| RenderError::Decode(format!("cannot read Pixel Data: {e}"));
    decoder.skip_bytes(from as u32).map_err(unreadable)?;
    let mut bytes = Vec::with_capacity((to - from) as usize);
    decoder.read_to_vec((to - from) as u32, &mut bytes).map_err(unreadable)?;
    super::native::to_little_endian(&mut bytes, vr == VR::OW, module.bits_allocated, big_endian);
    bytes.drain(..lead as usize);
    Ok(FrameData::Native(NativeFrame { bytes, first_bit: start_bit % 8 }))
}

/// The fragments of frame `frame`: located by the Basic Offset Table, or,
/// without one, one fragment per frame when the frame count allows nothing
/// else, or by the codec's start marker.
fn encapsulated_frame<S: StatefulDecode>(
    reader: &mut LazyDataSetReader<S>,
    module: &PixelModule,
    frame: u32,
) -> Result<FrameData, RenderError> {
    let codec = super::codec_of(module)?;
    let unreadable = |what: &str| RenderError::Decode(format!("cannot read the encapsulated Pixel Data: {what}"));
    let mut items = 0u32; // items started; the first is the Basic Offset Table
    let mut offsets: Option<Vec<u64>> = None;
    let mut position = 0u64; // of the next fragment's item, from the first fragment
    let mut chosen: Vec<Vec<u8>> = Vec::new();
    let marker = codec.frame_start_marker();
    let mut frame_starts_seen = 0u32;
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| unreadable(&e.to_string()))?;
        match token {
            LazyDataToken::ItemStart { .. } => items += 1,
            LazyDataToken::LazyItemValue { len, decoder } => {
                if items == 1 {
                    // The Basic Offset Table (an empty one has no value).
                    let mut table = Vec::new();
                    decoder.read_to_vec(len, &mut table).map_err(|e| unreadable(&e.to_string()))?;
                    let values: Vec<u64> =
                        table.chunks_exact(4).map(|c| u64::from(LittleEndianBasicDecoder.decode_ul(c).unwrap_or(0))).collect();
                    offsets = Some(values);
                    continue;
                }
                let here = position;
                position += 8 + u64::from(len);
                let table = offsets.as_deref().unwrap_or(&[]);
                if table.len() == module.frames as usize && module.frames > 1 {
                    let (from, to) = (table[frame as usize], table.get(frame as usize + 1).copied().unwrap_or(u64::MAX));
                    if here < from {
                        decoder.skip_bytes(len).map_err(|e| unreadable(&e.to_string()))?;
                        continue;
                    }
                    if here >= to {
                        break;
                    }
                    let mut bytes = Vec::new();
                    decoder.read_to_vec(len, &mut bytes).map_err(|e| unreadable(&e.to_string()))?;
                    chosen.push(bytes);
                    continue;
                }
                let mut bytes = Vec::new();
                decoder.read_to_vec(len, &mut bytes).map_err(|e| unreadable(&e.to_string()))?;
                if module.frames == 1 {
                    chosen.push(bytes);
                    continue;
                }
                // No usable table, several frames: a frame starts with the
                // codec's marker (RLE: one fragment per frame).
                let starts_frame = marker.is_none_or(|m| bytes.starts_with(m));
                if starts_frame {
                    frame_starts_seen += 1;
                    if frame_starts_seen > frame + 1 {
                        break;
                    }
                }
                if frame_starts_seen == frame + 1 {
                    chosen.push(bytes);
                }
            }
            LazyDataToken::SequenceEnd => break,
            _ => {}
        }
    }
    if chosen.is_empty() {
        return Err(RenderError::Invalid(format!("no fragment holds frame {} of {}", frame + 1, module.frames)));
    }
    Ok(FrameData::Compressed(if chosen.len() == 1 { chosen.pop().unwrap() } else { chosen.concat() }))
}
