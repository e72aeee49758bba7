//! DIMSE command sets (PS3.7 §9, §E): the small group-0000 datasets that say
//! what each message is.
//!
//! Command sets are always Implicit VR Little Endian with defined lengths, so
//! they are read and written here directly rather than through a general
//! DICOM object. Reading is bounded and checked: a command set comes from an
//! untrusted peer.

use std::collections::BTreeMap;

/// Command Field values (PS3.7 §E.1).
pub mod command {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
}

/// Command Data Set Type value meaning "no dataset follows".
pub const NO_DATASET: u16 = 0x0101;

const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
const COMMAND_FIELD: u16 = 0x0100;
const MESSAGE_ID: u16 = 0x0110;
const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
const STATUS: u16 = 0x0900;
const ERROR_COMMENT: u16 = 0x0902;
const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;

/// Why a command set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command set is cut off at byte {offset}: element (0000,{element:04X}) needs {needed} bytes")]
    Truncated { offset: usize, element: u16, needed: usize },
    #[error("command set holds element ({group:04X},{element:04X}); only group 0000 belongs there")]
    WrongGroup { group: u16, element: u16 },
    #[error("command set lacks {0}")]
    Missing(&'static str),
}

/// A received command set, element by element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandSet {
    elements: BTreeMap<u16, Vec<u8>>,
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).trim_start().to_owned()
}

impl CommandSet {
    /// Reads an Implicit VR Little Endian command set.
    pub fn parse(bytes: &[u8]) -> Result<CommandSet, CommandError> {
        let mut elements = BTreeMap::new();
        let mut offset = 0;
        while offset < bytes.len() {
            if bytes.len() - offset < 8 {
                return Err(CommandError::Truncated { offset, element: 0, needed: 8 });
            }
            let group = u16::from_le_bytes([bytes[offset], bytes[offset + 1]]);
            let element = u16::from_le_bytes([bytes[offset + 2], bytes[offset + 3]]);
            let len = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().expect("4 bytes")) as usize;
            if group != 0x0000 {
                return Err(CommandError::WrongGroup { group, element });
            }
            let start = offset + 8;
            if bytes.len() - start < len {
                return Err(CommandError::Truncated { offset, element, needed: len });
            }
            elements.insert(element, bytes[start..start + len].to_vec());
            offset = start + len;
        }
        Ok(CommandSet { elements })
    }

    fn u16_of(&self, element: u16) -> Option<u16> {
        let v = self.elements.get(&element)?;
        Some(u16::from_le_bytes([*v.first()?, *v.get(1)?]))
    }

    pub fn command_field(&self) -> Result<u16, CommandError> {
        self.u16_of(COMMAND_FIELD).ok_or(CommandError::Missing("Command Field (0000,0100)"))
    }

    pub fn message_id(&self) -> Result<u16, CommandError> {
        self.u16_of(MESSAGE_ID).ok_or(CommandError::Missing("Message ID (0000,0110)"))
    }

    /// Whether a dataset follows this command.
    pub fn has_dataset(&self) -> bool {
        self.u16_of(COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATASET)
    }

    /// Status (0000,0900), in responses.
    pub fn status(&self) -> Option<u16> {
        self.u16_of(STATUS)
    }

    pub fn affected_sop_class_uid(&self) -> Option<String> {
        self.elements.get(&AFFECTED_SOP_CLASS_UID).map(|v| text(v))
    }

    pub fn affected_sop_instance_uid(&self) -> Option<String> {
        self.elements.get(&AFFECTED_SOP_INSTANCE_UID).map(|v| text(v))
    }
}

fn put(out: &mut Vec<u8>, element: u16, value: &[u8], pad: u8) {
    let len = value.len() + value.len() % 2;
    out.extend(0x0000u16.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend((len as u32).to_le_bytes());
    out.extend(value);
    if value.len() % 2 == 1 {
        out.push(pad);
    }
}

/// An Error Comment is LO: at most 64 characters (PS3.7 §C.4). Longer
/// explanations go to the log; the sender gets the first 64.
fn error_comment(comment: &str) -> String {
    let clean: String = comment.chars().map(|c| if c.is_control() || c == '\\' { ' ' } else { c }).collect();
    let mut out = String::new();
    for c in clean.chars() {
        if out.len() + c.len_utf8() > 64 {
            break;
        }
        out.push(c);
    }
    out
}

/// Prefixes a command set body with its group length (0000,0000).
fn with_group_length(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    put(&mut out, 0x0000, &(body.len() as u32).to_le_bytes(), 0);
    out.extend(body);
    out
}

/// Encodes a C-ECHO-RQ.
pub fn echo_request(message_id: u16) -> Vec<u8> {
    let mut body = Vec::with_capacity(96);
    put(&mut body, AFFECTED_SOP_CLASS_UID, telediag_archive::sop_classes::VERIFICATION.as_bytes(), 0);
    put(&mut body, COMMAND_FIELD, &command::C_ECHO_RQ.to_le_bytes(), 0);
    put(&mut body, MESSAGE_ID, &message_id.to_le_bytes(), 0);
    put(&mut body, COMMAND_DATA_SET_TYPE, &NO_DATASET.to_le_bytes(), 0);
    with_group_length(body)
}

/// Encodes a C-STORE-RQ (medium priority; a dataset follows).
pub fn store_request(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    const PRIORITY: u16 = 0x0700;
    let mut body = Vec::with_capacity(192);
    put(&mut body, AFFECTED_SOP_CLASS_UID, sop_class_uid.as_bytes(), 0);
    put(&mut body, COMMAND_FIELD, &command::C_STORE_RQ.to_le_bytes(), 0);
    put(&mut body, MESSAGE_ID, &message_id.to_le_bytes(), 0);
    put(&mut body, PRIORITY, &0u16.to_le_bytes(), 0);
    put(&mut body, COMMAND_DATA_SET_TYPE, &0u16.to_le_bytes(), 0);
    put(&mut body, AFFECTED_SOP_INSTANCE_UID, sop_instance_uid.as_bytes(), 0);
    with_group_length(body)
}

/// Encodes a response command set (no dataset follows).
pub fn response(
    command_field: u16,
    message_id_being_responded_to: u16,
    sop_class_uid: &str,
    sop_instance_uid: Option<&str>,
    status: u16,
    comment: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(192);
    put(&mut body, AFFECTED_SOP_CLASS_UID, sop_class_uid.as_bytes(), 0);
    put(&mut body, COMMAND_FIELD, &command_field.to_le_bytes(), 0);
    put(&mut body, MESSAGE_ID_BEING_RESPONDED_TO, &message_id_being_responded_to.to_le_bytes(), 0);
    put(&mut body, COMMAND_DATA_SET_TYPE, &NO_DATASET.to_le_bytes(), 0);
    put(&mut body, STATUS, &status.to_le_bytes(), 0);
    if let Some(comment) = comment {
        put(&mut body, ERROR_COMMENT, error_comment(comment).as_bytes(), b' ');
    }
    if let Some(uid) = sop_instance_uid {
        put(&mut body, AFFECTED_SOP_INSTANCE_UID, uid.as_bytes(), 0);
    }
    with_group_length(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_reads_back() {
        let bytes = response(command::C_STORE_RSP, 7, "1.2.840.10008.5.1.4.1.1.2", Some("1.2.3"), 0xA900, Some("x"));
        let parsed = CommandSet::parse(&bytes).unwrap();
        assert_eq!(parsed.command_field().unwrap(), command::C_STORE_RSP);
        assert_eq!(parsed.u16_of(MESSAGE_ID_BEING_RESPONDED_TO), Some(7));
        assert_eq!(parsed.u16_of(STATUS), Some(0xA900));
        assert_eq!(parsed.affected_sop_instance_uid().as_deref(), Some("1.2.3"));
        assert!(!parsed.has_dataset());
        let group_length = u32::from_le_bytes(parsed.elements[&0x0000][..4].try_into().unwrap());
        assert_eq!(group_length as usize, bytes.len() - 12);
    }

    #[test]
    fn requests_read_back() {
        let echo = CommandSet::parse(&echo_request(3)).unwrap();
        assert_eq!((echo.command_field().unwrap(), echo.message_id().unwrap()), (command::C_ECHO_RQ, 3));
        assert!(!echo.has_dataset());
        let store = CommandSet::parse(&store_request(9, "1.2.840.10008.5.1.4.1.1.2", "1.2.3")).unwrap();
        assert_eq!(store.command_field().unwrap(), command::C_STORE_RQ);
        assert!(store.has_dataset());
        assert_eq!(store.affected_sop_instance_uid().as_deref(), Some("1.2.3"));
    }

    #[test]
    fn error_comments_fit_lo() {
        let long = "dataset is truncated: element (7FE0,0010) at byte 1234 needs 524288 bytes, but only 10 remain";
        let bytes = response(command::C_STORE_RSP, 1, "1.2", None, 0xC000, Some(long));
        let parsed = CommandSet::parse(&bytes).unwrap();
        let comment = text(&parsed.elements[&ERROR_COMMENT]);
        assert!(comment.len() <= 64 && long.starts_with(&comment), "{comment:?}");
        assert_eq!(error_comment("中文说明\\x"), "中文说明 x");
    }

    #[test]
    fn every_single_byte_corruption_and_cut_is_answered_without_panic() {
        let valid = store_request(1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5");
        for at in 0..valid.len() {
            for value in 0..=255u8 {
                let mut bytes = valid.clone();
                bytes[at] = value;
                if let Ok(set) = CommandSet::parse(&bytes) {
                    let _ = (set.command_field(), set.message_id(), set.has_dataset(), set.affected_sop_instance_uid());
                }
            }
            let _ = CommandSet::parse(&valid[..at]);
        }
    }

    #[test]
    fn hostile_command_sets_are_refused() {
        assert!(matches!(CommandSet::parse(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f]), Err(CommandError::Truncated { .. })));
        assert!(matches!(CommandSet::parse(&[0, 0, 0]), Err(CommandError::Truncated { .. })));
        assert!(matches!(CommandSet::parse(&[8, 0, 0x18, 0, 0, 0, 0, 0]), Err(CommandError::WrongGroup { .. })));
        assert!(matches!(CommandSet::parse(&[]).unwrap().command_field(), Err(CommandError::Missing(_))));
    }
}
