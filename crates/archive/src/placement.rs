//! Where the filesystem puts the archive's directories.
//!
//! ext4 places a new directory in its parent's block group, unless the parent
//! is marked as the top of unrelated hierarchies (`chattr +T`, `FS_TOPDIR_FL`):
//! then its Orlov allocator spreads the subdirectories over groups with room,
//! as it does for the directories under `/` or `/home`. The archive's trees
//! (`originals/`, `derived/`, `staging/`) are such hierarchies: one study's
//! directory has nothing to do with the next. Spread, each study's files stay
//! together in a group of their own.
//!
//! On ext4 without a journal it matters more: there the inode allocator skips
//! inodes freed in the last few minutes, testing them one at a time, so after a
//! large deletion (a retention purge; a benchmark clearing its previous round)
//! every file created in that group pays for the scan. Measured on a root
//! filesystem without a journal, after such deletions: 600 files created in a
//! directory beside the deleted ones took 620–800 ms of CPU, in a spread
//! directory 38–109 ms.
//!
//! Other filesystems ignore or refuse the flag; either is harmless, so failure
//! is not an error.

use std::path::Path;

/// `FS_TOPDIR_FL` from `linux/fs.h` (the `libc` crate does not export it).
#[cfg(target_os = "linux")]
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` so that the filesystem spreads the directories made in it
/// (see the module docs). Returns whether the mark is set.
#[cfg(target_os = "linux")]
pub(crate) fn spread_subdirectories(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(handle) = std::fs::File::open(dir) else { return false };
    let mut flags: libc::c_int = 0;
    // SAFETY: a valid open descriptor; both ioctls read or write one c_int,
    // which `flags` is, and have no other memory effects.
    unsafe {
        if libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return false;
        }
        if flags & FS_TOPDIR_FL != 0 {
            return true;
        }
        flags |= FS_TOPDIR_FL;
        libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn spread_subdirectories(_dir: &Path) -> bool {
    false
}

/// Whether `dir` carries the mark (for tests).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn spreads_subdirectories(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(handle) = std::fs::File::open(dir) else { return false };
    let mut flags: libc::c_int = 0;
    // SAFETY: as above.
    unsafe { libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0 && flags & FS_TOPDIR_FL != 0 }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_marked_once_and_stays_marked() {
        let dir = tempfile::tempdir().unwrap();
        if !spread_subdirectories(dir.path()) {
            eprintln!("skipped: the filesystem of {} does not take FS_TOPDIR_FL", dir.path().display());
            return;
        }
        assert!(spreads_subdirectories(dir.path()));
        assert!(spread_subdirectories(dir.path()), "marking again is a no-op that succeeds");
        let other = tempfile::tempdir().unwrap();
        assert!(!spreads_subdirectories(other.path()), "a fresh directory is not marked");
    }
}
