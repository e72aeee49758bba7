//! Telediag's report documents: what a signed report *is*, outside the
//! workflow that produces it.
//!
//! - [`form`]: the report form as a PDF/A page set in an embedded subset
//!   CJK font, with a QR code to the verification page.
//! - [`sign`]: PAdES signatures (CMS SignedData, SHA-256) added as
//!   incremental revisions, one per signing doctor.
//! - [`identity`]: the centre's CA, doctors' keys and certificates, PKCS#12 import.
//! - [`sealed`]: a doctor's private key encrypted under their signing PIN.
//! - [`dicom`]: the final report as DICOM for the study: a Basic Text SR
//!   (TID 2000) and an Encapsulated PDF.
//! - [`tsa`]: RFC 3161 timestamps for signatures (the centre's own TSA,
//!   or any [`tsa::Timestamper`]); with [`sign::add_validation_data`] and
//!   [`CentreCa::crl`], PAdES B-T and B-LT.
//! - [`time`]: instants shown in the centre's UTC offset.
//!
//! What it does not do: it knows nothing of HTTP, read requests, users or
//! storage. The worklist decides *when* to render and sign and where the
//! bytes go; this crate decides what the bytes are.

pub mod dicom;
pub mod form;
pub mod identity;
pub mod sealed;
pub mod sign;
pub mod time;
pub mod tsa;

pub use form::{PrintedSigner, ReportFont, ReportForm, verification_qr_svg};
pub use identity::{CentreCa, SigningIdentity};
pub use sign::{SignatureRequest, add_validation_data, sign_pdf};
pub use time::Timestamp;
pub use tsa::{TimestampAuthority, Timestamper};
