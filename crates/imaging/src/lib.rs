//! Telediag's imaging: from a stored DICOM object to pixels a reader can look at.
//!
//! A tour:
//!
//! - [`render`]: decodes one frame with dicom-pixeldata (uncompressed, RLE,
//!   JPEG baseline/extended/lossless, JPEG 2000; more transfer syntaxes and
//!   the corrections the imaging issue lists are still to come) and applies
//!   the Modality LUT and the object's first VOI window, or, when it has
//!   none, a percentile window computed from the values (signed data
//!   included), giving an 8-bit image.
//! - [`thumbnail`]: resizes a rendered frame to fit a square, keeping the
//!   aspect ratio, and encodes JPEG (quality 90) or PNG.
//! - [`batch`]: many files on a rayon pool of its own (apart from tokio),
//!   reporting each result as it completes.
//!
//! What it does not do: know where objects are stored, speak DIMSE or HTTP.
//! It takes a path or bytes and returns pixels.

pub mod batch;
pub mod render;
pub mod thumbnail;

pub use batch::{BatchOptions, Derived, ImagingPool, derive_file, thumbnail_files};
pub use render::{RenderError, Rendered, render_file};
pub use thumbnail::{Thumbnail, ThumbnailFormat, make_thumbnail};
