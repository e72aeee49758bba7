//! Staging files made before they are needed.
//!
//! Crash recovery finds acknowledged objects through their staging entries,
//! so an entry must be on disk before its object is acknowledged: the staging
//! directory has to be fsynced after the file is created. Creating the file
//! is also the costliest step of receiving a small object (ext4 allocates the
//! inode, on an aged filesystem by scanning past recently freed ones: 20–30 %
//! of the receiver's CPU). Both move off the acknowledgement's path here: a
//! background thread creates empty staging files for each site that is
//! sending, a batch at a time, with one directory fsync per batch; a C-STORE
//! takes one ready-made. Names carry the site (`s<site>-<id>.part`), as
//! recovery expects; a file never used has one link and no bytes, and
//! recovery deletes it like any unpublished one.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::staging::random_name;
use crate::store::sync_dir;

/// Ready files kept per sending site.
const PER_SITE: usize = 16;

/// Empty, durably named staging files, by site.
#[derive(Debug)]
pub(super) struct StagingPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    ready: HashMap<i64, Vec<PathBuf>>,
    /// Sites whose files ran low, to be refilled.
    wanted: Vec<i64>,
    stopped: bool,
}

impl StagingPool {
    /// Starts the thread that fills the pool, creating files in `dir`.
    pub(super) fn start(dir: PathBuf) -> StagingPool {
        let shared = Arc::new(Shared { dir, state: Mutex::default(), wake: Condvar::new() });
        let filler = shared.clone();
        let started = std::thread::Builder::new().name("staging-pool".into()).spawn(move || filler.fill());
        if let Err(e) = started {
            // Receiving still works: every object then creates its own file.
            tracing::warn!(error = %e, "cannot start the staging pool thread");
        }
        StagingPool { shared }
    }

    /// A ready staging file of `site_id`, whose name is already on disk; asks
    /// for more when they run low. `None` when there is none yet.
    pub(super) fn take(&self, site_id: i64) -> Option<PathBuf> {
        let mut state = self.shared.lock();
        let ready = state.ready.entry(site_id).or_default();
        let taken = ready.pop();
        if ready.len() < PER_SITE / 2 && !state.wanted.contains(&site_id) {
            state.wanted.push(site_id);
            self.shared.wake.notify_one();
        }
        taken
    }

    /// Starts filling `site_id`'s files, for an association that is about
    /// to send.
    pub(super) fn prepare(&self, site_id: i64) {
        let mut state = self.shared.lock();
        let low = state.ready.get(&site_id).is_none_or(|ready| ready.len() < PER_SITE / 2);
        if low && !state.wanted.contains(&site_id) {
            state.wanted.push(site_id);
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for StagingPool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stopped = true;
        for path in state.ready.drain().flat_map(|(_, paths)| paths) {
            let _ = std::fs::remove_file(path);
        }
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fill(&self) {
        loop {
            let site_id = {
                let mut state = self.lock();
                loop {
                    if state.stopped {
                        return;
                    }
                    if let Some(site_id) = state.wanted.pop() {
                        break site_id;
                    }
                    state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            };
            // Asked again while its last batch was being made: it may be full.
            let missing = PER_SITE.saturating_sub(self.lock().ready.get(&site_id).map_or(0, Vec::len));
            if missing == 0 {
                continue;
            }
            let made = match create_batch(&self.dir, site_id, missing) {
                Ok(made) => made,
                Err(e) => {
                    // Disk full or gone: objects create their own files and
                    // report the error themselves; try again when asked.
                    tracing::warn!(error = %e, dir = %self.dir.display(), "cannot make staging files ahead");
                    continue;
                }
            };
            let mut state = self.lock();
            if state.stopped {
                made.iter().for_each(|path| drop(std::fs::remove_file(path)));
                return;
            }
            state.ready.entry(site_id).or_default().extend(made);
        }
    }
}

/// Creates `count` empty staging files for `site_id`, then makes their names
/// durable with one fsync of the directory.
fn create_batch(dir: &Path, site_id: i64, count: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut made = Vec::with_capacity(count);
    for _ in 0..count {
        let path = dir.join(format!("s{site_id}-{}.part", random_name()));
        match File::create_new(&path) {
            Ok(_) => made.push(path),
            Err(e) => {
                made.iter().for_each(|path| drop(std::fs::remove_file(path)));
                return Err(e);
            }
        }
    }
    if let Err(e) = sync_dir(dir) {
        made.iter().for_each(|path| drop(std::fs::remove_file(path)));
        return Err(e);
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(pool: &StagingPool, site_id: i64, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.shared.lock().ready.get(&site_id).map_or(0, Vec::len) < count {
            assert!(Instant::now() < deadline, "pool not filled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn files_are_made_per_site_ahead_of_use_and_removed_when_unused() {
        let dir = tempfile::tempdir().unwrap();
        let pool = StagingPool::start(dir.path().to_owned());
        assert_eq!(pool.take(7), None, "nothing is made before a site sends");
        wait_for(&pool, 7, PER_SITE);
        let taken = pool.take(7).expect("a ready file");
        let name = taken.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("s7-") && name.ends_with(".part"), "{name}");
        assert_eq!(super::super::staging::staged_site(&taken), Some(7));
        assert_eq!(std::fs::metadata(&taken).unwrap().len(), 0);
        assert!(pool.take(8).is_none(), "another site's files are its own");
        // Taking down to half refills.
        for _ in 1..=PER_SITE / 2 {
            pool.take(7).expect("a ready file");
        }
        wait_for(&pool, 7, PER_SITE);
        let site_7 = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| super::super::staging::staged_site(&e.path()) == Some(7));
        assert_eq!(site_7.count(), PER_SITE + 1 + PER_SITE / 2, "taken files stay for their objects");
        drop(pool);
        // Only the taken ones remain: 1 + PER_SITE / 2 of site 7; site 8's
        // batch may or may not have been made before the pool was dropped.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(left.iter().filter(|p| super::super::staging::staged_site(p) == Some(7)).count(), 1 + PER_SITE / 2);
    }
}
