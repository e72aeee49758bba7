//! Edge coverage without a nightly toolchain.
//!
//! Built with `-C passes=sancov-module` and
//! `-C llvm-args=-sanitizer-coverage-trace-pc-guard` (stable codegen
//! options; see `fuzz/run.sh`), LLVM gives every basic block a guard and
//! calls [`__sanitizer_cov_trace_pc_guard`] when it runs. Guards are
//! numbered at start-up; an edge is (previous block >> 1) ^ this block, as
//! AFL counts them, into a 64 Ki map of hit counts. Without those flags the
//! hooks are never called and the driver falls back to blind mutation.

use std::sync::atomic::{AtomicU32, Ordering};

pub const MAP_SIZE: usize = 1 << 16;

static mut MAP: [u8; MAP_SIZE] = [0; MAP_SIZE];
static mut PREVIOUS: u32 = 0;
static NEXT_GUARD: AtomicU32 = AtomicU32::new(1);

/// Numbers each module's guards once.
///
/// # Safety
/// Called by the instrumented code with the bounds of a guard section.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard_init(start: *mut u32, stop: *mut u32) {
    unsafe {
        if start == stop || *start != 0 {
            return;
        }
        let mut guard = start;
        while guard < stop {
            *guard = NEXT_GUARD.fetch_add(1, Ordering::Relaxed);
            guard = guard.add(1);
        }
    }
}

/// Counts the edge into this block.
///
/// # Safety
/// Called by the instrumented code with one of its guards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard(guard: *mut u32) {
    unsafe {
        let here = *guard;
        let slot = ((here ^ PREVIOUS) as usize) & (MAP_SIZE - 1);
        let map = &raw mut MAP;
        (*map)[slot] = (*map)[slot].wrapping_add(1);
        PREVIOUS = here >> 1;
    }
}

/// Guards numbered so far: zero when the build is not instrumented.
pub fn guards() -> u32 {
    NEXT_GUARD.load(Ordering::Relaxed) - 1
}

/// Clears the map before an execution.
pub fn reset() {
    unsafe {
        std::ptr::write_bytes((&raw mut MAP).cast::<u8>(), 0, MAP_SIZE);
        PREVIOUS = 0;
    }
}

/// AFL's hit-count classes: 1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+.
fn class(count: u8) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        _ => 128,
    }
}

/// Every (edge, hit class) seen so far.
pub struct Seen {
    classes: Vec<u8>,
    pub edges: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { classes: vec![0; MAP_SIZE], edges: 0 }
    }
}

impl Seen {
    /// Folds the last execution's map in; true when it showed something new.
    pub fn merge(&mut self) -> bool {
        let map = unsafe { std::slice::from_raw_parts((&raw const MAP).cast::<u8>(), MAP_SIZE) };
        let mut new = false;
        // Most of the map is zero: look at it eight bytes at a time.
        for (words, seen) in map.chunks_exact(8).zip(self.classes.chunks_exact_mut(8)) {
            if u64::from_ne_bytes(words.try_into().expect("eight bytes")) == 0 {
                continue;
            }
            for (seen, &count) in seen.iter_mut().zip(words) {
                let c = class(count);
                if c != 0 && *seen & c == 0 {
                    if *seen == 0 {
                        self.edges += 1;
                    }
                    *seen |= c;
                    new = true;
                }
            }
        }
        new
    }
}
