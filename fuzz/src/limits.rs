//! Findings a panic hook cannot catch: an allocation over the memory limit
//! (the process would abort or be killed) and a run that does not end.
//!
//! The driver registers the input being run ([`running`]); the allocator
//! ([`LimitedAllocator`]) and the watchdog ([`start_watchdog`]) write it to
//! the findings directory with plain `libc` calls — no allocation — and
//! abort, so the finding is on disk before the process dies.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// No single allocation, and no more live memory, than this: the issue's
/// stated bound for hostile input.
pub const MEMORY_LIMIT: usize = 256 * 1024 * 1024;

static INPUT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Nanoseconds since the driver started when the current run began; 0 between runs.
static RUN_STARTED: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Replaying: over the limit, panic (printing where) instead of saving.
static EXPLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes an allocation over the limit panic with a backtrace, to see where
/// a saved `oom` finding allocates (`telediag-fuzz replay`).
pub fn explain_instead_of_saving() {
    EXPLAIN.store(true, Ordering::SeqCst);
}
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// NUL-terminated directory where findings go (leaked once at start).
static DIR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// Where the allocator and the watchdog write findings.
pub fn set_findings_dir(dir: &std::path::Path) {
    let mut bytes = dir.as_os_str().as_encoded_bytes().to_vec();
    bytes.push(0);
    DIR.store(Box::leak(bytes.into_boxed_slice()).as_mut_ptr(), Ordering::SeqCst);
}

fn clock() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64 + 1
}

/// Marks `input` as the one running, until the guard is dropped.
pub fn running(input: &[u8]) -> Running {
    INPUT_PTR.store(input.as_ptr() as *mut u8, Ordering::SeqCst);
    INPUT_LEN.store(input.len(), Ordering::SeqCst);
    RUN_STARTED.store(clock(), Ordering::SeqCst);
    Running
}

pub struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUN_STARTED.store(0, Ordering::SeqCst);
        INPUT_LEN.store(0, Ordering::SeqCst);
    }
}

/// The most memory live at once so far.
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Writes the running input to `<dir>/<kind>` and aborts. No allocation.
fn die(kind: &[u8]) -> ! {
    unsafe {
        let dir = DIR.load(Ordering::SeqCst);
        if !dir.is_null() {
            let mut path = [0u8; 4096];
            let dir_len = libc::strlen(dir as *const libc::c_char).min(4000);
            std::ptr::copy_nonoverlapping(dir, path.as_mut_ptr(), dir_len);
            path[dir_len] = b'/';
            let kind_len = kind.len().min(80);
            std::ptr::copy_nonoverlapping(kind.as_ptr(), path.as_mut_ptr().add(dir_len + 1), kind_len);
            let fd = libc::open(path.as_ptr() as *const libc::c_char, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
            if fd >= 0 {
                let (ptr, len) = (INPUT_PTR.load(Ordering::SeqCst), INPUT_LEN.load(Ordering::SeqCst));
                if !ptr.is_null() {
                    libc::write(fd, ptr as *const libc::c_void, len);
                }
                libc::close(fd);
            }
            let message = b"\ntelediag-fuzz: finding written before abort: ";
            libc::write(2, message.as_ptr() as *const libc::c_void, message.len());
            libc::write(2, path.as_ptr() as *const libc::c_void, dir_len + 1 + kind_len);
            libc::write(2, b"\n".as_ptr() as *const libc::c_void, 1);
        }
        libc::abort();
    }
}

/// The system allocator, refusing (and recording) what exceeds the limit.
pub struct LimitedAllocator;

unsafe impl GlobalAlloc for LimitedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.account(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.account(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.account(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

impl LimitedAllocator {
    fn account(&self, size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        if (size > MEMORY_LIMIT || live > MEMORY_LIMIT) && RUN_STARTED.load(Ordering::Relaxed) != 0 {
            if EXPLAIN.load(Ordering::Relaxed) {
                RUN_STARTED.store(0, Ordering::SeqCst);
                panic!("allocation of {size} bytes with {live} live: over the {MEMORY_LIMIT}-byte limit");
            }
            die(b"oom");
        }
    }
}

/// Aborts, saving the input as `hang`, when one run takes longer than `limit`.
pub fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let started = RUN_STARTED.load(Ordering::SeqCst);
            if started != 0 && clock().saturating_sub(started) > limit.as_nanos() as u64 {
                die(b"hang");
            }
        }
    });
}
