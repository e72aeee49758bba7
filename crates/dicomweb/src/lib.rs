//! DICOMweb (PS3.18) for Telediag: what QIDO-RS, WADO-RS and STOW-RS mean,
//! apart from HTTP plumbing (which is the worklist's `dicomweb` routes).
//!
//! - [`qido`]: a search's query parameters read into an index search
//!   (keywords or tags, wildcards, UID lists, date and time ranges,
//!   `includefield`), and the rows found written as DICOM JSON with each
//!   level's default attributes.
//! - [`metadata`]: a stored object's attributes as DICOM JSON, read with
//!   bounded memory, large values as bulk data URIs.
//! - [`json`]: the DICOM JSON writer both use (PS3.18 Annex F).
//! - [`media`]: `Accept` parsing and transfer-syntax negotiation: instances
//!   as stored, frames as stored or decoded to explicit VR little endian,
//!   rendered images as JPEG or PNG.
//! - [`multipart`]: `multipart/related` framing of responses.
//! - [`stow`]: posted instances streamed into the archive like C-STOREs,
//!   and the Store Instances Response.
//!
//! What it does not do: authenticate, scope by site or audit (the worklist
//! does, as for every route), or read pixels (the imaging crate does).

pub mod json;
pub mod media;
pub mod metadata;
pub mod multipart;
pub mod qido;
pub mod stow;
