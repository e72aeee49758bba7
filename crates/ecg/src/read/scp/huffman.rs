//! SCP-ECG Huffman decoding (EN 1064 section 2 tables, the standard's
//! default table, table switching) followed by first- or second-difference
//! reconstruction.

use crate::record::{EcgError, SourceFormat};

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(SourceFormat::ScpEcg, reason)
}

/// One code structure of a table.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    /// Bits of the prefix that identify this entry.
    pub prefix_bits: u8,
    /// Prefix plus the bits of an original value that follows it.
    pub total_bits: u8,
    /// `false`: this code switches to table number `value` (EN 1064's mode 0).
    pub is_value: bool,
    pub value: i16,
    /// The prefix, most significant bit first as it appears in the stream.
    pub prefix: u32,
}

/// One Huffman table, indexed by (prefix length, prefix) so that a code is
/// found in one lookup per bit read, whatever the table's size: a hostile
/// table of thousands of entries costs no more per bit than the default one.
#[derive(Debug, Clone, Default)]
pub struct Table {
    codes: std::collections::HashMap<(u8, u32), Code>,
    longest: u8,
}

impl Table {
    fn push(&mut self, code: Code) {
        self.longest = self.longest.max(code.prefix_bits);
        // Of two entries with the same prefix the first wins, as a linear
        // search over the stored order would have it.
        self.codes.entry((code.prefix_bits, code.prefix)).or_insert(code);
    }
}

/// EN 1064 Annex C's default table: 0 → `0`, ±n (n = 1..8) → n+1 ones,
/// a zero and a sign bit; then 8-bit and 16-bit escapes for larger values.
pub fn default_table() -> Table {
    let mut table = Table::default();
    table.push(Code { prefix_bits: 1, total_bits: 1, is_value: true, value: 0, prefix: 0 });
    for n in 1..=8u8 {
        let bits = n + 2;
        let ones = ((1u32 << (n + 1)) - 1) << 1; // n+1 ones then a 0
        for (value, sign) in [(n as i16, 0u32), (-(n as i16), 1)] {
            let prefix = (ones << 1 | sign) & ((1 << bits) - 1);
            table.push(Code { prefix_bits: bits, total_bits: bits, is_value: true, value, prefix });
        }
    }
    table.push(Code { prefix_bits: 10, total_bits: 18, is_value: true, value: 0, prefix: 0b11_1111_1110 });
    table.push(Code { prefix_bits: 10, total_bits: 26, is_value: true, value: 0, prefix: 0b11_1111_1111 });
    table
}

/// Parses section 2's body: `19999` tables means "the default table".
pub fn parse_tables(body: &[u8]) -> Result<Vec<Table>, EcgError> {
    let count = read_u16(body, 0)?;
    if count == 19999 {
        return Ok(vec![default_table()]);
    }
    let mut tables = Vec::new();
    let mut at = 2;
    for t in 0..count {
        let structures = read_u16(body, at)? as usize;
        at += 2;
        let mut table = Table::default();
        for _ in 0..structures {
            let entry = body.get(at..at + 9).ok_or_else(|| invalid(format!("Huffman table {t} is cut short in section 2")))?;
            let prefix_bits = entry[0];
            if prefix_bits == 0 || prefix_bits > 32 || entry[1] < prefix_bits || entry[1] - prefix_bits > 16 {
                return Err(invalid(format!(
                    "Huffman table {t}: code of {} prefix bits and {} total bits is malformed",
                    entry[0], entry[1]
                )));
            }
            // The base code is stored with its bits reversed.
            let stored = u32::from_le_bytes([entry[5], entry[6], entry[7], entry[8]]);
            let prefix = stored.reverse_bits() >> (32 - prefix_bits as u32);
            table.push(Code {
                prefix_bits,
                total_bits: entry[1],
                is_value: entry[2] != 0,
                value: i16::from_le_bytes([entry[3], entry[4]]),
                prefix,
            });
            at += 9;
        }
        tables.push(table);
    }
    if tables.is_empty() {
        return Err(invalid("section 2 declares no Huffman tables"));
    }
    Ok(tables)
}

fn read_u16(body: &[u8], at: usize) -> Result<u16, EcgError> {
    body.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or_else(|| invalid("section 2 is cut short"))
}

struct Bits<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: u8) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = *self.bytes.get(self.position / 8)?;
            let bit = (byte >> (7 - self.position % 8)) & 1;
            value = value << 1 | bit as u32;
            self.position += 1;
        }
        Some(value)
    }
}

/// Decodes `count` samples of one lead; `difference` is section 5/6's
/// "difference data used" (0 none, 1 first, 2 second difference).
pub fn decode(bytes: &[u8], tables: &[Table], difference: u8, count: usize) -> Result<Vec<i32>, EcgError> {
    if difference > 2 {
        return Err(invalid(format!("difference encoding {difference} is not defined (0, 1, 2 are)")));
    }
    // Every sample takes at least one bit: a count the bytes cannot hold is
    // refused before anything is allocated for it.
    if count > bytes.len().saturating_mul(8) {
        return Err(invalid(format!("lead data of {} bytes cannot hold the {count} samples declared (at most one per bit)", bytes.len())));
    }
    let mut bits = Bits { bytes, position: 0 };
    let mut table = &tables[0];
    let mut out: Vec<i32> = Vec::with_capacity(count);
    while out.len() < count {
        let code = next_code(&mut bits, table)
            .ok_or_else(|| invalid(format!("lead data ends after {} of {count} samples (truncated or wrong table)", out.len())))?;
        if !code.is_value {
            table = tables
                .get(code.value as usize)
                .ok_or_else(|| invalid(format!("Huffman code switches to table {}, which section 2 does not define", code.value)))?;
            continue;
        }
        let mut value = code.value as i32;
        let extra = code.total_bits - code.prefix_bits;
        if extra > 0 {
            let raw = bits.take(extra).ok_or_else(|| invalid("lead data ends inside a value"))?;
            let shift = 32 - extra as u32;
            value = ((raw << shift) as i32) >> shift;
        }
        let n = out.len();
        // Wrapping: hostile differences must not overflow (a real lead
        // stays far inside i32).
        value = match (difference, n) {
            (1, 1..) => value.wrapping_add(out[n - 1]),
            (2, 2..) => value.wrapping_add(out[n - 1].wrapping_mul(2)).wrapping_sub(out[n - 2]),
            _ => value,
        };
        out.push(value);
    }
    Ok(out)
}

fn next_code<'t>(bits: &mut Bits, table: &'t Table) -> Option<&'t Code> {
    // A prefix code: read bit by bit until an entry's prefix matches.
    let mut code = 0u32;
    for length in 1..=table.longest {
        code = code << 1 | bits.take(1)?;
        if let Some(entry) = table.codes.get(&(length, code)) {
            return Some(entry);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of EN 1064 (second differences, default table),
    /// with the corrected sixth byte that every implementation uses.
    #[test]
    fn decodes_the_standards_example() {
        let bytes = [0xFF, 0x83, 0x7F, 0xE0, 0xE6, 0xF1, 0x53, 0x65, 0x59, 0xB6, 0x5B, 0x96, 0x4B, 0x96, 0x00];
        let want = [13, 14, 15, 14, 16, 18, 19, 20, 22, 22, 23, 23, 23, 22, 22, 20, 17, 15, 12, 8, 6, 3, 1, 0, -2, -2, -3, -3];
        let got = decode(&bytes, &[default_table()], 2, want.len()).unwrap();
        assert_eq!(got, want);
    }

    /// A declared sample count the bytes cannot hold is refused before
    /// anything is allocated (0xFFFFFFFF samples asked 17 GB).
    #[test]
    fn a_count_beyond_the_bytes_is_refused_without_allocating() {
        let err = decode(&[0; 4], &[default_table()], 0, u32::MAX as usize).unwrap_err().to_string();
        assert!(err.contains("cannot hold the 4294967295 samples"), "{err}");
        assert_eq!(decode(&[0; 4], &[default_table()], 0, 32).unwrap(), vec![0; 32], "32 zeros fit in 32 bits");
    }

    /// Second differences of extreme values wrap instead of overflowing.
    #[test]
    fn extreme_differences_do_not_overflow() {
        let mut table = Table::default();
        table.push(Code { prefix_bits: 1, total_bits: 17, is_value: true, value: 0, prefix: 1 });
        // 1000 × (prefix "1", then 32767 in 16 bits): second differences
        // that pass i32::MAX after about 360 samples.
        let mut bits = Vec::new();
        for _ in 0..1000 {
            bits.push(1u8);
            bits.extend((0..16).map(|i| (0x7FFFu16 >> (15 - i) & 1) as u8));
        }
        let bytes: Vec<u8> = bits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |b, (i, bit)| b | bit << (7 - i))).collect();
        assert_eq!(decode(&bytes, &[table], 2, 1000).unwrap().len(), 1000);
    }

    #[test]
    fn truncated_data_is_an_error_naming_the_sample() {
        let err = decode(&[0xFF], &[default_table()], 0, 8).unwrap_err().to_string();
        assert!(err.contains("after 0 of 8 samples"), "{err}");
    }
}
