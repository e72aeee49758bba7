//! One stored object's attributes as DICOM JSON: WADO-RS `metadata`.
//!
//! The object is read as stored (any transfer syntax, deflated included)
//! with dicom-rs's lazy reader, which hands each value to us before reading
//! it: small values are read and written inline, large ones are skipped and
//! written as a `BulkDataURI` (Pixel Data always), so an object's size never
//! decides the memory this takes, and reading stops at the top-level Pixel
//! Data — a CT slice costs its header, not its half megabyte.
//!
//! Text is decoded with the object's Specific Character Set (including the
//! ISO 2022 forms, through the archive's decoder) and written as UTF-8, so
//! Specific Character Set itself is written as `ISO_IR 192`. The stored
//! transfer syntax is given as Available Transfer Syntax UID (0008,3002).
//!
//! The bulk data URIs start with [`BASE_PLACEHOLDER`] rather than a URL:
//! documents are made once (by the pipeline, at ingest) and served to
//! clients that reach the centre by different names; [`with_base`] puts the
//! caller's base URL in when serving.

use std::io::{BufReader, Read, Seek, SeekFrom};

use dicom_core::Tag;
use dicom_encoding::TransferSyntaxIndex;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use telediag_archive::charset::CharacterSet;

use crate::json::{Kind, ObjectWriter, kind_of};

/// Marks where the base URL goes in a stored document: a control byte, which
/// the JSON writer never leaves unescaped in a value.
pub const BASE_PLACEHOLDER: u8 = 0x01;

/// Binary values (OB, OW, UN, ...) up to this size are inline (base64);
/// larger ones are bulk data.
const INLINE_BYTES: u32 = 1024;
/// Numeric and text values up to this size are inline.
const INLINE_OTHER: u32 = 1024 * 1024;
/// Deeper nesting of sequences than this is refused (no real object comes
/// near it; each level is a small stack frame of ours, not recursion).
const MAX_DEPTH: usize = 64;

/// Why an object's metadata could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("not a Part 10 object: {0}")]
    Header(#[from] telediag_archive::part10::Part10Error),
    #[error("transfer syntax {0} cannot be read")]
    TransferSyntax(String),
    #[error("cannot read the dataset: {0}")]
    Read(String),
    #[error("sequences nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Where the instance is, for its bulk data URIs.
#[derive(Debug, Clone)]
pub struct InstancePath<'a> {
    pub study: &'a str,
    pub series: &'a str,
    pub instance: &'a str,
}

impl InstancePath<'_> {
    fn bulk_prefix(&self) -> String {
        format!("/studies/{}/series/{}/instances/{}/bulkdata", self.study, self.series, self.instance)
    }
}

/// One nesting level while walking.
struct Level {
    /// Items written so far (sequence) — for the separators.
    items: usize,
    /// The item's character set (an item may declare its own).
    charset: CharacterSet,
    /// The path of this level for bulk data URIs: `00540016/1/`.
    path: String,
    is_pixel_sequence: bool,
}

/// The JSON object of the Part 10 object read from `source`.
pub fn instance_metadata<R: Read + Seek>(source: R, at: &InstancePath<'_>) -> Result<Vec<u8>, MetadataError> {
    let (ts_uid, dataset) = open_dataset(source)?;
    let ts = TransferSyntaxRegistry.get(&ts_uid).ok_or_else(|| MetadataError::TransferSyntax(ts_uid.clone()))?;
    let big_endian = ts_uid == "1.2.840.10008.1.2.2";
    let mut reader = LazyDataSetReader::new_with_ts(dataset, ts).map_err(|e| MetadataError::Read(e.to_string()))?;
    let bulk = at.bulk_prefix();
    let mut w = ObjectWriter::new();
    let mut stack: Vec<Level> = vec![Level { items: 0, charset: CharacterSet::default(), path: String::new(), is_pixel_sequence: false }];
    let mut wrote_available_ts = false;
    let read_err = |e: &dyn std::fmt::Display| MetadataError::Read(e.to_string());

    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| read_err(&e))?;
        let top = stack.len() == 1;
        match token {
            LazyDataToken::SequenceStart { tag, .. } => {
                if stack.len() > MAX_DEPTH {
                    return Err(MetadataError::TooDeep);
                }
                if top && !wrote_available_ts && tag > AVAILABLE_TS {
                    available_ts(&mut w, &ts_uid);
                    wrote_available_ts = true;
                }
                let level = stack.last().expect("never empty");
                let (charset, path) = (level.charset, within(&level.path, tag_number(tag)));
                w.begin_sequence(tag_number(tag));
                stack.push(Level { items: 0, charset, path, is_pixel_sequence: false });
            }
            LazyDataToken::ItemStart { .. } => {
                let level = stack.last_mut().expect("never empty");
                if level.is_pixel_sequence {
                    continue;
                }
                if level.items > 0 {
                    w.separator();
                }
                level.items += 1;
                let (charset, path) = (level.charset, item(&level.path, level.items));
                w.open_object();
                stack.push(Level { items: 0, charset, path, is_pixel_sequence: false });
            }
            LazyDataToken::ItemEnd => {
                if stack.last().is_some_and(|l| l.is_pixel_sequence) {
                    continue;
                }
                if stack.len() > 1 {
                    stack.pop();
                }
                w.close_object();
            }
            LazyDataToken::SequenceEnd => {
                let level = stack.pop().ok_or_else(|| MetadataError::Read("a sequence end outside a sequence".into()))?;
                if !level.is_pixel_sequence {
                    w.end_sequence();
                }
                if stack.is_empty() {
                    return Err(MetadataError::Read("a sequence end outside a sequence".into()));
                }
                if level.is_pixel_sequence && stack.len() == 1 {
                    // The top-level Pixel Data ends the attributes worth reading.
                    break;
                }
            }
            LazyDataToken::PixelSequenceStart => {
                if top && !wrote_available_ts {
                    available_ts(&mut w, &ts_uid);
                    wrote_available_ts = true;
                }
                let level = stack.last().expect("never empty");
                w.bulk_data_at_base(PIXEL_DATA, "OB", &format!("{bulk}/{}", value_at(&level.path, PIXEL_DATA)));
                if top {
                    break;
                }
                stack.push(Level { items: 0, charset: level.charset, path: String::new(), is_pixel_sequence: true });
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                decoder.skip_bytes(len).map_err(|e| read_err(&e))?;
            }
            LazyDataToken::LazyValue { header, decoder } => {
                let tag = header.tag;
                let len = header.len.0;
                if top && !wrote_available_ts && tag > AVAILABLE_TS {
                    available_ts(&mut w, &ts_uid);
                    wrote_available_ts = true;
                }
                // Group lengths are left out (PS3.18 F.2: they are not
                // meaningful once the encoding has changed).
                if tag.1 == 0 || tag == Tag(0xFFFC, 0xFFFC) {
                    decoder.skip_bytes(len).map_err(|e| read_err(&e))?;
                    continue;
                }
                let vr: &str = header.vr.to_string();
                let kind = kind_of(vr);
                let is_pixels = matches!(tag, Tag(0x7FE0, 0x0008 | 0x0009 | 0x0010));
                let limit = if kind == Kind::Bytes { INLINE_BYTES } else { INLINE_OTHER };
                let level = stack.last().expect("never empty");
                if is_pixels || len > limit {
                    decoder.skip_bytes(len).map_err(|e| read_err(&e))?;
                    w.bulk_data_at_base(tag_number(tag), vr, &format!("{bulk}/{}", value_at(&level.path, tag_number(tag))));
                    if top && is_pixels && tag == PIXEL_TAG {
                        break;
                    }
                    continue;
                }
                let mut raw = Vec::with_capacity(len as usize);
                decoder.read_to_vec(len, &mut raw).map_err(|e| read_err(&e))?;
                if tag == Tag(0x0008, 0x0005) {
                    let terms: Vec<String> =
                        String::from_utf8_lossy(&raw).split('\\').map(|t| t.trim_matches(['\0', ' ']).to_owned()).collect();
                    stack.last_mut().expect("never empty").charset = CharacterSet::from_terms(&terms);
                    w.text(tag_number(tag), "CS", "ISO_IR 192");
                    continue;
                }
                let charset = stack.last().expect("never empty").charset;
                match kind {
                    Kind::Bytes => w.inline_binary(tag_number(tag), vr, &raw),
                    Kind::Binary { .. } => w.binary_numbers(tag_number(tag), vr, &raw, big_endian),
                    Kind::Tags => w.tags(tag_number(tag), &raw, big_endian),
                    Kind::Names | Kind::Strings | Kind::Text => {
                        let text = if is_text_with_charset(vr) {
                            charset.decode(&raw)
                        } else {
                            String::from_utf8_lossy(&raw).trim_end_matches(['\0', ' ']).to_owned()
                        };
                        w.text(tag_number(tag), vr, &text);
                    }
                    Kind::DecimalText => w.text(tag_number(tag), vr, &String::from_utf8_lossy(&raw)),
                    Kind::Sequence => w.empty(tag_number(tag), vr),
                }
            }
            // Element headers come before their LazyValue; nothing else is
            // emitted by this reader.
            _ => {}
        }
    }
    if !wrote_available_ts {
        // Only reached when nothing after (0008,3002) was met: still in order.
        available_ts(&mut w, &ts_uid);
    }
    Ok(w.finish())
}

/// The largest deflated dataset inflated (into memory: the lazy reader
/// needs to seek, which an inflating stream cannot).
const MAX_INFLATED: u64 = 256 << 20;

/// The dataset of a Part 10 object, positioned at its first element, and
/// its transfer syntax.
fn open_dataset<R: Read + Seek>(source: R) -> Result<(String, Dataset<R>), MetadataError> {
    let mut source = BufReader::with_capacity(16 * 1024, source);
    let (meta, header_len) = telediag_archive::part10::read_header(&mut source)?;
    source.seek(SeekFrom::Start(header_len)).map_err(|e| MetadataError::Read(e.to_string()))?;
    let ts_uid = meta.transfer_syntax_uid.trim_end_matches('\0').to_owned();
    let deflated = telediag_archive::scan::is_deflated(&ts_uid).map_err(|_| MetadataError::TransferSyntax(ts_uid.clone()))?;
    if !deflated {
        return Ok((ts_uid, Dataset::Stored(source)));
    }
    let mut inflated = Vec::new();
    telediag_archive::scan::inflating_reader(&ts_uid, Box::new(source))
        .map_err(|_| MetadataError::TransferSyntax(ts_uid.clone()))?
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| MetadataError::Read(format!("cannot inflate the dataset: {e}")))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(MetadataError::Read(format!("the deflated dataset inflates to more than {MAX_INFLATED} bytes")));
    }
    Ok((ts_uid, Dataset::Inflated(std::io::Cursor::new(inflated))))
}

/// A dataset as stored, or inflated in memory.
enum Dataset<R> {
    Stored(BufReader<R>),
    Inflated(std::io::Cursor<Vec<u8>>),
}

impl<R: Read + Seek> Read for Dataset<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Dataset::Stored(r) => r.read(buf),
            Dataset::Inflated(r) => r.read(buf),
        }
    }
}

impl<R: Read + Seek> Seek for Dataset<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match self {
            Dataset::Stored(r) => r.seek(to),
            Dataset::Inflated(r) => r.seek(to),
        }
    }
}

const AVAILABLE_TS: Tag = Tag(0x0008, 0x3002);
const PIXEL_TAG: Tag = Tag(0x7FE0, 0x0010);
const PIXEL_DATA: u32 = 0x7FE0_0010;

fn available_ts(w: &mut ObjectWriter, ts_uid: &str) {
    w.text(0x0008_3002, "UI", ts_uid);
}

// Bulk data paths, written by `instance_metadata` and read back by
// `bulk_value`: `<tag>/<item from 1>/<tag>`, e.g. `00540016/1/00181074`.

/// The prefix of what is inside the sequence `tag` at `prefix`.
fn within(prefix: &str, tag: u32) -> String {
    format!("{prefix}{tag:08X}/")
}

/// The prefix of item `n` of the sequence whose prefix is `prefix`.
fn item(prefix: &str, n: impl std::fmt::Display) -> String {
    format!("{prefix}{n}/")
}

/// The path of the value `tag` at `prefix`.
fn value_at(prefix: &str, tag: u32) -> String {
    format!("{prefix}{tag:08X}")
}

fn tag_number(tag: Tag) -> u32 {
    (u32::from(tag.0) << 16) | u32::from(tag.1)
}

/// VRs whose text the Specific Character Set applies to (PS3.5 6.1.2.3).
fn is_text_with_charset(vr: &str) -> bool {
    matches!(vr, "SH" | "LO" | "UC" | "ST" | "LT" | "UT" | "PN")
}

/// One step of a bulk data path: an attribute, or an item (from 1) of the
/// sequence before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkStep {
    Tag(u32),
    Item(u32),
}

/// Reads the path after `/bulkdata/` in the URIs [`instance_metadata`]
/// writes: `7FE00010`, `00540016/1/00181074`.
pub fn parse_bulk_path(path: &str) -> Result<Vec<BulkStep>, String> {
    let bad = || format!("a bulk data path is tags and item numbers, e.g. 00540016/1/00181074; found {path:?}");
    let mut steps = Vec::new();
    for (i, part) in path.trim_matches('/').split('/').enumerate() {
        steps.push(if i % 2 == 0 {
            if part.len() != 8 {
                return Err(bad());
            }
            BulkStep::Tag(u32::from_str_radix(part, 16).map_err(|_| bad())?)
        } else {
            BulkStep::Item(part.parse::<u32>().ok().filter(|&n| n >= 1).ok_or_else(bad)?)
        });
    }
    if steps.len() % 2 == 0 || steps.len() > 2 * MAX_DEPTH {
        return Err(bad());
    }
    Ok(steps)
}

/// The largest bulk value read (the archive checked every length at ingest).
const MAX_BULK_VALUE: u32 = 256 << 20;

/// The raw value (in the stored byte order) of the attribute at `steps`.
pub fn bulk_value<R: Read + Seek>(source: R, steps: &[BulkStep]) -> Result<Vec<u8>, MetadataError> {
    let target: String = steps
        .iter()
        .map(|s| match s {
            BulkStep::Tag(t) => format!("{t:08X}"),
            BulkStep::Item(n) => n.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    let (ts_uid, dataset) = open_dataset(source)?;
    let ts = TransferSyntaxRegistry.get(&ts_uid).ok_or_else(|| MetadataError::TransferSyntax(ts_uid.clone()))?;
    let mut reader = LazyDataSetReader::new_with_ts(dataset, ts).map_err(|e| MetadataError::Read(e.to_string()))?;
    // Each level: its path prefix and the items seen in it.
    let mut stack: Vec<(String, u32, bool)> = vec![(String::new(), 0, false)];
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| MetadataError::Read(e.to_string()))?;
        match token {
            LazyDataToken::SequenceStart { tag, .. } => {
                let prefix = within(&stack.last().expect("never empty").0, tag_number(tag));
                stack.push((prefix, 0, false));
            }
            LazyDataToken::PixelSequenceStart => {
                let prefix = stack.last().expect("never empty").0.clone();
                stack.push((prefix, 0, true));
            }
            LazyDataToken::ItemStart { .. } => {
                let level = stack.last_mut().expect("never empty");
                level.1 += 1;
                let prefix = item(&level.0, level.1);
                let pixel = level.2;
                stack.push((prefix, 0, pixel));
            }
            LazyDataToken::ItemEnd | LazyDataToken::SequenceEnd => {
                if stack.len() > 1 {
                    stack.pop();
                }
                if stack.len() > MAX_DEPTH {
                    return Err(MetadataError::TooDeep);
                }
            }
            LazyDataToken::LazyItemValue { len, decoder } => decoder.skip_bytes(len).map_err(|e| MetadataError::Read(e.to_string()))?,
            LazyDataToken::LazyValue { header, decoder } => {
                let path = value_at(&stack.last().expect("never empty").0, tag_number(header.tag));
                if path == target && header.len.0 <= MAX_BULK_VALUE {
                    let mut value = Vec::with_capacity(header.len.0 as usize);
                    decoder.read_to_vec(header.len.0, &mut value).map_err(|e| MetadataError::Read(e.to_string()))?;
                    return Ok(value);
                }
                decoder.skip_bytes(header.len.0).map_err(|e| MetadataError::Read(e.to_string()))?;
            }
            _ => {}
        }
    }
    Err(MetadataError::Read(format!("the instance has no attribute at {target}")))
}

/// `documents` (stored with [`BASE_PLACEHOLDER`]) with `base` — the
/// DICOMweb root as the client reached it, e.g.
/// `https://centre.example/dicom-web` — in place of each placeholder.
pub fn with_base(document: &[u8], base: &str, out: &mut Vec<u8>) {
    let mut rest = document;
    while let Some(at) = rest.iter().position(|&b| b == BASE_PLACEHOLDER) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(base.as_bytes());
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}
