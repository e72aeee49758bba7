//! Telediag's imaging: from a stored DICOM object to pixels a reader can look at.
//!
//! A tour, in the order a frame travels:
//!
//! - [`pixel_module`]: the Image Pixel attributes (size, bits, sign,
//!   photometric interpretation, frames, pixel aspect), checked once.
//! - [`decode`]: one frame's stored values, by the decoder that suits the
//!   transfer syntax (ours for uncompressed and RLE, libjpeg-turbo for every
//!   JPEG precision, CharLS for JPEG-LS, openjp2 for JPEG 2000).
//! - [`display`]: Modality LUT, VOI LUT (windows with their functions, LUT
//!   sequences, or a percentile window), MONOCHROME1 inversion, palette and
//!   YBR colour, to 8 bits.
//! - [`render`]: the above for a file on disk; [`source`]: for an object
//!   read through any reader (the archive's store), with frames also as
//!   stored (for DICOMweb) and a window given by the request.
//! - [`thumbnail`]: resizes to fit a square, honouring the pixel aspect,
//!   and encodes JPEG (quality 90) or PNG.
//! - [`batch`]: many files on a rayon pool of its own (apart from tokio).
//!
//! What it does not do: know where objects are stored, speak DIMSE or HTTP.
//! It takes a path or a reader and returns pixels.

pub mod batch;
pub mod decode;
pub mod display;
pub mod pixel_module;
pub mod render;
pub mod source;
pub mod thumbnail;
mod turbo;

pub use batch::{BatchOptions, Derived, ImagingPool, Priority, derive_file, derive_object, thumbnail_files};
pub use decode::{Samples, StoredFrame};
pub use pixel_module::PixelModule;
pub use render::{RenderError, Rendered, decode_file, render_file};
pub use source::{FrameBytes, ObjectFrames, Window};
pub use thumbnail::{Thumbnail, ThumbnailFormat, make_thumbnail};
