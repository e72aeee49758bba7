//! Frames of an object read through a reader rather than a path: what the
//! DICOMweb service uses, reading objects through the archive's store
//! (local files today, object storage later) without knowing where they are.
//!
//! [`ObjectFrames`] reads the attributes once (up to Pixel Data), then
//! gives frames as stored ([`FrameBytes`]: a compressed frame's fragments
//! joined, a native frame in little endian), decoded ([`StoredFrame`]), or
//! rendered through the display pipeline the thumbnails use, with an
//! optional window from the request.

use std::io::{Read, Seek, SeekFrom};

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::decode::lazy::{self, FrameData};
use crate::decode::{Samples, StoredFrame, decode_frame, decode_frame_data, each_width};
use crate::display::{DisplayTransform, Voi, VoiFunction, to_image};
use crate::pixel_module::PixelModule;
use crate::render::{RenderError, Rendered};

/// One frame as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameBytes {
    /// Uncompressed: the frame's bytes in little endian, starting at a byte
    /// boundary (explicit VR little endian's pixel bytes).
    Native(Vec<u8>),
    /// The frame's compressed bitstream (its fragments joined).
    Compressed(Vec<u8>),
}

impl FrameBytes {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            FrameBytes::Native(b) | FrameBytes::Compressed(b) => b,
        }
    }
}

/// A window asked for by a client (`window=center,width,function`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
}

/// The largest object read into memory whole, when its frames cannot be
/// reached lazily (deflated objects).
const WHOLE_READ_LIMIT: u64 = 256 << 20;

/// An image object opened for its frames.
pub struct ObjectFrames<R> {
    reader: R,
    attributes: DefaultDicomObject,
    module: PixelModule,
    /// The object read whole, once needed (deflated objects).
    whole: Option<DefaultDicomObject>,
}

impl<R: Read + Seek> ObjectFrames<R> {
    /// Reads the attributes of the Part 10 object in `reader`; an object
    /// without pixel data (SR, PDF) is [`RenderError::NoPixelData`].
    pub fn open(mut reader: R) -> Result<ObjectFrames<R>, RenderError> {
        let unreadable = |e: &dyn std::fmt::Display| RenderError::Open { path: "stored object".into(), reason: e.to_string() };
        lazy::check_readable(&mut reader, lazy::Extent::UpToPixelData).map_err(|e| unreadable(&e))?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| unreadable(&e))?;
        let attributes = OpenFileOptions::new()
            .read_preamble(ReadPreamble::Auto)
            .read_until(tags::PIXEL_DATA)
            .from_reader(&mut reader)
            .map_err(|e| unreadable(&e))?;
        let module = PixelModule::read(&attributes, &attributes.meta().transfer_syntax.clone()).map_err(|e| match e {
            RenderError::Invalid(_) if attributes.get(tags::ROWS).is_none() => RenderError::NoPixelData,
            e => e,
        })?;
        Ok(ObjectFrames { reader, attributes, module, whole: None })
    }

    pub fn module(&self) -> &PixelModule {
        &self.module
    }

    /// The attributes before Pixel Data.
    pub fn attributes(&self) -> &DefaultDicomObject {
        &self.attributes
    }

    fn check(&self, frame: u32) -> Result<(), RenderError> {
        if frame >= self.module.frames {
            return Err(RenderError::NoSuchFrame { frame, frames: self.module.frames });
        }
        Ok(())
    }

    fn read_lazily(&mut self, frame: u32) -> Option<Result<FrameData, RenderError>> {
        self.reader.seek(SeekFrom::Start(0)).ok()?;
        lazy::read_frame_from(&mut self.reader, &self.module, frame)
    }

    fn whole(&mut self) -> Result<&DefaultDicomObject, RenderError> {
        if self.whole.is_none() {
            let size = self.reader.seek(SeekFrom::End(0)).unwrap_or(u64::MAX);
            if size > WHOLE_READ_LIMIT {
                return Err(RenderError::Decode(format!(
                    "the object's frames cannot be read one by one and it is too large ({size} bytes) to read whole"
                )));
            }
            lazy::check_readable(&mut self.reader, lazy::Extent::Whole)
                .map_err(|reason| RenderError::Open { path: "stored object".into(), reason })?;
            self.reader.seek(SeekFrom::Start(0)).map_err(|e| RenderError::Decode(e.to_string()))?;
            let object = OpenFileOptions::new()
                .read_preamble(ReadPreamble::Auto)
                .from_reader(&mut self.reader)
                .map_err(|e| RenderError::Open { path: "stored object".into(), reason: e.to_string() })?;
            self.whole = Some(object);
        }
        Ok(self.whole.as_ref().expect("just set"))
    }

    /// Frame `frame` (0-based) as stored.
    pub fn frame_bytes(&mut self, frame: u32) -> Result<FrameBytes, RenderError> {
        self.check(frame)?;
        match self.read_lazily(frame) {
            Some(Ok(FrameData::Compressed(bytes))) => Ok(FrameBytes::Compressed(bytes)),
            Some(Ok(FrameData::Native(native))) => Ok(FrameBytes::Native(byte_aligned(native.bytes, native.first_bit, &self.module))),
            Some(Err(e)) => Err(e),
            None if self.module.is_native() => {
                // Deflated: the stored values are the frame's bytes (in the
                // width Bits Allocated gives).
                let module = self.module.clone();
                let stored = decode_frame(self.whole()?, &module, frame)?;
                Ok(FrameBytes::Native(little_endian(&stored, module.bits_allocated)))
            }
            None => Err(RenderError::Decode("the compressed frames of this object cannot be located".into())),
        }
    }

    /// Frame `frame`'s stored values.
    pub fn decode(&mut self, frame: u32) -> Result<StoredFrame, RenderError> {
        self.check(frame)?;
        match self.read_lazily(frame) {
            Some(Ok(data)) => decode_frame_data(&data, &self.module),
            Some(Err(e)) => Err(e),
            None => {
                let module = self.module.clone();
                decode_frame(self.whole()?, &module, frame)
            }
        }
    }

    /// Frame `frame` through the display pipeline; `window` replaces the
    /// object's own VOI (grayscale images only).
    pub fn render(&mut self, frame: u32, window: Option<Window>) -> Result<Rendered, RenderError> {
        let stored = self.decode(frame)?;
        let mut transform = DisplayTransform::read(&self.attributes, &self.module, frame)?;
        if let Some(w) = window {
            transform.voi = Voi::Window { center: w.center, width: w.width, function: w.function };
        }
        let image = to_image(&stored, &transform)?;
        Ok(Rendered { image, frames: self.module.frames, pixel_aspect: self.module.pixel_aspect })
    }
}

/// A native frame's bytes moved to start at a byte boundary (1-bit frames
/// may start mid-byte) and cut to the frame's length (big-endian words are
/// read whole, so an odd-sized frame comes with the byte after it).
fn byte_aligned(mut bytes: Vec<u8>, first_bit: u64, module: &PixelModule) -> Vec<u8> {
    let length = (module.samples_per_frame() * u64::from(module.bits_allocated)).div_ceil(8) as usize;
    if first_bit == 0 {
        bytes.truncate(length);
        return bytes;
    }
    let shift = first_bit as u32;
    (0..length)
        .map(|i| {
            let low = bytes.get(i).copied().unwrap_or(0) >> shift;
            let high = bytes.get(i + 1).copied().unwrap_or(0).checked_shl(8 - shift).unwrap_or(0);
            low | high
        })
        .collect()
}

/// Stored values written as explicit VR little endian pixel bytes of
/// `bits_allocated` each (1-bit values packed, least significant bit first).
// `i64::from` is the identity for the 64-bit variant of the macro.
#[allow(clippy::useless_conversion)]
pub fn little_endian(frame: &StoredFrame, bits_allocated: u16) -> Vec<u8> {
    let samples = &frame.samples;
    match bits_allocated {
        1 => {
            let mut out = vec![0u8; samples.len().div_ceil(8)];
            for i in 0..samples.len() {
                if samples.get(i) & 1 == 1 {
                    out[i / 8] |= 1 << (i % 8);
                }
            }
            out
        }
        8 => each_width!(samples, v => v.iter().map(|&s| i64::from(s) as u8).collect()),
        16 => each_width!(samples, v => v.iter().flat_map(|&s| (i64::from(s) as u16).to_le_bytes()).collect()),
        _ => each_width!(samples, v => v.iter().flat_map(|&s| (i64::from(s) as u32).to_le_bytes()).collect()),
    }
}
