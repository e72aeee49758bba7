//! Step 2: an object arriving into its staging file, hashed and written back
//! to disk as it comes, plus the staging-file naming that recovery reads.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{IngestError, Prior};
use crate::part10::FileMeta;

/// An object being received: write its dataset bytes, then hand it to
/// [`Archive::commit`]. Dropping it removes the partial file.
///
/// Bytes are buffered and written in 256 KiB chunks, and each chunk's
/// write-back to disk is started at once (`sync_file_range`, Linux), so the
/// disk works while the network is still delivering the rest of the object
/// and the fsync before the acknowledgement only waits for the tail.
pub struct IncomingObject {
    pub(super) file: File,
    pub(super) buffer: Vec<u8>,
    /// Bytes of the file already handed to the kernel.
    pub(super) written: u64,
    pub(super) path: PathBuf,
    pub(super) entry: super::StagingEntry,
    pub(super) hasher: ContentHasher,
    pub(super) header_len: u64,
    pub(super) dataset_len: u64,
    pub(super) meta: FileMeta,
    /// Step 1, running while the bytes arrive.
    pub(super) prior: tokio::task::JoinHandle<Result<Prior, IngestError>>,
    /// Counts this object as arriving until it is acknowledged or dropped.
    pub(super) arrival: Option<Arrival>,
}

/// One object counted as arriving (see [`crate::Archive::objects_arriving`])
/// for as long as this lives.
pub(super) struct Arrival(Arc<AtomicUsize>);

impl Arrival {
    pub(super) fn new(count: &Arc<AtomicUsize>) -> Arrival {
        count.fetch_add(1, Ordering::Relaxed);
        Arrival(count.clone())
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IncomingObject {
    /// Appends dataset bytes.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.dataset_len += chunk.len() as u64;
        if self.buffer.is_empty() && chunk.len() >= STAGING_BUFFER {
            // A whole PDU's worth: straight to the file, no copy.
            self.file.write_all(chunk)?;
            start_writeback(&self.file, self.written, chunk.len() as u64);
            self.written += chunk.len() as u64;
            return Ok(());
        }
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= STAGING_BUFFER {
            self.flush_buffer()?;
        }
        Ok(())
    }

    pub(super) fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buffer)?;
        start_writeback(&self.file, self.written, self.buffer.len() as u64);
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    pub fn dataset_len(&self) -> u64 {
        self.dataset_len
    }
}

impl Drop for IncomingObject {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            self.prior.abort();
        }
    }
}

pub(super) const STAGING_BUFFER: usize = 256 * 1024;

/// The content hash of a dataset: XXH3-128, which keeps up with the network
/// and the disk (BLAKE3 cost a sixth of the gateway's CPU at 8 associations).
/// It only finds duplicate candidates: a match is confirmed byte for byte
/// before anything is treated as a duplicate, so a collision, accidental or
/// crafted, can never make the archive drop an object.
#[derive(Default)]
pub(super) struct ContentHasher(xxhash_rust::xxh3::Xxh3);

impl ContentHasher {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// 32 hex digits.
    pub(super) fn finish(self) -> String {
        format!("{:032x}", self.0.digest128())
    }
}

impl Write for ContentHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk without
/// waiting for them (the fsync before the acknowledgement still waits).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor and a plain range; the call has no
    // memory effects, and failure only means write-back starts later.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

pub(super) fn random_name() -> String {
    format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

pub(super) fn staged_site(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix('s')?.split('-').next()?.parse().ok()
}

/// Copies `input` to `path`, hashing the bytes from `header_len` on.
pub(super) fn copy_hashing(input: &mut impl Read, path: &Path, header_len: u64) -> io::Result<(u64, String)> {
    let mut out = BufWriter::with_capacity(STAGING_BUFFER, File::create(path)?);
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; STAGING_BUFFER];
    let mut offset = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let skip = header_len.saturating_sub(offset).min(n as u64) as usize;
        hasher.update(&buf[skip..n]);
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
    out.flush()?;
    Ok((offset, hasher.finish()))
}
