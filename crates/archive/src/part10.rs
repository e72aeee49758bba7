//! DICOM Part 10 file framing: the 128-byte preamble, `DICM`, and the File Meta
//! Information group (PS3.10 §7.1).
//!
//! A C-STORE carries only the dataset; the archive writes the meta group in
//! front of it so that every stored original is a file any DICOM tool opens.
//! Imported files already have one: it is read here to find where their
//! dataset starts, and the file is kept as it is.

use std::io::{self, Read, Write};

/// What the meta group says about the dataset that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    /// The calling AE title of the association the object came on, if any.
    pub source_ae_title: Option<String>,
}

/// Our implementation class UID (a UUID-derived 2.25 root) and version name.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.207935834215372512436906541223094150914";
pub const IMPLEMENTATION_VERSION_NAME: &str = "TELEDIAG_01";

/// Why a file is not a Part 10 file we can read.
#[derive(Debug, thiserror::Error)]
pub enum Part10Error {
    #[error("not a DICOM Part 10 file: expected 'DICM' after a 128-byte preamble")]
    NoMagic,
    #[error("file meta information is malformed: {0}")]
    BadMeta(String),
    #[error("file meta information lacks {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn element(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], value: &[u8], pad: u8) {
    let padded_len = value.len() + value.len() % 2;
    out.extend(0x0002u16.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    if vr == b"OB" {
        out.extend([0, 0]);
        out.extend((padded_len as u32).to_le_bytes());
    } else {
        out.extend((padded_len as u16).to_le_bytes());
    }
    out.extend(value);
    if value.len() % 2 == 1 {
        out.push(pad);
    }
}

/// The preamble, magic and meta group for `meta`, ready to be followed by the
/// dataset bytes.
pub fn encode_header(meta: &FileMeta) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    element(&mut group, 0x0001, b"OB", &[0, 1], 0);
    element(&mut group, 0x0002, b"UI", meta.sop_class_uid.as_bytes(), 0);
    element(&mut group, 0x0003, b"UI", meta.sop_instance_uid.as_bytes(), 0);
    element(&mut group, 0x0010, b"UI", meta.transfer_syntax_uid.as_bytes(), 0);
    element(&mut group, 0x0012, b"UI", IMPLEMENTATION_CLASS_UID.as_bytes(), 0);
    element(&mut group, 0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.as_bytes(), b' ');
    if let Some(ae) = meta.source_ae_title.as_deref().filter(|ae| !ae.is_empty()) {
        element(&mut group, 0x0016, b"AE", ae.as_bytes(), b' ');
    }
    let mut out = Vec::with_capacity(128 + 4 + 12 + group.len());
    out.extend([0u8; 128]);
    out.extend(b"DICM");
    element(&mut out, 0x0000, b"UL", &(group.len() as u32).to_le_bytes(), 0);
    out.extend(group);
    out
}

/// Writes [`encode_header`] to `out`.
pub fn write_header<W: Write>(out: &mut W, meta: &FileMeta) -> io::Result<u64> {
    let header = encode_header(meta);
    out.write_all(&header)?;
    Ok(header.len() as u64)
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).trim_start().to_owned()
}

/// Reads the preamble and meta group of a Part 10 file. Returns the meta and
/// the byte offset where the dataset starts.
///
/// The meta group is read element by element up to the first tag outside
/// group 0002, so files whose group length is wrong (not rare) still open.
pub fn read_header<R: Read>(mut input: R) -> Result<(FileMeta, u64), Part10Error> {
    let mut preamble = [0u8; 132];
    input.read_exact(&mut preamble).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Part10Error::NoMagic,
        _ => Part10Error::Io(e),
    })?;
    if &preamble[128..132] != b"DICM" {
        return Err(Part10Error::NoMagic);
    }
    let mut offset = 132u64;
    let (mut class, mut instance, mut ts, mut source) = (None, None, None, None);
    // Meta elements are small; bound the group so a hostile file cannot make us read forever.
    const MAX_META: u64 = 64 * 1024;
    loop {
        let mut head = [0u8; 8];
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let group = u16::from_le_bytes([head[0], head[1]]);
        if group != 0x0002 {
            break;
        }
        let element_no = u16::from_le_bytes([head[2], head[3]]);
        let vr = [head[4], head[5]];
        // PS3.5 7.1.2: these VRs have a reserved word and a 32-bit length.
        const LONG: [&[u8; 2]; 13] = [b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"];
        const SHORT: [&[u8; 2]; 21] = [
            b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM",
            b"UI", b"UL", b"US",
        ];
        let (len, header_len) = if LONG.contains(&&vr) {
            let mut long = [0u8; 4];
            input.read_exact(&mut long)?;
            (u64::from(u32::from_le_bytes(long)), 12)
        } else if SHORT.contains(&&vr) {
            (u64::from(u16::from_le_bytes([head[6], head[7]])), 8)
        } else {
            // Parsers disagree on the length of an unknown VR (dicom-object
            // reads 32 bits where this reads 16): refused, not guessed.
            return Err(Part10Error::BadMeta(format!(
                "element (0002,{element_no:04X}) at byte {offset} has VR {:?}, which is not a DICOM VR",
                String::from_utf8_lossy(&vr)
            )));
        };
        if offset + header_len + len > 132 + MAX_META {
            return Err(Part10Error::BadMeta(format!("element (0002,{element_no:04X}) at byte {offset} declares {len} bytes")));
        }
        let mut value = vec![0u8; len as usize];
        input
            .read_exact(&mut value)
            .map_err(|_| Part10Error::BadMeta(format!("element (0002,{element_no:04X}) at byte {offset} is cut off")))?;
        match element_no {
            0x0002 => class = Some(text(&value)),
            0x0003 => instance = Some(text(&value)),
            0x0010 => ts = Some(text(&value)),
            0x0016 => source = Some(text(&value)),
            _ => {}
        }
        offset += header_len + len;
    }
    let meta = FileMeta {
        sop_class_uid: class.ok_or(Part10Error::Missing("Media Storage SOP Class UID (0002,0002)"))?,
        sop_instance_uid: instance.ok_or(Part10Error::Missing("Media Storage SOP Instance UID (0002,0003)"))?,
        transfer_syntax_uid: ts.ok_or(Part10Error::Missing("Transfer Syntax UID (0002,0010)"))?,
        source_ae_title: source.filter(|s| !s.is_empty()),
    };
    Ok((meta, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let meta = FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.45".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: Some("COUNTY_CT".into()),
        };
        let mut file = encode_header(&meta);
        let header_len = file.len() as u64;
        file.extend([0x08, 0x00, 0x18, 0x00]); // first dataset tag follows
        let (read, offset) = read_header(&file[..]).unwrap();
        assert_eq!(read, meta);
        assert_eq!(offset, header_len);
        assert_eq!(header_len % 2, 0);
    }

    #[test]
    fn rejects_what_is_not_part10() {
        assert!(matches!(read_header(&b"short"[..]), Err(Part10Error::NoMagic)));
        assert!(matches!(read_header(&[0u8; 200][..]), Err(Part10Error::NoMagic)));
        let mut only_magic = vec![0u8; 128];
        only_magic.extend(b"DICM");
        assert!(matches!(read_header(&only_magic[..]), Err(Part10Error::Missing(_))));
    }
}
