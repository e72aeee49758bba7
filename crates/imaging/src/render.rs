//! One frame of one file, from disk to an 8-bit image.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use image::DynamicImage;

use crate::decode::{StoredFrame, decode_frame};
use crate::display::{DisplayTransform, to_image};
use crate::pixel_module::PixelModule;

/// Why an object could not be rendered. The message is what the study API
/// shows as `undecodable: <reason>`.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("not an image: the object has no Pixel Data")]
    NoPixelData,
    #[error("frame {} requested but the object has {frames}", frame + 1)]
    NoSuchFrame { frame: u32, frames: u32 },
    #[error("invalid image attributes: {0}")]
    Invalid(String),
    #[error("pixel data cannot be decoded: {0}")]
    Decode(String),
}

/// A rendered frame, 8 bits per sample (grey or RGB).
#[derive(Debug)]
pub struct Rendered {
    pub image: DynamicImage,
    /// Frames in the object.
    pub frames: u32,
    /// Height of a pixel over its width, for resizing without distortion.
    pub pixel_aspect: f64,
}

/// Opens a Part 10 file, with or without its 128-byte preamble, or a bare
/// dataset as older modalities and media exports write them (what the
/// `thumbnails` command meets on an operator's disk; the archive itself
/// always stores Part 10).
pub fn open(path: &Path) -> Result<DefaultDicomObject, RenderError> {
    let unreadable = |reason: String| RenderError::Open { path: path.display().to_string(), reason };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    crate::decode::lazy::check_readable(file, crate::decode::lazy::Extent::Whole).map_err(unreadable)?;
    OpenFileOptions::new().read_preamble(ReadPreamble::Auto).open_file(path).or_else(|part10| {
        open_bare_dataset(path).ok_or_else(|| RenderError::Open { path: path.display().to_string(), reason: part10.to_string() })
    })
}

/// A dataset without a file meta group: the transfer syntax is told by its
/// first element (explicit VR has two letters after the tag; a big-endian
/// group number has its zero byte first).
fn open_bare_dataset(path: &Path) -> Option<DefaultDicomObject> {
    let bytes = std::fs::read(path).ok()?;
    // A Part 10 file that did not open is broken, not bare: read as a
    // dataset, its preamble and meta group are garbage with garbage lengths
    // (one asked for 3.2 GB, found by fuzzing).
    if bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM") {
        return None;
    }
    let head = bytes.get(..8)?;
    let explicit = head[4..6].iter().all(u8::is_ascii_uppercase);
    let big_endian = head[0] == 0 && head[1] != 0;
    let uid = match (explicit, big_endian) {
        (true, true) => "1.2.840.10008.1.2.2",
        (true, false) => "1.2.840.10008.1.2.1",
        (false, _) => "1.2.840.10008.1.2",
    };
    let ts = TransferSyntaxRegistry.get(uid)?;
    let dataset = InMemDicomObject::read_dataset_with_ts(&bytes[..], ts).ok()?;
    let uid_of = |tag| dataset.get(tag).and_then(|e| e.to_str().ok()).map(|s| s.trim_end_matches('\0').to_string());
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(uid_of(tags::SOP_CLASS_UID).unwrap_or_default())
        .media_storage_sop_instance_uid(uid_of(tags::SOP_INSTANCE_UID).unwrap_or_default())
        .transfer_syntax(uid)
        .build()
        .ok()?;
    Some(dataset.with_exact_meta(meta))
}

/// The Image Pixel module and the stored values of frame `frame`.
pub fn decode_file(path: &Path, frame: u32) -> Result<(PixelModule, StoredFrame), RenderError> {
    let (_, module, stored) = load_frame(path, frame)?;
    Ok((module, stored))
}

/// Like [`decode_file`], but reading the whole object into memory first:
/// the path for files the frame reader cannot walk, kept public so tests
/// can check that both paths agree.
pub fn decode_file_whole(path: &Path, frame: u32) -> Result<(PixelModule, StoredFrame), RenderError> {
    let (_, module, stored) = load_whole(path, frame)?;
    Ok((module, stored))
}

fn load_whole(path: &Path, frame: u32) -> Result<(DefaultDicomObject, PixelModule, StoredFrame), RenderError> {
    let object = open(path)?;
    let module = read_module(&object)?;
    let stored = decode_frame(&object, &module, frame)?;
    Ok((object, module, stored))
}

/// The largest file read into memory whole (deflated, bare or damaged files).
const WHOLE_READ_LIMIT: u64 = 256 << 20;

/// The attributes, the Image Pixel module and frame `frame`'s stored values.
/// Only that frame's bytes are read where the file allows it (a 2 GB cine
/// loop costs one frame of memory); otherwise the object is read whole.
fn load_frame(path: &Path, frame: u32) -> Result<(DefaultDicomObject, PixelModule, StoredFrame), RenderError> {
    let too_large_to_read_whole = || std::fs::metadata(path).map_or(0, |m| m.len()) > WHOLE_READ_LIMIT;
    let attributes = crate::decode::lazy::open_attributes(path);
    // Without the Image Pixel attributes the object is most likely not an
    // image (SR, PDF): the whole read below says which.
    let module = attributes.as_ref().and_then(|a| PixelModule::read(a, &a.meta().transfer_syntax).ok());
    if let (Some(attributes), Some(module)) = (attributes, module) {
        if frame >= module.frames {
            return Err(RenderError::NoSuchFrame { frame, frames: module.frames });
        }
        match crate::decode::lazy::read_frame(path, &module, frame) {
            Some(Ok(data)) => {
                let stored = crate::decode::decode_frame_data(&data, &module)?;
                return Ok((attributes, module, stored));
            }
            // A damaged file may still give up a frame when read whole,
            // which is affordable below the size limit.
            Some(Err(e)) if too_large_to_read_whole() => return Err(e),
            _ => {}
        }
    } else if too_large_to_read_whole() {
        return Err(RenderError::Open {
            path: path.display().to_string(),
            reason: "no readable image attributes, and too large to read whole".into(),
        });
    }
    load_whole(path, frame)
}

/// Decodes frame `frame` (0-based) of the Part 10 file at `path` and renders
/// it through its Modality LUT, VOI LUT and colour space to 8 bits.
pub fn render_file(path: &Path, frame: u32) -> Result<Rendered, RenderError> {
    let (object, module, stored) = load_frame(path, frame)?;
    let transform = DisplayTransform::read(&object, &module, frame)?;
    let image = to_image(&stored, &transform)?;
    Ok(Rendered { image, frames: module.frames, pixel_aspect: module.pixel_aspect })
}

fn read_module(object: &DefaultDicomObject) -> Result<PixelModule, RenderError> {
    if object.get(tags::PIXEL_DATA).is_none() {
        return Err(RenderError::NoPixelData);
    }
    PixelModule::read(object, &object.meta().transfer_syntax)
}

#[cfg(test)]
mod misleading_lengths {
    /// A JPEG file whose (0008,2112) is SS with 81 bytes: read whole by
    /// dicom-parser, it fell out of step and reserved 1.3 GB (fuzzing).
    #[test]
    fn a_value_that_is_not_whole_units_is_refused_with_its_element() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/pixels/odd-length-ss-1.3GB");
        let error = super::render_file(&path, 0).expect_err("refused").to_string();
        assert!(error.contains("(0008,2112) SS is 81 bytes long, not a whole number of 2-byte values"), "{error}");
    }
}
