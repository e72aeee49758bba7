//! Thumbnails for many files at once, on a rayon pool sized by the caller.

use std::path::{Path, PathBuf};

use crate::render::{RenderError, render_file};
use crate::thumbnail::{Thumbnail, ThumbnailFormat, make_thumbnail};

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Longest side of a thumbnail, in pixels. Default 256.
    pub size: u32,
    /// Worker threads. Default: every core.
    pub threads: usize,
    pub format: ThumbnailFormat,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { size: 256, threads: std::thread::available_parallelism().map_or(1, |n| n.get()), format: ThumbnailFormat::Jpeg }
    }
}

/// The imaging thread pool: rayon, sized once, kept apart from the async
/// runtime so decoding never stalls network or HTTP work.
pub struct ImagingPool(rayon::ThreadPool);

/// How the pool's threads compete for the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Like any other thread: for commands whose whole job is rendering.
    Normal,
    /// Below everything else (`SCHED_IDLE`): in the server, where a sender
    /// waits on every C-STORE acknowledgement and a thumbnail can wait a few
    /// milliseconds. The threads still use every core that is idle, and the
    /// scheduler keeps a sliver of CPU for them under sustained load, so
    /// thumbnails lag behind a busy receiver but are never starved.
    Background,
}

impl ImagingPool {
    pub fn new(threads: usize, priority: Priority) -> Result<ImagingPool, String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("imaging-{i}"))
            .start_handler(move |_| {
                if priority == Priority::Background {
                    lower_this_thread();
                }
            })
            .build()
            .map(ImagingPool)
            .map_err(|e| format!("cannot start {threads} imaging threads: {e}"))
    }

    /// Runs `work` on the pool.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) {
        self.0.spawn(work);
    }
}

/// Puts the calling thread in the idle scheduling class (Linux schedules
/// threads, so this affects that thread alone).
#[cfg(target_os = "linux")]
fn lower_this_thread() {
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // A failure is not fatal: rendering then merely competes with receiving.
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_IDLE, &param);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() {}

/// What the pipeline makes of one object: a thumbnail and a full-resolution
/// 8-bit preview of its first frame.
#[derive(Debug, Clone)]
pub struct Derived {
    pub thumbnail: Thumbnail,
    pub preview: Thumbnail,
    pub frames: u32,
}

/// Renders the first frame once and makes both the `size` thumbnail (JPEG)
/// and the preview (PNG up to 1 megapixel, JPEG quality 90 above).
pub fn derive_file(path: &Path, size: u32) -> Result<Derived, RenderError> {
    let rendered = render_file(path, 0)?;
    let thumbnail = make_thumbnail(&rendered.image, size, rendered.pixel_aspect, ThumbnailFormat::Jpeg).map_err(RenderError::Decode)?;
    let (w, h) = (rendered.image.width(), rendered.image.height());
    let format = if u64::from(w) * u64::from(h) <= 1_000_000 { ThumbnailFormat::Png } else { ThumbnailFormat::Jpeg };
    let preview = make_thumbnail(&rendered.image, w.max(h), rendered.pixel_aspect, format).map_err(RenderError::Decode)?;
    Ok(Derived { thumbnail, preview, frames: rendered.frames })
}

/// [`derive_file`] for a stored object read through `reader`: only the
/// first frame's bytes are read where the object allows it (the archive's
/// objects live in a store that may serve byte ranges, not in a file).
pub fn derive_object<R: std::io::Read + std::io::Seek>(reader: R, size: u32) -> Result<Derived, RenderError> {
    let rendered = crate::source::ObjectFrames::open(reader)?.render(0, None)?;
    let thumbnail = make_thumbnail(&rendered.image, size, rendered.pixel_aspect, ThumbnailFormat::Jpeg).map_err(RenderError::Decode)?;
    let (w, h) = (rendered.image.width(), rendered.image.height());
    let format = if u64::from(w) * u64::from(h) <= 1_000_000 { ThumbnailFormat::Png } else { ThumbnailFormat::Jpeg };
    let preview = make_thumbnail(&rendered.image, w.max(h), rendered.pixel_aspect, format).map_err(RenderError::Decode)?;
    Ok(Derived { thumbnail, preview, frames: rendered.frames })
}

/// The thumbnail of the first frame of one file.
pub fn thumbnail_file(path: &Path, size: u32, format: ThumbnailFormat) -> Result<(Thumbnail, u32), RenderError> {
    let rendered = render_file(path, 0)?;
    let thumbnail = make_thumbnail(&rendered.image, size, rendered.pixel_aspect, format).map_err(RenderError::Decode)?;
    Ok((thumbnail, rendered.frames))
}

/// Makes the first-frame thumbnail of every file in `files` on a pool of
/// `options.threads` threads, calling `done` (from a worker) as each
/// finishes, in no particular order.
pub fn thumbnail_files<F>(files: &[PathBuf], options: &BatchOptions, done: F) -> Result<(), String>
where
    F: Fn(&Path, Result<(Thumbnail, u32), RenderError>) + Sync,
{
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .thread_name(|i| format!("imaging-{i}"))
        .build()
        .map_err(|e| format!("cannot start {} imaging threads: {e}", options.threads))?;
    pool.install(|| {
        files.par_iter().for_each(|path| done(path, thumbnail_file(path, options.size, options.format)));
    });
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy_on(pool: &ImagingPool) -> i32 {
        let (tx, rx) = std::sync::mpsc::channel();
        // SAFETY: queries the calling (pool) thread's own policy.
        pool.spawn(move || tx.send(unsafe { libc::sched_getscheduler(0) }).unwrap());
        rx.recv().unwrap()
    }

    /// In the server the pool renders only on CPU that receiving leaves idle.
    #[test]
    fn background_pools_render_in_the_idle_class() {
        assert_eq!(policy_on(&ImagingPool::new(1, Priority::Background).unwrap()), libc::SCHED_IDLE);
        assert_eq!(policy_on(&ImagingPool::new(1, Priority::Normal).unwrap()), libc::SCHED_OTHER);
    }
}
