//! Mutations, AFL's havoc stage in small: bit flips, random and
//! "interesting" bytes and words (lengths like 0, 0x7FFF_FFFF, 0xFFFF_FFFF
//! are what parsers of declared sizes trip over), arithmetic, block
//! insertion, deletion and duplication, truncation, and splicing with
//! another input of the corpus.

/// A small, fast generator (xorshift64*), seeded per run so a finding's
/// path can be retraced.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

const INTERESTING_8: [u8; 9] = [0, 1, 0x10, 0x20, 0x40, 0x7F, 0x80, 0xFE, 0xFF];
const INTERESTING_16: [u16; 8] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF];
const INTERESTING_32: [u32; 9] = [0, 1, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF];

/// Applies 1 to 16 mutations to `input`, keeping it at most `max_len` bytes.
pub fn havoc(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let rounds = 1 << rng.below(5);
    for _ in 0..rounds {
        mutate_once(rng, input, other);
    }
    input.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    let len = input.len();
    match rng.below(14) {
        0 if len > 0 => {
            let at = rng.below(len * 8);
            input[at / 8] ^= 1 << (at % 8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = rng.next_u64() as u8;
        }
        2 if len > 0 => {
            let at = rng.below(len);
            input[at] = INTERESTING_8[rng.below(INTERESTING_8.len())];
        }
        3 if len >= 2 => {
            let at = rng.below(len - 1);
            let value = INTERESTING_16[rng.below(INTERESTING_16.len())];
            let bytes = if rng.below(2) == 0 { value.to_le_bytes() } else { value.to_be_bytes() };
            input[at..at + 2].copy_from_slice(&bytes);
        }
        4 if len >= 4 => {
            let at = rng.below(len - 3);
            let value = INTERESTING_32[rng.below(INTERESTING_32.len())];
            let bytes = if rng.below(2) == 0 { value.to_le_bytes() } else { value.to_be_bytes() };
            input[at..at + 4].copy_from_slice(&bytes);
        }
        5 if len > 0 => {
            let at = rng.below(len);
            let delta = 1 + rng.below(35) as u8;
            input[at] = if rng.below(2) == 0 { input[at].wrapping_add(delta) } else { input[at].wrapping_sub(delta) };
        }
        6 if len >= 4 => {
            // Arithmetic on a little-endian word: a length nudged past the end.
            let at = rng.below(len - 3);
            let word = u32::from_le_bytes(input[at..at + 4].try_into().expect("four bytes"));
            let delta = 1 + rng.below(1024) as u32;
            let word = if rng.below(2) == 0 { word.wrapping_add(delta) } else { word.wrapping_sub(delta) };
            input[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
        7 if len > 1 => {
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(256));
            input.drain(from..from + n);
        }
        8 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let fill = rng.next_u64() as u8;
            input.splice(at..at, std::iter::repeat_n(fill, n));
        }
        9 if len > 0 => {
            // Duplicate a block: repeated elements, nested structures.
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(512));
            let block = input[from..from + n].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, block);
        }
        10 if len > 1 => {
            let at = rng.below(len);
            input.truncate(at.max(1));
        }
        11 if !other.is_empty() => {
            // Splice: our head, another input's tail.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        12 if len > 1 && !other.is_empty() => {
            // Overwrite a block with one from another input.
            let from = rng.below(other.len());
            let n = 1 + rng.below((other.len() - from).min(len).min(256));
            let at = rng.below(len - n.min(len - 1));
            let end = (at + n).min(len);
            input[at..end].copy_from_slice(&other[from..from + (end - at)]);
        }
        _ if len > 2 => {
            // Copy a block within the input.
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(128));
            let to = rng.below(len - n.min(len - 1));
            let n = n.min(len - to);
            input.copy_within(from..from + n, to);
        }
        _ => input.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn havoc_changes_inputs_and_respects_the_length_limit() {
        let mut rng = Rng::new(7);
        let seed = b"DICM\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00".to_vec();
        let mut changed = 0;
        for _ in 0..10_000 {
            let mut input = seed.clone();
            havoc(&mut rng, &mut input, b"other input", 64);
            assert!(input.len() <= 64);
            changed += usize::from(input != seed);
        }
        assert!(changed > 9_000, "{changed} of 10,000 changed");
        let mut empty = Vec::new();
        for _ in 0..1_000 {
            havoc(&mut rng, &mut empty, b"", 16);
        }
    }
}
