//! DIMSE status codes (PS3.4 Annex B.2.3, PS3.7 Annex C) the gateway
//! answers with, and how an ingest failure reads as one. The archive says
//! why an object was not stored; what that means on the wire is the
//! gateway's to say.

use telediag_archive::IngestError;

pub const SUCCESS: u16 = 0x0000;
/// PS3.7 C.5.x "Refused: Not Authorized".
pub const NOT_AUTHORIZED: u16 = 0x0124;
pub const OUT_OF_RESOURCES: u16 = 0xA700;
pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

/// The C-STORE-RSP status for an object the archive refused.
pub fn for_ingest(error: &IngestError) -> u16 {
    match error {
        IngestError::Mismatch { .. } => DATASET_DOES_NOT_MATCH_SOP_CLASS,
        IngestError::OutOfResources(_) => OUT_OF_RESOURCES,
        IngestError::UidHeldElsewhere(_) => NOT_AUTHORIZED,
        _ => CANNOT_UNDERSTAND,
    }
}
