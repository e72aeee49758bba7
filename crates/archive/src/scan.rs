//! One streaming pass over a received dataset: check its structure, pick out
//! the attributes the index needs.
//!
//! Received objects are kept byte for byte, so nothing here builds an
//! in-memory DICOM object. The scanner walks element headers with dicom-rs's
//! stateful decoder, skipping values it does not need (pixel data included;
//! large ones by seeking, so they are not read back from disk) and checking
//! every declared length against the bytes that are really there. A dataset
//! that stops mid-element, declares an item longer than its sequence, or
//! holds a delimiter where none belongs is reported with the tag
//! and byte offset where it went wrong; that is what the sender's error comment
//! says. Memory stays bounded whatever the object's size: only the raw bytes of
//! the handful of top-level text attributes in [`INDEXED_TAGS`] are kept.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use dicom_core::header::{DataElementHeader, HasLength, SequenceItemHeader};
use dicom_core::{Tag, VR};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_parser::stateful::decode::{StatefulDecode, StatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::charset::CharacterSet;

/// Top-level attributes read for the index, sorted by tag.
pub const INDEXED_TAGS: [Tag; 27] = [
    Tag(0x0008, 0x0005), // Specific Character Set
    Tag(0x0008, 0x0016), // SOP Class UID
    Tag(0x0008, 0x0018), // SOP Instance UID
    Tag(0x0008, 0x0020), // Study Date
    Tag(0x0008, 0x0030), // Study Time
    Tag(0x0008, 0x0050), // Accession Number
    Tag(0x0008, 0x0060), // Modality
    Tag(0x0008, 0x0080), // Institution Name
    Tag(0x0008, 0x0090), // Referring Physician's Name
    Tag(0x0008, 0x1030), // Study Description
    Tag(0x0008, 0x103E), // Series Description
    Tag(0x0010, 0x0010), // Patient's Name
    Tag(0x0010, 0x0020), // Patient ID
    Tag(0x0010, 0x0030), // Patient's Birth Date
    Tag(0x0010, 0x0040), // Patient's Sex
    Tag(0x0018, 0x0015), // Body Part Examined
    Tag(0x0020, 0x000D), // Study Instance UID
    Tag(0x0020, 0x000E), // Series Instance UID
    Tag(0x0020, 0x0010), // Study ID
    Tag(0x0020, 0x0011), // Series Number
    Tag(0x0020, 0x0013), // Instance Number
    Tag(0x0028, 0x0008), // Number of Frames
    Tag(0x0028, 0x0010), // Rows
    Tag(0x0028, 0x0011), // Columns
    Tag(0x0028, 0x0100), // Bits Allocated
    Tag(0x0040, 0x0244), // Performed Procedure Step Start Date
    Tag(0x0040, 0x0245), // Performed Procedure Step Start Time
];

/// Values longer than this are not indexed (no indexed attribute is near it).
const MAX_INDEXED_VALUE: u32 = 64 * 1024;

const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("transfer syntax {uid} is not one this archive can parse")]
    UnknownTransferSyntax { uid: String },
    #[error("dataset is truncated: {what} at byte {offset} needs {needed} bytes, but the dataset ends after {available}")]
    Truncated { what: String, offset: u64, needed: u64, available: u64 },
    #[error("dataset is malformed at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    #[error("could not read the staged dataset: {0}")]
    Io(#[from] io::Error),
}

/// The raw bytes of the indexed attributes found at the top level.
#[derive(Debug, Default, Clone)]
pub struct ScannedDataset {
    raw: [Option<Vec<u8>>; INDEXED_TAGS.len()],
    /// Resolved once, when the scan completes.
    charset: CharacterSet,
    /// Binary values (Rows, Columns) are in the transfer syntax's byte order.
    big_endian: bool,
}

impl ScannedDataset {
    /// The raw value of `tag`, if it is one of [`INDEXED_TAGS`] and was present.
    pub fn raw(&self, tag: Tag) -> Option<&[u8]> {
        let index = INDEXED_TAGS.binary_search(&tag).ok()?;
        self.raw[index].as_deref()
    }

    /// The object's Specific Character Set, resolved.
    pub fn character_set(&self) -> CharacterSet {
        self.charset
    }

    fn resolve_character_set(&self) -> CharacterSet {
        let terms: Vec<String> = self
            .raw(Tag(0x0008, 0x0005))
            .map(|raw| String::from_utf8_lossy(raw).split('\\').map(|t| t.trim_matches(['\0', ' ']).to_owned()).collect())
            .unwrap_or_default();
        CharacterSet::from_terms(&terms)
    }

    /// The first value of a US attribute (Rows, Columns, Bits Allocated);
    /// `None` when absent or not two bytes or more.
    pub fn unsigned_short(&self, tag: Tag) -> Option<u16> {
        let raw: [u8; 2] = self.raw(tag)?.get(..2)?.try_into().ok()?;
        Some(if self.big_endian { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) })
    }

    /// `tag` decoded to UTF-8 with the object's character set; `None` when
    /// absent or empty.
    pub fn text(&self, tag: Tag) -> Option<String> {
        let raw = self.raw(tag)?;
        let text = self.charset.decode(raw);
        (!text.is_empty()).then_some(text)
    }
}

/// An io::Write that counts and discards.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    /// Inside an item (or the top-level dataset when the stack is empty).
    Item { end: Option<u64> },
    /// Inside a sequence, between items.
    Sequence { end: Option<u64> },
    /// Inside encapsulated pixel data, between fragments.
    Fragments,
}

/// Returns whether a dataset in transfer syntax `ts_uid` must be inflated
/// before [`scan_dataset`] can read it.
pub fn is_deflated(ts_uid: &str) -> Result<bool, ScanError> {
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| ScanError::UnknownTransferSyntax { uid: ts_uid.to_owned() })?;
    Ok(matches!(ts.codec(), Codec::Dataset(_)))
}

/// Wraps `reader` so that it yields the inflated dataset of a deflated
/// transfer syntax.
pub fn inflating_reader<'r>(ts_uid: &str, reader: Box<dyn Read + 'r>) -> Result<Box<dyn Read + 'r>, ScanError> {
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| ScanError::UnknownTransferSyntax { uid: ts_uid.to_owned() })?;
    match ts.codec() {
        Codec::Dataset(Some(adapter)) => Ok(adapter.adapt_reader(reader)),
        Codec::Dataset(None) => Err(ScanError::UnknownTransferSyntax { uid: ts_uid.to_owned() }),
        _ => Ok(reader),
    }
}

/// Inflated datasets checked in memory are at most this large: the whole
/// of an ECG upload's limit. (At 256 MiB a deflate bomb of a few hundred
/// kilobytes held a quarter gigabyte, and the parser after it as much
/// again: the fuzzer's DICOM ECG target peaked at 190–230 MiB.)
pub const MAX_INFLATED_IN_MEMORY: u64 = 64 * 1024 * 1024;

/// Checks an object held in memory as ingest checks what it receives: the
/// structure, and every declared length against the bytes present. A Part 10
/// file is read in its transfer syntax (a deflated one inflated, up to
/// [`MAX_INFLATED_IN_MEMORY`]); anything else as a bare dataset in implicit
/// VR little endian.
///
/// For callers about to give untrusted bytes to a full parser: dicom-object
/// reserves a value's declared length before reading it, so one element
/// declaring 3.7 GB in a 1 KB upload asked for 3.7 GB (found by fuzzing the
/// ECG reader).
pub fn check_bytes(bytes: &[u8]) -> Result<ScannedDataset, ScanError> {
    // Part 10 as the full parser decides it: "DICM" after a preamble, or
    // first. Such a file is checked as Part 10 or refused, never walked as
    // a bare dataset that the parser would then read differently.
    if !is_part10(bytes) {
        return scan_dataset(io::Cursor::new(bytes), "1.2.840.10008.1.2", bytes.len() as u64);
    }
    let file: std::borrow::Cow<'_, [u8]> =
        if bytes.get(128..132) == Some(b"DICM") { bytes.into() } else { [&[0u8; 128][..], bytes].concat().into() };
    let malformed = |reason: String| ScanError::Malformed { offset: 0, reason };
    let (meta, header_len) =
        crate::part10::read_header(&file[..]).map_err(|e| malformed(format!("the file meta group is unreadable: {e}")))?;
    full_parser_agrees(&file, header_len)?;
    let ts = meta.transfer_syntax_uid;
    let dataset = file.get(header_len as usize..).unwrap_or_default();
    if is_deflated(&ts)? {
        let mut inflated = Vec::new();
        inflating_reader(&ts, Box::new(dataset))?.take(MAX_INFLATED_IN_MEMORY + 1).read_to_end(&mut inflated)?;
        if inflated.len() as u64 > MAX_INFLATED_IN_MEMORY {
            return Err(malformed(format!("the deflated dataset inflates past {MAX_INFLATED_IN_MEMORY} bytes")));
        }
        let len = inflated.len() as u64;
        return scan_dataset(io::Cursor::new(inflated), "1.2.840.10008.1.2.1", len);
    }
    scan_dataset(io::Cursor::new(dataset), &ts, dataset.len() as u64)
}

/// Whether `bytes` are a Part 10 file as a full parser decides it: "DICM"
/// after the 128-byte preamble, or first (a file written without one).
pub fn is_part10(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM")
}

/// dicom-object reads the meta group by its Group Length (0002,0000), where
/// [`crate::part10::read_header`] reads to the first element of another
/// group. Where the two would end at different bytes (a wrong group
/// length), the dataset the full parser reads is not the one checked here,
/// and its meta reader reserves what a later "meta" element declares: such
/// a file is refused (found by fuzzing the ECG reader). Without a leading
/// Group Length the full parser refuses the file itself.
fn full_parser_agrees(file: &[u8], header_len: u64) -> Result<(), ScanError> {
    let Some(head) = file.get(132..144) else { return Ok(()) };
    if head[..8] != [0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00] {
        return Ok(());
    }
    let group_length = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let parser_end = 144 + u64::from(group_length);
    if parser_end != header_len {
        return Err(ScanError::Malformed {
            offset: 132,
            reason: format!(
                "File Meta Information Group Length says the meta group ends at byte {parser_end}, but its elements end at byte {header_len}"
            ),
        });
    }
    Ok(())
}

fn describe(tag: Tag) -> String {
    format!("element ({:04X},{:04X})", tag.group(), tag.element())
}

/// Values at least this long are skipped by seeking past them rather than
/// reading them: a CT slice's pixel data is then never read back, only the
/// few kilobytes of attributes before it. Their bytes are known to be there,
/// because every length is checked against `dataset_len` first.
const SKIP_BY_SEEKING: u32 = 64 * 1024;

/// Walks a dataset of `dataset_len` bytes encoded in `ts_uid` (not deflated:
/// see [`inflating_reader`]), starting at `source`'s current position, and
/// returns its indexed attributes.
pub fn scan_dataset<R: Read + Seek>(mut source: R, ts_uid: &str, dataset_len: u64) -> Result<ScannedDataset, ScanError> {
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| ScanError::UnknownTransferSyntax { uid: ts_uid.to_owned() })?;
    let start = source.stream_position()?;
    let mut decoder =
        StatefulDecoder::new_with_ts(source, ts, 0).map_err(|e| ScanError::UnknownTransferSyntax { uid: format!("{ts_uid} ({e})") })?;
    let mut found = ScannedDataset { big_endian: ts_uid == "1.2.840.10008.1.2.2", ..ScannedDataset::default() };
    let mut stack: Vec<Frame> = Vec::new();
    // The decoder does not count bytes passed by seeking; these are they.
    let mut sought = 0u64;

    let truncated = |what: String, offset: u64, needed: u64| ScanError::Truncated {
        what,
        offset,
        needed,
        available: dataset_len.saturating_sub(offset),
    };
    let malformed = |offset: u64, reason: String| ScanError::Malformed { offset, reason };

    loop {
        let pos = decoder.position() + sought;
        match stack.last().copied() {
            None | Some(Frame::Item { .. }) => {
                let end = match stack.last() {
                    Some(Frame::Item { end }) => *end,
                    _ => Some(dataset_len),
                };
                if end == Some(pos) {
                    if stack.pop().is_none() {
                        found.charset = found.resolve_character_set();
                        return Ok(found);
                    }
                    continue;
                }
                if let Some(end) = end
                    && pos > end
                {
                    return Err(malformed(pos, format!("an item overruns its declared end at byte {end}")));
                }
                if pos + 8 > dataset_len {
                    return Err(truncated("an element header".into(), pos, 8));
                }
                let header: DataElementHeader =
                    decoder.decode_header().map_err(|e| malformed(pos, format!("cannot read an element header: {e}")))?;
                let after_header = decoder.position() + sought;
                if header.tag == ITEM_DELIMITER {
                    match stack.last() {
                        Some(Frame::Item { end: None }) => {
                            stack.pop();
                            continue;
                        }
                        _ => return Err(malformed(pos, "an item delimiter outside an item of undefined length".into())),
                    }
                }
                if header.tag == SEQUENCE_DELIMITER {
                    return Err(malformed(pos, "a sequence delimiter outside a sequence".into()));
                }
                let undefined = header.length().is_undefined();
                if header.vr() == VR::SQ || (undefined && header.vr() == VR::UN) {
                    let end = if undefined {
                        None
                    } else {
                        let len = u64::from(header.length().0);
                        if after_header + len > dataset_len {
                            return Err(truncated(describe(header.tag), pos, len));
                        }
                        Some(after_header + len)
                    };
                    stack.push(Frame::Sequence { end });
                    continue;
                }
                if undefined {
                    if header.tag == Tag(0x7FE0, 0x0010) {
                        stack.push(Frame::Fragments);
                        continue;
                    }
                    return Err(malformed(pos, format!("{} of VR {} has undefined length", describe(header.tag), header.vr().to_string())));
                }
                let len = header.length().0;
                let value_end = after_header + u64::from(len);
                if value_end > dataset_len {
                    return Err(truncated(describe(header.tag), pos, u64::from(len)));
                }
                let wanted = if stack.is_empty() && len <= MAX_INDEXED_VALUE { INDEXED_TAGS.binary_search(&header.tag).ok() } else { None };
                if let Some(index) = wanted {
                    let mut value = Vec::with_capacity(len as usize);
                    decoder
                        .read_to(len, &mut value)
                        .map_err(|e| malformed(after_header, format!("cannot read {}: {e}", describe(header.tag))))?;
                    if value.len() as u64 != u64::from(len) {
                        return Err(truncated(describe(header.tag), pos, u64::from(len)));
                    }
                    found.raw[index] = Some(value);
                } else if len >= SKIP_BY_SEEKING {
                    decoder
                        .seek(start + value_end)
                        .map_err(|e| malformed(after_header, format!("cannot skip {}: {e}", describe(header.tag))))?;
                    sought += u64::from(len);
                } else {
                    let mut counter = Counter(0);
                    decoder
                        .read_to(len, &mut counter)
                        .map_err(|e| malformed(after_header, format!("cannot read {}: {e}", describe(header.tag))))?;
                    if counter.0 != u64::from(len) {
                        return Err(truncated(describe(header.tag), pos, u64::from(len)));
                    }
                }
            }
            Some(frame @ (Frame::Sequence { .. } | Frame::Fragments)) => {
                if let Frame::Sequence { end: Some(end) } = frame
                    && pos >= end
                {
                    if pos > end {
                        return Err(malformed(pos, format!("a sequence overruns its declared end at byte {end}")));
                    }
                    stack.pop();
                    continue;
                }
                if pos + 8 > dataset_len {
                    return Err(truncated("an item header".into(), pos, 8));
                }
                let item =
                    decoder.decode_item_header().map_err(|e| malformed(pos, format!("expected an item or a sequence delimiter: {e}")))?;
                let after_header = decoder.position() + sought;
                match item {
                    SequenceItemHeader::Item { len } => {
                        let end = if len.is_undefined() {
                            if matches!(frame, Frame::Fragments) {
                                return Err(malformed(pos, "a pixel data fragment has undefined length".into()));
                            }
                            None
                        } else {
                            let len = u64::from(len.0);
                            if after_header + len > dataset_len {
                                return Err(truncated("an item".into(), pos, len));
                            }
                            Some(after_header + len)
                        };
                        if matches!(frame, Frame::Fragments) {
                            let len = len.0;
                            if len >= SKIP_BY_SEEKING {
                                decoder
                                    .seek(start + after_header + u64::from(len))
                                    .map_err(|e| malformed(after_header, format!("cannot skip a pixel data fragment: {e}")))?;
                                sought += u64::from(len);
                            } else {
                                let mut counter = Counter(0);
                                decoder
                                    .read_to(len, &mut counter)
                                    .map_err(|e| malformed(after_header, format!("cannot read a pixel data fragment: {e}")))?;
                                if counter.0 != u64::from(len) {
                                    return Err(truncated("a pixel data fragment".into(), pos, u64::from(len)));
                                }
                            }
                        } else {
                            stack.push(Frame::Item { end });
                        }
                    }
                    SequenceItemHeader::SequenceDelimiter => {
                        stack.pop();
                    }
                    SequenceItemHeader::ItemDelimiter => {
                        return Err(malformed(pos, "an item delimiter between items".into()));
                    }
                }
            }
        }
    }
}

/// Scans the dataset of a Part 10 file that starts at `header_len` and runs
/// `dataset_len` bytes, inflating a deflated one to a scratch file beside it
/// first (so that its length is known).
pub fn scan_file(path: &Path, ts_uid: &str, header_len: u64, dataset_len: u64) -> Result<ScannedDataset, ScanError> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(header_len))?;
    // Large values are sought past (see SKIP_BY_SEEKING), so the buffer only
    // ever holds attributes.
    let reader = BufReader::with_capacity(SKIP_BY_SEEKING as usize, file);
    if !is_deflated(ts_uid)? {
        return scan_dataset(reader, ts_uid, dataset_len);
    }
    let inflated_path = path.with_extension("inflated");
    let result = (|| {
        let mut inflated = File::options().create(true).truncate(true).read(true).write(true).open(&inflated_path)?;
        let mut source = inflating_reader(ts_uid, Box::new(reader.take(dataset_len)))?;
        let inflated_len = io::copy(&mut source, &mut inflated)
            .map_err(|e| ScanError::Malformed { offset: 0, reason: format!("deflated dataset does not inflate: {e}") })?;
        inflated.seek(SeekFrom::Start(0))?;
        // An inflated dataset is explicit VR little endian.
        scan_dataset(BufReader::new(inflated), "1.2.840.10008.1.2.1", inflated_len)
    })();
    let _ = fs::remove_file(&inflated_path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
    const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

    fn explicit(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(tag.0.to_le_bytes());
        out.extend(tag.1.to_le_bytes());
        out.extend(vr);
        if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
            out.extend([0, 0]);
            out.extend((value.len() as u32).to_le_bytes());
        } else {
            out.extend((value.len() as u16).to_le_bytes());
        }
        out.extend(value);
        out
    }

    /// A dataset as its top-level elements, so tests know where they start.
    fn sample_elements() -> Vec<Vec<u8>> {
        // a defined-length sequence holding one item with one element
        let inner = explicit((0x0008, 0x0100), b"SH", b"T-1234");
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((inner.len() as u32).to_le_bytes());
        item.extend(&inner);
        vec![
            explicit((0x0008, 0x0005), b"CS", b"GB18030 "),
            explicit((0x0008, 0x0018), b"UI", b"1.2.3.4\0"),
            explicit((0x0008, 0x1032), b"SQ", &item),
            explicit((0x0010, 0x0010), b"PN", &[0xd5, 0xc5, 0xc8, 0xfd]),
            explicit((0x7FE0, 0x0010), b"OW", &[7u8; 64]),
        ]
    }

    fn sample() -> Vec<u8> {
        sample_elements().concat()
    }

    /// Cutting a dataset anywhere but between top-level elements must fail.
    /// (A cut between elements is a shorter valid dataset: that case is caught
    /// by the transport, whose last fragment marks the end.)
    fn assert_cuts_rejected(elements: &[Vec<u8>], ts: &str) {
        let ds = elements.concat();
        let boundaries: Vec<usize> = elements
            .iter()
            .scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            })
            .collect();
        for cut in 1..ds.len() {
            if boundaries.contains(&cut) {
                continue;
            }
            assert!(scan(&ds[..cut], ts).is_err(), "dataset cut at {cut} of {} bytes was accepted", ds.len());
        }
    }

    /// A Part 10 file whose Group Length ends the meta group before its
    /// Implementation Class UID: read by that length, the rest is dataset
    /// in implicit VR, where "UI" and its length read as 0x2000_4955 bytes.
    fn meta_group_length_short_by_one_element() -> Vec<u8> {
        let elements = [
            explicit((0x0002, 0x0010), b"UI", b"1.2.840.10008.1.2\0"),
            explicit((0x0002, 0x0002), b"UI", b"1.2.840.10008.5.1.4.1.1.9.1.1\0"),
            explicit((0x0002, 0x0003), b"UI", b"1.2.3.4\0"),
        ]
        .concat();
        let mut file = vec![0u8; 128];
        file.extend(b"DICM");
        file.extend(explicit((0x0002, 0x0000), b"UL", &(elements.len() as u32).to_le_bytes()));
        file.extend(elements);
        file.extend(explicit((0x0002, 0x0012), b"UI", &vec![b'1'; 0x2000]));
        file.extend([0x08, 0x00, 0x18, 0x00, 4, 0, 0, 0]);
        file.extend(b"1.2\0");
        file
    }

    #[test]
    fn a_meta_group_length_that_disagrees_with_its_elements_is_refused() {
        let file = meta_group_length_short_by_one_element();
        let err = check_bytes(&file).unwrap_err().to_string();
        assert!(err.contains("Group Length") && err.contains("8424"), "{err}");
        // The same file without its preamble is Part 10 to the full parser, and here.
        assert_eq!(check_bytes(&file[128..]).unwrap_err().to_string(), err);
        // Told the truth, the group length is accepted.
        let mut honest = file.clone();
        let length = (8424 - 144) as u32;
        honest[140..144].copy_from_slice(&length.to_le_bytes());
        check_bytes(&honest).unwrap();
    }

    pub(super) fn sample_for_fuzz() -> Vec<u8> {
        sample()
    }

    pub(super) fn implicit_for_fuzz() -> Vec<u8> {
        let mut ds = vec![0x08, 0x00, 0x18, 0x00, 4, 0, 0, 0];
        ds.extend(b"1.2\0");
        ds.extend([0x08, 0x00, 0x32, 0x10, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend([0x08, 0x00, 0x00, 0x01, 2, 0, 0, 0]);
        ds.extend(b"AB");
        ds.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        ds.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        ds.extend([0xE0, 0x7F, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]);
        ds.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        ds
    }

    fn scan(bytes: &[u8], ts: &str) -> Result<ScannedDataset, ScanError> {
        scan_dataset(io::Cursor::new(bytes), ts, bytes.len() as u64)
    }

    #[test]
    fn reads_indexed_attributes_through_sequences_and_pixel_data() {
        let ds = sample();
        let found = scan(&ds, EXPLICIT_LE).expect("valid dataset");
        assert_eq!(found.text(Tag(0x0010, 0x0010)).as_deref(), Some("张三"));
        assert_eq!(found.text(Tag(0x0008, 0x0018)).as_deref(), Some("1.2.3.4"));
        assert_eq!(found.text(Tag(0x0020, 0x000D)), None);
    }

    #[test]
    fn every_truncation_point_is_reported_never_accepted() {
        assert_cuts_rejected(&sample_elements(), EXPLICIT_LE);
    }

    #[test]
    fn encapsulated_fragments_and_undefined_lengths_are_walked() {
        // implicit VR LE: undefined-length sequence with an undefined-length item
        let uid = [&[0x08, 0x00, 0x18, 0x00, 4, 0, 0, 0][..], b"1.2\0"].concat();
        let mut sequence = Vec::new();
        sequence.extend([0x08, 0x00, 0x32, 0x10, 0xFF, 0xFF, 0xFF, 0xFF]); // SQ undefined
        sequence.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]); // item undefined
        sequence.extend([0x08, 0x00, 0x00, 0x01, 2, 0, 0, 0]);
        sequence.extend(b"AB");
        sequence.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]); // item delimiter
        sequence.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]); // sequence delimiter
        let mut pixels = Vec::new();
        pixels.extend([0xE0, 0x7F, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]); // pixel data, encapsulated
        pixels.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]); // empty offset table
        pixels.extend([0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]); // one fragment
        pixels.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let elements = vec![uid, sequence, pixels];
        let found = scan(&elements.concat(), IMPLICIT_LE).expect("valid dataset");
        assert_eq!(found.text(Tag(0x0008, 0x0018)).as_deref(), Some("1.2"));
        assert_cuts_rejected(&elements, IMPLICIT_LE);
    }

    #[test]
    fn errors_name_the_element_and_offset() {
        let mut ds = explicit((0x0008, 0x0018), b"UI", b"1.2.3.4\0");
        ds.extend(explicit((0x7FE0, 0x0010), b"OW", &[0u8; 100]));
        let err = scan(&ds[..ds.len() - 10], EXPLICIT_LE).unwrap_err().to_string();
        assert!(err.contains("(7FE0,0010)") && err.contains("needs 100 bytes"), "{err}");
        let err = scan(b"garbage!garbage!", "1.2.3.999").unwrap_err().to_string();
        assert!(err.contains("1.2.3.999"), "{err}");
    }

    #[test]
    fn large_values_are_sought_past_with_offsets_kept() {
        // A 100 KiB private value before the patient's name, then encapsulated
        // pixel data with a 70 KiB fragment: both are past SKIP_BY_SEEKING.
        let big = vec![0xA5u8; 100 * 1024];
        let mut pixels = Vec::new();
        pixels.extend([0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        pixels.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        pixels.extend([0xFE, 0xFF, 0x00, 0xE0]);
        pixels.extend((70u32 * 1024).to_le_bytes());
        pixels.extend(vec![0x5Au8; 70 * 1024]);
        pixels.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let elements = [
            explicit((0x0008, 0x0018), b"UI", b"1.2.3.4\0"),
            explicit((0x0009, 0x1010), b"OB", &big),
            explicit((0x0010, 0x0010), b"PN", b"Li^Lei"),
            explicit((0x0020, 0x000D), b"UI", b"1.2.3\0"),
            pixels,
        ];
        let ds = elements.concat();
        // The dataset starts 300 bytes into its source, as behind a Part 10 header.
        let mut source = vec![0xEEu8; 300];
        source.extend(&ds);
        let mut cursor = io::Cursor::new(&source[..]);
        cursor.set_position(300);
        let found = scan_dataset(cursor, EXPLICIT_LE, ds.len() as u64).expect("valid dataset");
        assert_eq!(found.text(Tag(0x0010, 0x0010)).as_deref(), Some("Li^Lei"));
        assert_eq!(found.text(Tag(0x0020, 0x000D)).as_deref(), Some("1.2.3"));
        // Offsets after a skipped value still count its bytes.
        let name_at = elements[0].len() + elements[1].len();
        let mut broken = ds.clone();
        broken[name_at + 4..name_at + 6].copy_from_slice(b"\x01\x02"); // an invalid VR
        let err = scan(&broken, EXPLICIT_LE).unwrap_err().to_string();
        assert!(err.contains(&format!("at byte {name_at}")), "{err}");
        // Cut inside either large value, or just after one: rejected.
        for cut in [name_at - 10, name_at + 3, ds.len() - 20, ds.len() - 9] {
            assert!(scan(&ds[..cut], EXPLICIT_LE).is_err(), "dataset cut at {cut} was accepted");
        }
    }
}

#[cfg(test)]
mod hostile_input {
    //! Mutated and random bytes into the scanner: it must answer with an error
    //! or a result, never panic, loop or allocate without bound. (A stand-in
    //! for a coverage-guided fuzzer, which needs a nightly toolchain; this runs
    //! in every `cargo test`.)

    use super::*;

    /// xorshift64*: deterministic, so a failure names its seed.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545F4914F6CDD1D)
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Flips, overwrites, inserts and deletes bytes; sometimes writes a
    /// length field of 0xFFFFFFFF or a huge value.
    pub(crate) fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            if data.is_empty() {
                data.push(rng.next() as u8);
            }
            let at = rng.below(data.len());
            match rng.below(5) {
                0 => data[at] ^= 1 << rng.below(8),
                1 => data[at] = rng.next() as u8,
                2 => data.insert(at, rng.next() as u8),
                3 => {
                    data.remove(at);
                }
                _ => {
                    let value: [u8; 4] = if rng.below(2) == 0 { [0xFF; 4] } else { (rng.next() as u32).to_le_bytes() };
                    for (i, b) in value.iter().enumerate() {
                        if at + i < data.len() {
                            data[at + i] = *b;
                        }
                    }
                }
            }
        }
        data
    }

    #[test]
    fn mutated_datasets_never_panic() {
        let seeds: Vec<(Vec<u8>, &str)> = vec![
            (super::tests::sample_for_fuzz(), "1.2.840.10008.1.2.1"),
            (super::tests::implicit_for_fuzz(), "1.2.840.10008.1.2"),
            (super::tests::sample_for_fuzz(), "1.2.840.10008.1.2.2"),
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for round in 0..30_000 {
            let (seed, ts) = &seeds[round % seeds.len()];
            let data = mutate(&mut rng, seed);
            let _ = scan_dataset(io::Cursor::new(&data[..]), ts, data.len() as u64);
        }
    }

    #[test]
    fn mutated_part10_headers_and_text_never_panic() {
        let meta = crate::part10::FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.4".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: Some("CT".into()),
        };
        let header = crate::part10::encode_header(&meta);
        let text = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$)C\xfb\xf3".to_vec();
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let _ = crate::part10::read_header(&mutate(&mut rng, &header)[..]);
            let garbled = mutate(&mut rng, &text);
            for terms in [&["", "ISO 2022 IR 87"][..], &["", "ISO 2022 IR 149"], &["GB18030"], &[]] {
                let _ = crate::charset::CharacterSet::from_terms(terms).decode(&garbled);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let len = rng.below(512);
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            for ts in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"] {
                let _ = scan_dataset(io::Cursor::new(&data[..]), ts, data.len() as u64);
            }
        }
    }
}
