//! The DICOM JSON model (PS3.18 Annex F), written straight to bytes.
//!
//! An object is `{"GGGGEEEE": {"vr": "XX", "Value": [...]}, ...}` with its
//! attributes in tag order. Strings are split at backslashes (except the
//! single-valued LT, ST, UT, UR), IS/DS/FL/FD and the binary integers are
//! JSON numbers, PN values are objects of their alphabetic, ideographic and
//! phonetic groups, sequences are arrays of objects, and binary values are
//! `InlineBinary` (base64) or a `BulkDataURI`. An attribute without a value
//! has no `Value`. Numbers that are not numbers (a DS of "abc") are `null`
//! rather than a broken document.

use base64::Engine;

/// How one value is rendered in JSON, decided by its VR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Strings split at `\`.
    Strings,
    /// One string that may contain backslashes (LT, ST, UT, UR).
    Text,
    /// IS or DS text, written as JSON numbers.
    DecimalText,
    /// Person names.
    Names,
    /// Attribute tags (AT): 8 hex digits each.
    Tags,
    /// Little- or big-endian binary numbers of this width and kind.
    Binary {
        width: u8,
        float: bool,
        signed: bool,
    },
    /// Bytes: `InlineBinary` or `BulkDataURI`.
    Bytes,
    Sequence,
}

/// The rendering of a VR (given as its two letters).
pub fn kind_of(vr: &str) -> Kind {
    match vr {
        "LT" | "ST" | "UT" | "UR" => Kind::Text,
        "IS" | "DS" => Kind::DecimalText,
        "PN" => Kind::Names,
        "AT" => Kind::Tags,
        "US" => Kind::Binary { width: 2, float: false, signed: false },
        "SS" => Kind::Binary { width: 2, float: false, signed: true },
        "UL" => Kind::Binary { width: 4, float: false, signed: false },
        "SL" => Kind::Binary { width: 4, float: false, signed: true },
        "UV" => Kind::Binary { width: 8, float: false, signed: false },
        "SV" => Kind::Binary { width: 8, float: false, signed: true },
        "FL" => Kind::Binary { width: 4, float: true, signed: true },
        "FD" => Kind::Binary { width: 8, float: true, signed: true },
        "OB" | "OW" | "OF" | "OD" | "OL" | "OV" | "UN" => Kind::Bytes,
        "SQ" => Kind::Sequence,
        _ => Kind::Strings,
    }
}

/// Writes one JSON object of DICOM attributes; the caller adds attributes
/// in ascending tag order.
#[derive(Debug, Default)]
pub struct ObjectWriter {
    out: Vec<u8>,
    /// Whether the current object (innermost) has an attribute yet.
    first: Vec<bool>,
}

impl ObjectWriter {
    pub fn new() -> ObjectWriter {
        let mut w = ObjectWriter { out: Vec::with_capacity(4096), first: Vec::new() };
        w.open_object();
        w
    }

    /// Opens a nested object (a sequence item) or the top one.
    pub fn open_object(&mut self) {
        self.out.push(b'{');
        self.first.push(true);
    }

    pub fn close_object(&mut self) {
        self.out.push(b'}');
        self.first.pop();
    }

    /// Starts `"GGGGEEEE":{"vr":"XX"`; the caller follows with a value (or
    /// none) and [`ObjectWriter::end_attribute`].
    pub fn begin_attribute(&mut self, tag: u32, vr: &str) {
        if let Some(first) = self.first.last_mut() {
            if !*first {
                self.out.push(b',');
            }
            *first = false;
        }
        self.out.extend_from_slice(format!("\"{tag:08X}\":{{\"vr\":\"{vr}\"").as_bytes());
    }

    pub fn end_attribute(&mut self) {
        self.out.push(b'}');
    }

    /// An attribute without a value.
    pub fn empty(&mut self, tag: u32, vr: &str) {
        self.begin_attribute(tag, vr);
        self.end_attribute();
    }

    /// `,"Value":[` — then values, then [`ObjectWriter::close_values`].
    pub fn open_values(&mut self) {
        self.out.extend_from_slice(b",\"Value\":[");
    }

    pub fn close_values(&mut self) {
        self.out.push(b']');
    }

    /// A comma between array entries.
    pub fn separator(&mut self) {
        self.out.push(b',');
    }

    /// A string attribute (split at backslashes unless `kind` is
    /// [`Kind::Text`]); empty values are `null` entries, no value at all is
    /// an attribute without `Value`.
    pub fn text(&mut self, tag: u32, vr: &str, value: &str) {
        let kind = kind_of(vr);
        self.begin_attribute(tag, vr);
        if !value.is_empty() {
            self.open_values();
            match kind {
                Kind::Text => self.string(value),
                _ => {
                    for (i, v) in value.split('\\').enumerate() {
                        if i > 0 {
                            self.separator();
                        }
                        match kind {
                            Kind::Names => self.person_name(v),
                            Kind::DecimalText => self.decimal(v),
                            Kind::Tags => self.string(v.trim()),
                            _ => {
                                let v = v.trim_matches(|c: char| c == ' ' || c == '\0');
                                if v.is_empty() { self.out.extend_from_slice(b"null") } else { self.string(v) }
                            }
                        }
                    }
                }
            }
            self.close_values();
        }
        self.end_attribute();
    }

    /// An integer attribute (US, UL, IS ... given as numbers).
    pub fn integers(&mut self, tag: u32, vr: &str, values: &[i64]) {
        self.begin_attribute(tag, vr);
        if !values.is_empty() {
            self.open_values();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    self.separator();
                }
                self.out.extend_from_slice(v.to_string().as_bytes());
            }
            self.close_values();
        }
        self.end_attribute();
    }

    /// A binary numeric value of `kind` from its raw bytes.
    pub fn binary_numbers(&mut self, tag: u32, vr: &str, raw: &[u8], big_endian: bool) {
        let Kind::Binary { width, float, signed } = kind_of(vr) else {
            return self.inline_binary(tag, vr, raw);
        };
        self.begin_attribute(tag, vr);
        let width = usize::from(width);
        if raw.len() >= width {
            self.open_values();
            for (i, chunk) in raw.chunks_exact(width).enumerate() {
                if i > 0 {
                    self.separator();
                }
                let mut bytes = [0u8; 8];
                bytes[..width].copy_from_slice(chunk);
                if big_endian {
                    bytes[..width].reverse();
                }
                let text = match (width, float, signed) {
                    (2, _, false) => u16::from_le_bytes([bytes[0], bytes[1]]).to_string(),
                    (2, _, true) => i16::from_le_bytes([bytes[0], bytes[1]]).to_string(),
                    (4, false, false) => u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")).to_string(),
                    (4, false, true) => i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")).to_string(),
                    (4, true, _) => finite(f64::from(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")))),
                    (8, false, false) => u64::from_le_bytes(bytes).to_string(),
                    (8, false, true) => i64::from_le_bytes(bytes).to_string(),
                    _ => finite(f64::from_le_bytes(bytes)),
                };
                self.out.extend_from_slice(text.as_bytes());
            }
            self.close_values();
        }
        self.end_attribute();
    }

    /// Bytes inline, base64.
    pub fn inline_binary(&mut self, tag: u32, vr: &str, raw: &[u8]) {
        self.begin_attribute(tag, vr);
        if !raw.is_empty() {
            self.out.extend_from_slice(b",\"InlineBinary\":\"");
            self.out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(raw).as_bytes());
            self.out.push(b'"');
        }
        self.end_attribute();
    }

    /// A value left out, to be fetched from `uri`.
    pub fn bulk_data(&mut self, tag: u32, vr: &str, uri: &str) {
        self.begin_attribute(tag, vr);
        self.out.extend_from_slice(b",\"BulkDataURI\":");
        self.string(uri);
        self.end_attribute();
    }

    /// A value left out, at `path` under the base URL that is put in when
    /// the document is served (see [`crate::metadata::with_base`]).
    pub fn bulk_data_at_base(&mut self, tag: u32, vr: &str, path: &str) {
        self.begin_attribute(tag, vr);
        self.out.extend_from_slice(b",\"BulkDataURI\":\"");
        self.out.push(crate::metadata::BASE_PLACEHOLDER);
        // Paths are UIDs, hex tags, digits and slashes: nothing to escape.
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(b'"');
        self.end_attribute();
    }

    /// Attribute tags (AT) from raw bytes: pairs of 16-bit group, element.
    pub fn tags(&mut self, tag: u32, raw: &[u8], big_endian: bool) {
        self.begin_attribute(tag, "AT");
        if raw.len() >= 4 {
            self.open_values();
            for (i, pair) in raw.chunks_exact(4).enumerate() {
                if i > 0 {
                    self.separator();
                }
                let half = |b: &[u8]| if big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) };
                self.out.extend_from_slice(format!("\"{:04X}{:04X}\"", half(&pair[..2]), half(&pair[2..])).as_bytes());
            }
            self.close_values();
        }
        self.end_attribute();
    }

    /// Starts a sequence attribute; items follow with
    /// [`ObjectWriter::open_object`] / `close_object`, separated by
    /// [`ObjectWriter::separator`], then [`ObjectWriter::end_sequence`].
    pub fn begin_sequence(&mut self, tag: u32) {
        self.begin_attribute(tag, "SQ");
        self.open_values();
    }

    pub fn end_sequence(&mut self) {
        self.close_values();
        self.end_attribute();
    }

    fn person_name(&mut self, value: &str) {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
        if value.is_empty() {
            self.out.extend_from_slice(b"null");
            return;
        }
        self.out.push(b'{');
        let mut first = true;
        for (group, name) in value.split('=').zip(["Alphabetic", "Ideographic", "Phonetic"]) {
            let group = group.trim_end_matches([' ', '^']);
            if group.is_empty() {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.out.extend_from_slice(format!("\"{name}\":").as_bytes());
            self.string(group);
        }
        self.out.push(b'}');
    }

    /// IS/DS text: the number as written when it is a JSON number
    /// ("+1", ".5", "007" are not, and are normalised through a float);
    /// text that is no number stays a string (PS3.18 F.2.3 allows both).
    fn decimal(&mut self, value: &str) {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
        if value.is_empty() {
            self.out.extend_from_slice(b"null");
        } else if is_json_number(value) {
            self.out.extend_from_slice(value.as_bytes());
        } else {
            match value.parse::<f64>() {
                Ok(n) if n.is_finite() => self.out.extend_from_slice(finite(n).as_bytes()),
                _ => self.string(value),
            }
        }
    }

    /// A JSON string, escaped.
    pub fn string(&mut self, value: &str) {
        // serde_json's escaping writes control characters as \u00XX, so a
        // raw control byte never appears in the output but where we put it
        // (see [`crate::metadata::BASE_PLACEHOLDER`]).
        serde_json::to_writer(&mut self.out, value).expect("writing to a Vec cannot fail");
    }

    /// Writes raw bytes of JSON (a value made elsewhere).
    pub fn raw(&mut self, json: &[u8]) {
        self.out.extend_from_slice(json);
    }

    /// The document so far; the top object is closed if still open.
    pub fn finish(mut self) -> Vec<u8> {
        while !self.first.is_empty() {
            self.close_object();
        }
        self.out
    }
}

/// Whether `s` is a number in JSON's grammar:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let start = i;
    match digits(&mut i) {
        0 => return false,
        n if n > 1 && b[start] == b'0' => return false,
        _ => {}
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A float as JSON: finite values as Rust prints them (shortest round
/// trip), others `null`.
fn finite(n: f64) -> String {
    if n.is_finite() { format!("{n}") } else { "null".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(build: impl FnOnce(&mut ObjectWriter)) -> serde_json::Value {
        let mut w = ObjectWriter::new();
        build(&mut w);
        serde_json::from_slice(&w.finish()).expect("valid JSON")
    }

    #[test]
    fn names_split_into_their_groups() {
        let v = doc(|w| w.text(0x0010_0010, "PN", "Zhang^Wei=张^伟\\Li^Na"));
        assert_eq!(
            v,
            serde_json::json!({"00100010": {"vr": "PN", "Value": [
                {"Alphabetic": "Zhang^Wei", "Ideographic": "张^伟"}, {"Alphabetic": "Li^Na"}]}})
        );
        let v = doc(|w| w.text(0x0010_0010, "PN", "=张^三"));
        assert_eq!(v["00100010"]["Value"][0], serde_json::json!({"Ideographic": "张^三"}));
    }

    #[test]
    fn numbers_are_numbers_and_text_keeps_its_backslashes() {
        let v = doc(|w| {
            w.text(0x0018_0050, "DS", "0.625\\+1\\abc\\ 2.5e1 ");
            w.binary_numbers(0x0028_0010, "US", &[0x00, 0x02], false);
            w.binary_numbers(0x0028_0011, "US", &[0x02, 0x00], true);
            w.binary_numbers(0x0018_9306, "FD", &f64::NAN.to_le_bytes(), false);
            w.text(0x0020_4000, "LT", "a\\b");
            w.text(0x0008_0060, "CS", "CT ");
            w.empty(0x0008_0050, "SH");
        });
        assert_eq!(v["00180050"]["Value"], serde_json::json!([0.625, 1, "abc", 25.0]));
        assert_eq!(v["00280010"]["Value"], serde_json::json!([512]));
        assert_eq!(v["00280011"]["Value"], serde_json::json!([512]));
        assert_eq!(v["00189306"]["Value"], serde_json::json!([null]));
        assert_eq!(v["00204000"]["Value"], serde_json::json!(["a\\b"]));
        assert_eq!(v["00080060"]["Value"], serde_json::json!(["CT"]));
        assert_eq!(v["00080050"], serde_json::json!({"vr": "SH"}));
    }

    #[test]
    fn sequences_binary_and_bulk_data() {
        let v = doc(|w| {
            w.begin_sequence(0x0008_1115);
            w.open_object();
            w.text(0x0020_000E, "UI", "1.2.3\0");
            w.close_object();
            w.separator();
            w.open_object();
            w.close_object();
            w.end_sequence();
            w.inline_binary(0x0009_1001, "OB", b"\x01\x02");
            w.bulk_data(0x7FE0_0010, "OW", "http://x/bulk");
        });
        assert_eq!(v["00081115"]["Value"], serde_json::json!([{"0020000E": {"vr": "UI", "Value": ["1.2.3"]}}, {}]));
        assert_eq!(v["00091001"]["InlineBinary"], "AQI=");
        assert_eq!(v["7FE00010"]["BulkDataURI"], "http://x/bulk");
    }
}
