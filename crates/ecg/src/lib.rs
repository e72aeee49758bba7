//! Telediag's ECG: from the file a cart sent to a measured, drawn 12-lead.
//!
//! A tour, in the order a recording travels:
//!
//! - [`read`]: DICOM waveform, HL7 aECG, SCP-ECG (Huffman, reference-beat
//!   subtraction, bimodal compression) and WFDB into one [`EcgRecord`] in
//!   microvolts, lead labels normalised, III/aVR/aVL/aVF derived when a cart
//!   stores 8 leads.
//!
//! What it does not know: HTTP, DIMSE, or where objects are stored. It takes
//! bytes or a path and returns records, measurements and drawings.

pub mod analysis;
pub mod delineate;
pub mod dicom_writer;
pub mod filter;
pub mod leads;
pub mod median;
pub mod qrs;
pub mod read;
pub mod record;
pub mod render;
pub mod scoring;
mod signal;

pub use analysis::{Analysis, AnalysisOptions, AnalysisSummary, analyse, analyse_with};
pub use read::{read_bytes, read_path};
pub use record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, MedianBeat, Patient, SourceFormat};
