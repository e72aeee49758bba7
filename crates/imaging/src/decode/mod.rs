//! From Pixel Data to stored sample values, one frame at a time.
//!
//! Each transfer syntax goes to the codec that decodes it best:
//!
//! | Pixel data                                   | Decoder                         |
//! |----------------------------------------------|---------------------------------|
//! | uncompressed (LE, BE, deflated)              | [`native`], ours                |
//! | RLE Lossless                                 | [`rle`], ours (8, 16, 32 bit)   |
//! | JPEG baseline, extended (12-bit), lossless   | [`jpeg`]: libjpeg-turbo 3       |
//! | JPEG-LS lossless and near-lossless           | [`jpegls`]: CharLS              |
//! | JPEG 2000, HTJ2K                             | [`jpeg2000`]: openjp2           |
//!
//! The result is a [`StoredFrame`]: interleaved samples masked to Bits
//! Stored and sign-extended, i.e. the values the Modality LUT applies to.
//! That is what the GDCM oracle test compares, bit for bit.
//!
//! Samples are held in the narrowest integer that holds them ([`Samples`]):
//! the passes that follow (histogram, lookup) are memory-bound, and a
//! 3.6-megapixel radiograph is 7 MB of `u16` where it was 29 MB of `i64`.

mod fragments;
mod jpeg;
mod jpeg2000;
mod jpegls;
pub(crate) mod lazy;
mod native;
mod rle;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use crate::RenderError;
use crate::pixel_module::PixelModule;
use lazy::FrameData;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFrame {
    pub rows: u32,
    pub columns: u32,
    /// 1 or 3, interleaved (R G B R G B ...).
    pub samples_per_pixel: u16,
    /// The colour space of `samples`: as stored, except that YBR_FULL_422 is
    /// expanded to YBR_FULL and codecs that convert colour (JPEG, JPEG 2000)
    /// report `RGB`.
    pub photometric: String,
    /// Significant bits of each sample.
    pub bits_stored: u16,
    pub signed: bool,
    pub samples: Samples,
}

/// A frame's stored values, interleaved, in the narrowest type that holds
/// every value Bits Stored and Pixel Representation allow.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// Unsigned, up to 16 bits stored: most CR, DX, MR, US and all 8-bit data.
    U16(Vec<u16>),
    /// Signed, up to 16 bits stored: most CT.
    I16(Vec<i16>),
    /// 17 to 31 bits, or signed 32.
    I32(Vec<i32>),
    /// Unsigned with 32 bits stored.
    I64(Vec<i64>),
}

/// Runs `$body` with `$v` bound to the vector of whichever variant
/// `$samples` is, rebuilding that variant when `$wrap` is given.
macro_rules! each_width {
    ($samples:expr, $v:ident => $body:expr) => {
        match $samples {
            Samples::U16($v) => $body,
            Samples::I16($v) => $body,
            Samples::I32($v) => $body,
            Samples::I64($v) => $body,
        }
    };
    ($samples:expr, $v:ident => wrap $body:expr) => {
        match $samples {
            Samples::U16($v) => Samples::U16($body),
            Samples::I16($v) => Samples::I16($body),
            Samples::I32($v) => Samples::I32($body),
            Samples::I64($v) => Samples::I64($body),
        }
    };
}
pub(crate) use each_width;

impl Samples {
    /// Samples from raw words whose significant bits start at bit `shift`
    /// (0 for codec output, which is low-aligned): keeps `bits` bits of
    /// each, sign-extended when `signed`, in one pass.
    pub(crate) fn from_raw<I>(raw: I, shift: u16, bits: u16, signed: bool) -> Samples
    where
        I: Iterator<Item = u32>,
    {
        let bits = u32::from(bits.clamp(1, 32));
        let mask = ((1u64 << bits) - 1) as u32;
        let unused = 32 - bits;
        let value = move |word: u32| (word >> shift) & mask;
        let extended = move |word: u32| ((value(word) << unused) as i32) >> unused;
        match (bits, signed) {
            (..=16, false) => Samples::U16(raw.map(|w| value(w) as u16).collect()),
            (..=16, true) => Samples::I16(raw.map(|w| extended(w) as i16).collect()),
            (..=31, false) => Samples::I32(raw.map(|w| value(w) as i32).collect()),
            (_, true) => Samples::I32(raw.map(extended).collect()),
            (_, false) => Samples::I64(raw.map(|w| i64::from(value(w))).collect()),
        }
    }

    /// Samples in the frame (pixels × samples per pixel).
    pub fn len(&self) -> usize {
        each_width!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index`.
    #[allow(clippy::useless_conversion, reason = "i64::from is the identity for the I64 variant only")]
    pub fn get(&self, index: usize) -> i64 {
        each_width!(self, v => i64::from(v[index]))
    }

    /// All samples as `i64`: for comparisons with other decoders.
    #[allow(clippy::useless_conversion, reason = "i64::from is the identity for the I64 variant only")]
    pub fn to_i64_vec(&self) -> Vec<i64> {
        each_width!(self, v => v.iter().map(|&s| i64::from(s)).collect())
    }
}

/// Decodes frame `frame` (0-based) of an object held in memory whole.
pub fn decode_frame(object: &DefaultDicomObject, module: &PixelModule, frame: u32) -> Result<StoredFrame, RenderError> {
    if frame >= module.frames {
        return Err(RenderError::NoSuchFrame { frame, frames: module.frames });
    }
    let dataset: &InMemDicomObject = object;
    let pixel_data = dataset.element(tags::PIXEL_DATA).map_err(|_| RenderError::NoPixelData)?;
    let data = if module.is_native() {
        FrameData::Native(native::frame_from_value(pixel_data.value(), module, frame)?)
    } else {
        let codec = codec_of(module)?;
        FrameData::Compressed(fragments::frame_bytes(dataset, pixel_data.value(), module, frame, codec)?.into_owned())
    };
    decode_frame_data(&data, module)
}

/// Decodes one frame's bytes, however they were read.
pub(crate) fn decode_frame_data(data: &FrameData, module: &PixelModule) -> Result<StoredFrame, RenderError> {
    match data {
        FrameData::Native(frame) => native::decode(frame, module),
        FrameData::Compressed(bytes) => match codec_of(module)? {
            Codec::Rle => rle::decode(bytes, module),
            Codec::Jpeg => jpeg::decode(bytes, module),
            Codec::JpegLs => jpegls::decode(bytes, module),
            Codec::Jpeg2000 => jpeg2000::decode(bytes, module),
        },
    }
}

fn codec_of(module: &PixelModule) -> Result<Codec, RenderError> {
    Codec::of(&module.transfer_syntax).ok_or_else(|| {
        RenderError::Decode(format!("transfer syntax {} is not an image compression Telediag decodes", module.transfer_syntax))
    })
}

/// Which decoder a transfer syntax goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Rle,
    Jpeg,
    JpegLs,
    Jpeg2000,
}

impl Codec {
    /// The marker a frame's compressed stream opens with, by which frames
    /// are told apart when no offset table does it (RLE has none: one
    /// fragment per frame).
    pub(crate) fn frame_start_marker(self) -> Option<&'static [u8]> {
        match self {
            Codec::Jpeg | Codec::JpegLs => Some(&[0xFF, 0xD8]), // Start Of Image
            Codec::Jpeg2000 => Some(&[0xFF, 0x4F]),             // Start Of Codestream
            Codec::Rle => None,
        }
    }

    pub(crate) fn of(transfer_syntax: &str) -> Option<Codec> {
        Some(match transfer_syntax {
            "1.2.840.10008.1.2.5" => Codec::Rle,
            // Baseline, extended (processes 2 and 4), lossless (14, 14 SV1).
            "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => Codec::Jpeg,
            "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Codec::JpegLs,
            // JPEG 2000 lossless and lossy, HTJ2K lossless, RPCL and lossy.
            "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203" => Codec::Jpeg2000,
            _ => return None,
        })
    }
}

impl StoredFrame {
    /// A frame of `module`'s size from raw samples whose significant bits
    /// start at bit `shift` (0 for codec output, which is low-aligned):
    /// see [`Samples::from_raw`].
    pub(crate) fn new(
        module: &PixelModule,
        samples_per_pixel: u16,
        photometric: String,
        raw: impl Iterator<Item = u32>,
        shift: u16,
    ) -> StoredFrame {
        let samples = Samples::from_raw(raw, shift, module.bits_stored, module.signed);
        StoredFrame {
            rows: module.rows,
            columns: module.columns,
            samples_per_pixel,
            photometric,
            bits_stored: module.bits_stored,
            signed: module.signed,
            samples,
        }
    }
}
