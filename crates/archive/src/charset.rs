//! Text decoding under DICOM's Specific Character Set (0008,0005).
//!
//! dicom-rs decodes text with the first value of Specific Character Set only,
//! which is right for `ISO_IR 192`, `GB18030` and `GBK` but garbles the ISO 2022
//! code-extension forms (`ISO 2022 IR 6\ISO 2022 IR 87`, `\ISO 2022 IR 149`,
//! `\ISO 2022 IR 58`), where escape sequences switch character sets inside one
//! value. The index needs names exactly right, so the archive reads the raw bytes
//! of the few text attributes it indexes and decodes them here (PS3.5 §6.1,
//! PS3.3 C.12.1.1.2), with `encoding_rs` doing the per-set decoding.
//!
//! Objects from county hospitals often carry Chinese text with no Specific
//! Character Set at all. Such bytes are read as UTF-8 when they are valid UTF-8,
//! otherwise as GB18030 when that decodes without error, otherwise as Latin-1:
//! a wrong guess there shows as odd characters, never as a rejected object.

use encoding_rs::Encoding;

/// The graphic set in G0 (bytes 0x21–0x7E).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G0 {
    Ascii,
    /// ISO-IR 14, JIS X 0201 Romaji: ASCII with ¥ and ‾.
    JisRoman,
    /// ISO-IR 87, JIS X 0208: two 7-bit bytes per character.
    Jis0208,
    /// ISO-IR 159, JIS X 0212: two 7-bit bytes per character.
    Jis0212,
}

/// The graphic set in G1 (bytes 0xA1–0xFE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G1 {
    None,
    /// A single-byte ISO 8859 (or TIS 620) set, decoded one byte at a time.
    SingleByte(&'static Encoding),
    /// ISO-IR 100 decoded directly (ISO 8859-1 maps bytes to U+0000–U+00FF).
    Latin1,
    /// ISO-IR 13, JIS X 0201 half-width katakana.
    Katakana,
    /// ISO-IR 149, KS X 1001: two bytes per character, as in EUC-KR.
    KsX1001,
    /// ISO-IR 58, GB 2312: two bytes per character, as in EUC-CN.
    Gb2312,
}

/// How a whole value is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// No Specific Character Set: guess (see the module docs).
    Undeclared,
    Utf8,
    /// GB18030 or GBK (GBK is a subset; one decoder reads both).
    Gb18030,
    /// A single-byte set or ISO 2022 with code extensions, starting in these sets.
    Iso2022 {
        g0: G0,
        g1: G1,
    },
}

/// A Specific Character Set, resolved once per object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharacterSet {
    scheme: Scheme,
}

impl Default for CharacterSet {
    fn default() -> Self {
        CharacterSet { scheme: Scheme::Undeclared }
    }
}

fn single_byte_set(term: &str) -> Option<G1> {
    let enc = match term {
        "100" => return Some(G1::Latin1),
        "101" => encoding_rs::ISO_8859_2,
        "109" => encoding_rs::ISO_8859_3,
        "110" => encoding_rs::ISO_8859_4,
        "144" => encoding_rs::ISO_8859_5,
        "127" => encoding_rs::ISO_8859_6,
        "126" => encoding_rs::ISO_8859_7,
        "138" => encoding_rs::ISO_8859_8,
        "148" => encoding_rs::WINDOWS_1254,
        "203" => encoding_rs::ISO_8859_15,
        "166" => encoding_rs::WINDOWS_874,
        _ => return None,
    };
    Some(G1::SingleByte(enc))
}

impl CharacterSet {
    /// Resolves the values of (0008,0005) as found in the object, e.g.
    /// `["GB18030"]` or `["", "ISO 2022 IR 87"]`. Unknown terms fall back to the
    /// undeclared guess rather than failing: a name with odd characters is better
    /// than a study that cannot be stored.
    pub fn from_terms<S: AsRef<str>>(terms: &[S]) -> CharacterSet {
        let first = terms.first().map(|t| t.as_ref().trim()).unwrap_or("");
        let scheme = match first {
            "" => {
                if terms.len() > 1 {
                    Scheme::Iso2022 { g0: G0::Ascii, g1: G1::None }
                } else {
                    Scheme::Undeclared
                }
            }
            "ISO_IR 192" => Scheme::Utf8,
            "GB18030" | "GBK" => Scheme::Gb18030,
            "ISO_IR 6" | "ISO 2022 IR 6" => Scheme::Iso2022 { g0: G0::Ascii, g1: G1::None },
            "ISO_IR 13" | "ISO 2022 IR 13" => Scheme::Iso2022 { g0: G0::JisRoman, g1: G1::Katakana },
            "ISO 2022 IR 87" => Scheme::Iso2022 { g0: G0::Jis0208, g1: G1::None },
            "ISO 2022 IR 159" => Scheme::Iso2022 { g0: G0::Jis0212, g1: G1::None },
            "ISO 2022 IR 149" => Scheme::Iso2022 { g0: G0::Ascii, g1: G1::KsX1001 },
            "ISO 2022 IR 58" => Scheme::Iso2022 { g0: G0::Ascii, g1: G1::Gb2312 },
            other => {
                let number = other.strip_prefix("ISO_IR ").or_else(|| other.strip_prefix("ISO 2022 IR "));
                match number.and_then(single_byte_set) {
                    Some(g1) => Scheme::Iso2022 { g0: G0::Ascii, g1 },
                    None => Scheme::Undeclared,
                }
            }
        };
        CharacterSet { scheme }
    }

    /// Decodes one raw attribute value (all its values, backslashes kept) to
    /// UTF-8, with DICOM's trailing padding removed.
    pub fn decode(&self, raw: &[u8]) -> String {
        let text = match self.scheme {
            Scheme::Utf8 => String::from_utf8_lossy(raw).into_owned(),
            Scheme::Gb18030 => encoding_rs::GB18030.decode_without_bom_handling(raw).0.into_owned(),
            Scheme::Undeclared => decode_undeclared(raw),
            Scheme::Iso2022 { g0, g1 } => decode_iso2022(raw, g0, g1),
        };
        text.trim_end_matches(['\0', ' ']).trim_start_matches(' ').to_owned()
    }
}

fn decode_undeclared(raw: &[u8]) -> String {
    if raw.is_ascii() {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Ok(s) = std::str::from_utf8(raw) {
        return s.to_owned();
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(raw);
    if !had_errors {
        return text.into_owned();
    }
    raw.iter().map(|&b| b as char).collect()
}

fn decode_pair(encoding: &'static Encoding, bytes: &[u8], out: &mut String) {
    out.push_str(&encoding.decode_without_bom_handling(bytes).0);
}

/// Reads the escape sequence that starts at `raw[0] == ESC`, returning how many
/// bytes it spans and which set it designates. Unknown escapes are skipped.
fn escape(raw: &[u8], g0: &mut G0, g1: &mut G1) -> usize {
    let seq: &[u8] = &raw[1..raw.len().min(4)];
    let (len, designation) = match seq {
        [b'(', b'B', ..] => (3, Some((Some(G0::Ascii), None))),
        [b'(', b'J', ..] => (3, Some((Some(G0::JisRoman), None))),
        [b')', b'I', ..] => (3, Some((None, Some(G1::Katakana)))),
        [b'$', b'B', ..] => (3, Some((Some(G0::Jis0208), None))),
        [b'$', b'@', ..] => (3, Some((Some(G0::Jis0208), None))),
        [b'$', b'(', b'D'] => (4, Some((Some(G0::Jis0212), None))),
        [b'$', b')', b'C'] => (4, Some((None, Some(G1::KsX1001)))),
        [b'$', b')', b'A'] => (4, Some((None, Some(G1::Gb2312)))),
        [b'-', final_byte, ..] => {
            let term = match final_byte {
                b'A' => "100",
                b'B' => "101",
                b'C' => "109",
                b'D' => "110",
                b'L' => "144",
                b'G' => "127",
                b'F' => "126",
                b'H' => "138",
                b'M' => "148",
                b'b' => "203",
                b'T' => "166",
                _ => "",
            };
            (3, single_byte_set(term).map(|set| (None, Some(set))))
        }
        _ => (1, None),
    };
    if let Some((new_g0, new_g1)) = designation {
        if let Some(set) = new_g0 {
            *g0 = set;
        }
        if let Some(set) = new_g1 {
            *g1 = set;
        }
    }
    len.min(raw.len())
}

fn decode_iso2022(raw: &[u8], initial_g0: G0, initial_g1: G1) -> String {
    const ESC: u8 = 0x1b;
    let mut out = String::with_capacity(raw.len());
    let (mut g0, mut g1) = (initial_g0, initial_g1);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == ESC {
            i += escape(&raw[i..], &mut g0, &mut g1);
            continue;
        }
        if b < 0x80 {
            match g0 {
                G0::Jis0208 | G0::Jis0212 if b > 0x20 && i + 1 < raw.len() && raw[i + 1] > 0x20 => {
                    let pair = [b | 0x80, raw[i + 1] | 0x80];
                    if g0 == G0::Jis0208 {
                        decode_pair(encoding_rs::EUC_JP, &pair, &mut out);
                    } else {
                        decode_pair(encoding_rs::EUC_JP, &[0x8f, pair[0], pair[1]], &mut out);
                    }
                    i += 2;
                    continue;
                }
                G0::JisRoman if b == 0x5c => out.push('¥'),
                G0::JisRoman if b == 0x7e => out.push('‾'),
                _ => out.push(b as char),
            }
            // Delimiters return to the initial sets (PS3.5 §6.1.2.5.3).
            if matches!(b, b'^' | b'=' | b'\\' | b'\r' | b'\n' | b'\t' | 0x0c) {
                g0 = initial_g0;
                g1 = initial_g1;
            }
            i += 1;
            continue;
        }
        match g1 {
            G1::Latin1 | G1::None => {
                out.push(b as char);
                i += 1;
            }
            G1::SingleByte(enc) => {
                decode_pair(enc, &[b], &mut out);
                i += 1;
            }
            G1::Katakana => {
                match char::from_u32(0xff61 + u32::from(b.wrapping_sub(0xa1))) {
                    Some(c) if (0xa1..=0xdf).contains(&b) => out.push(c),
                    _ => out.push(char::REPLACEMENT_CHARACTER),
                }
                i += 1;
            }
            G1::KsX1001 | G1::Gb2312 => {
                let end = (i + 2).min(raw.len());
                let enc = if g1 == G1::KsX1001 { encoding_rs::EUC_KR } else { encoding_rs::GBK };
                decode_pair(enc, &raw[i..end], &mut out);
                i = end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(terms: &[&str], raw: &[u8], expected: &str) {
        let got = CharacterSet::from_terms(terms).decode(raw);
        assert_eq!(got, expected, "terms {terms:?}, raw {raw:02x?}");
    }

    #[test]
    fn decodes_the_character_sets_of_the_standard() {
        // GB18030 and GBK: 张三 / 王小明
        check(&["GB18030"], &[0xd5, 0xc5, 0xc8, 0xfd], "张三");
        check(&["GBK"], &[0xcd, 0xf5, 0xd0, 0xa1, 0xc3, 0xf7, b' '], "王小明");
        // UTF-8
        check(&["ISO_IR 192"], "Wang^XiaoDong=王^小东=".as_bytes(), "Wang^XiaoDong=王^小东=");
        // Latin-1
        check(&["ISO_IR 100"], b"Buc^J\xe9r\xf4me", "Buc^Jérôme");
        // Greek and Cyrillic single-byte sets
        check(&["ISO_IR 126"], b"\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2", "Διονυσιος");
        check(&["ISO_IR 144"], b"\xbc\xde\xe1\xda\xd2\xd0", "Москва");
        // PS3.5 H.3.1: Japanese with ISO 2022 IR 87, escapes inside a PN.
        check(
            &["", "ISO 2022 IR 87"],
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
        );
        // PS3.5 I.2: Korean with ISO 2022 IR 149.
        check(
            &["", "ISO 2022 IR 149"],
            b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf",
            "Hong^Gildong=洪^吉洞=홍^길동",
        );
        // PS3.5 K.2: Chinese with ISO 2022 IR 58.
        check(&["", "ISO 2022 IR 58"], b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=", "Zhang^XiaoDong=张^小东=");
        // Undeclared: valid UTF-8, then GB18030, then Latin-1.
        check(&[], "李四".as_bytes(), "李四");
        check(&[], &[0xc0, 0xee, 0xcb, 0xc4], "李四");
        check(&[""], b"plain^ascii ", "plain^ascii");
    }
}
