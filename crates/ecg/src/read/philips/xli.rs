//! XLI, the waveform compression of Philips' resting ECG XML: per lead, a
//! chunk of LZW-compressed bytes that unpack to 16-bit second differences.
//!
//! As sierra-ecg-tools documents it (and its C, C# and Java readers
//! agree): each chunk is an 8-byte little-endian header — the compressed
//! size (i32), a field that is always 1 (u16), and the first difference
//! term (i16) — then `size` bytes of LZW: fixed 10-bit codes packed
//! most-significant bit first, a dictionary of the 256 bytes growing to
//! code 1022, no clear code, 1023 at the end. The decompressed bytes are
//! all the samples' high bytes, then all their low bytes. The values are
//! second differences: `s[i] = 2 s[i-1] - s[i-2] - e[i]`, with `e[2]` the
//! header's term and `e[i] = d[i-1] - 64` after, and `s[0]`, `s[1]` as
//! stored.
//!
//! Every length is checked against what the caller expects before it is
//! used: a chunk cannot claim more bytes than remain, and no chunk
//! decompresses past its lead's declared samples.

/// Why XLI data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XliError {
    #[error("chunk {chunk} ends after its {available}-byte header and data; its header says {declared} bytes of data")]
    ChunkTruncated { chunk: usize, declared: i64, available: usize },
    #[error("chunk {chunk} decompresses to more than the {expected} samples each lead holds")]
    TooLong { chunk: usize, expected: usize },
    #[error("chunk {chunk} holds {found} samples, expected {expected}")]
    TooShort { chunk: usize, found: usize, expected: usize },
    #[error("chunk {chunk}: LZW code {code} before it is defined")]
    BadCode { chunk: usize, code: u16 },
    #[error("the XLI data holds {found} chunks, expected at least {expected} (one per lead)")]
    MissingLeads { found: usize, expected: usize },
    #[error("chunk {chunk}: sample {sample} decodes to {value}, outside the 16-bit samples the format holds")]
    OutOfRange { chunk: usize, sample: usize, value: i64 },
}

const CODE_BITS: u32 = 10;
/// The last code the dictionary may hold; 1023 ends the stream.
const LAST_CODE: u16 = 1022;

/// Decodes the first `leads` chunks of `data`, each to `samples` values.
/// Channels after those (Philips writes 16, the last four calibration
/// only) are not decoded.
pub fn decode(data: &[u8], leads: usize, samples: usize) -> Result<Vec<Vec<i32>>, XliError> {
    let mut out = Vec::with_capacity(leads.min(16));
    let mut at = 0;
    while out.len() < leads {
        let chunk = out.len();
        let Some(header) = data.get(at..at + 8) else {
            return Err(XliError::MissingLeads { found: chunk, expected: leads });
        };
        let size = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let first = i16::from_le_bytes([header[6], header[7]]);
        let available = data.len() - at - 8;
        let size = usize::try_from(size).ok().filter(|s| *s <= available).ok_or(XliError::ChunkTruncated {
            chunk,
            declared: i64::from(size),
            available,
        })?;
        let bytes = lzw(&data[at + 8..at + 8 + size], 2 * samples).map_err(|e| match e {
            LzwError::TooLong => XliError::TooLong { chunk, expected: samples },
            LzwError::BadCode(code) => XliError::BadCode { chunk, code },
        })?;
        if bytes.len() / 2 < samples {
            return Err(XliError::TooShort { chunk, found: bytes.len() / 2, expected: samples });
        }
        let samples = second_differences(&unpack(&bytes[..2 * samples]), i32::from(first))
            .map_err(|(sample, value)| XliError::OutOfRange { chunk, sample, value })?;
        out.push(samples);
        at += 8 + size;
    }
    Ok(out)
}

enum LzwError {
    TooLong,
    BadCode(u16),
}

/// Plain LZW with 10-bit codes, at most `limit` bytes out.
fn lzw(data: &[u8], limit: usize) -> Result<Vec<u8>, LzwError> {
    let mut dictionary: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut out = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0usize);
    loop {
        while bits <= 24 && at < data.len() {
            buffer |= u32::from(data[at]) << (24 - bits);
            at += 1;
            bits += 8;
        }
        if bits < CODE_BITS {
            break;
        }
        let code = (buffer >> (32 - CODE_BITS)) as u16;
        buffer <<= CODE_BITS;
        bits -= CODE_BITS;
        if code > LAST_CODE {
            break;
        }
        let current = match dictionary.get(usize::from(code)) {
            Some(entry) => entry.clone(),
            // The one code not yet in the table: the previous string and its first byte.
            None if usize::from(code) == dictionary.len() && !previous.is_empty() => {
                let mut entry = previous.clone();
                entry.push(previous[0]);
                entry
            }
            None => return Err(LzwError::BadCode(code)),
        };
        if out.len() + current.len() > limit {
            return Err(LzwError::TooLong);
        }
        out.extend_from_slice(&current);
        if !previous.is_empty() && dictionary.len() <= usize::from(LAST_CODE) {
            let mut entry = std::mem::take(&mut previous);
            entry.push(current[0]);
            dictionary.push(entry);
        }
        previous = current;
    }
    Ok(out)
}

/// High bytes first, then low bytes, as signed 16-bit values.
fn unpack(bytes: &[u8]) -> Vec<i32> {
    let n = bytes.len() / 2;
    (0..n).map(|i| i32::from(i16::from_be_bytes([bytes[i], bytes[n + i]]))).collect()
}

/// Undoes the second differences; `Err((sample, value))` when a sample
/// leaves the 16-bit range (only hostile data does: real samples are
/// 16-bit, and wrapping would pass garbage on).
fn second_differences(d: &[i32], first: i32) -> Result<Vec<i32>, (usize, i64)> {
    let mut s = d.to_vec();
    if s.len() < 3 {
        return Ok(s);
    }
    let (mut x, mut y, mut term) = (i64::from(s[0]), i64::from(s[1]), i64::from(first));
    for i in 2..s.len() {
        let z = 2 * y - x - term;
        s[i] = i16::try_from(z).map_err(|_| (i, z))?.into();
        term = i64::from(d[i]) - 64;
        x = y;
        y = z;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An LZW encoder as the format defines it, for tests: 10-bit codes,
    /// most significant bit first, the table growing to 1022, then 1023.
    fn compress(input: &[u8]) -> Vec<u8> {
        let mut table: std::collections::HashMap<Vec<u8>, u16> = (0..=255u8).map(|b| (vec![b], u16::from(b))).collect();
        let mut codes = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        for &byte in input {
            let mut next = current.clone();
            next.push(byte);
            if table.contains_key(&next) {
                current = next;
            } else {
                codes.push(table[&current]);
                if table.len() <= usize::from(LAST_CODE) {
                    let code = table.len() as u16;
                    table.insert(next, code);
                }
                current = vec![byte];
            }
        }
        if !current.is_empty() {
            codes.push(table[&current]);
        }
        codes.push(1023);
        let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
        for code in codes {
            buffer = (buffer << CODE_BITS) | u32::from(code);
            bits += CODE_BITS;
            while bits >= 8 {
                out.push((buffer >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push((buffer << (8 - bits)) as u8);
        }
        out
    }

    /// One chunk holding `samples`, encoded as XLI encodes them.
    fn chunk(samples: &[i32]) -> Vec<u8> {
        let n = samples.len();
        let mut d = vec![samples[0], samples[1]];
        // s[i] = 2 s[i-1] - s[i-2] - e[i], e[2] = first, e[i] = d[i-1] - 64.
        let e: Vec<i32> = (2..n).map(|i| 2 * samples[i - 1] - samples[i - 2] - samples[i]).collect();
        d.extend(e[1..].iter().map(|v| v + 64));
        d.push(0);
        let mut bytes: Vec<u8> = d.iter().map(|v| (*v as i16).to_be_bytes()[0]).collect();
        bytes.extend(d.iter().map(|v| (*v as i16).to_be_bytes()[1]));
        let data = compress(&bytes);
        let mut out = (data.len() as i32).to_le_bytes().to_vec();
        out.extend(1u16.to_le_bytes());
        out.extend((e[0] as i16).to_le_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn chunks_decode_to_the_samples_they_were_made_from() {
        let lead_a: Vec<i32> = (0..2000).map(|i| ((i as f64 / 40.0).sin() * 300.0) as i32).collect();
        let lead_b: Vec<i32> = (0..2000).map(|i| if i % 400 < 20 { 900 } else { -30 + i % 7 }).collect();
        let mut data = chunk(&lead_a);
        data.extend(chunk(&lead_b));
        data.extend(chunk(&lead_b));
        let decoded = decode(&data, 2, 2000).unwrap();
        assert_eq!(decoded, [lead_a, lead_b.clone()]);
        assert_eq!(decode(&data, 4, 2000).unwrap_err(), XliError::MissingLeads { found: 3, expected: 4 });
    }

    #[test]
    fn lengths_that_lie_are_refused_before_use() {
        let lead: Vec<i32> = (0..500).map(|i| i % 50).collect();
        let good = chunk(&lead);
        let mut lying = good.clone();
        lying[..4].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(decode(&lying, 1, 500), Err(XliError::ChunkTruncated { chunk: 0, .. })));
        lying[..4].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(matches!(decode(&lying, 1, 500), Err(XliError::ChunkTruncated { declared: -5, .. })));
        assert_eq!(decode(&good, 1, 400).unwrap_err(), XliError::TooLong { chunk: 0, expected: 400 });
        assert_eq!(decode(&good, 1, 600).unwrap_err(), XliError::TooShort { chunk: 0, found: 500, expected: 600 });
    }

    /// Differences chosen to run past 16 bits are refused, not wrapped.
    #[test]
    fn samples_beyond_sixteen_bits_are_refused() {
        assert_eq!(second_differences(&[0, 32_000, 0, 0], 0), Err((2, 64_000)));
        assert_eq!(second_differences(&[0, 10, 64, 64], 0), Ok(vec![0, 10, 20, 30]));
    }

    /// A few hundred bytes of LZW can claim megabytes; the output stops at
    /// the lead's declared length.
    #[test]
    fn a_compression_bomb_stops_at_the_declared_length() {
        let zeros = vec![0u8; 1 << 20];
        let data = compress(&zeros);
        assert!(data.len() < 20_000, "{}", data.len());
        let mut chunk = (data.len() as i32).to_le_bytes().to_vec();
        chunk.extend([1, 0, 0, 0]);
        chunk.extend(data);
        assert_eq!(decode(&chunk, 1, 5000).unwrap_err(), XliError::TooLong { chunk: 0, expected: 5000 });
    }
}
