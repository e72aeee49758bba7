//! Group commit for directory fsyncs.
//!
//! Publishing an object makes its new name durable with an fsync of the
//! series directory. Eight associations storing one series call it for the
//! same directory at the same moment, and each call is a write of the
//! directory's blocks and, on a journaled filesystem, a device cache flush.
//! An fsync that *starts* after a name was linked makes that name durable, so
//! callers arriving while one is running need not each run their own: they
//! wait for the next one, which a single caller runs for all of them.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

/// Shared by every publisher of one store (and of one staging directory).
#[derive(Debug, Default)]
pub(crate) struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, Rounds>>,
    finished: Condvar,
}

/// The fsync rounds of one directory.
#[derive(Debug, Default)]
struct Rounds {
    /// Rounds started so far; round `n` is the `n`-th fsync of the directory.
    started: u64,
    /// The last round that finished, and whether it succeeded.
    finished: u64,
    finished_ok: bool,
    running: bool,
    /// Callers inside [`DirSyncs::sync`] for this directory.
    callers: usize,
}

impl DirSyncs {
    /// Returns once an fsync of `dir` that started after this call began has
    /// succeeded, running it with `fsync` unless another caller already is.
    pub(crate) fn sync(&self, dir: &Path, fsync: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        let rounds = dirs.entry(dir.to_owned()).or_default();
        rounds.callers += 1;
        // A round already running may have read the directory before our name
        // was in it; the next one to start cannot have.
        let needed = rounds.started + 1;
        let result = loop {
            let rounds = dirs.get_mut(dir).expect("kept while it has callers");
            if rounds.finished >= needed {
                break if rounds.finished_ok {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("fsync of directory {} failed", dir.display())))
                };
            }
            if rounds.running {
                dirs = self.finished.wait(dirs).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            rounds.running = true;
            rounds.started += 1;
            let round = rounds.started;
            drop(dirs);
            let outcome = fsync(dir);
            dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
            let rounds = dirs.get_mut(dir).expect("kept while it has callers");
            rounds.running = false;
            rounds.finished = round;
            rounds.finished_ok = outcome.is_ok();
            self.finished.notify_all();
            // `round >= needed` always holds for the caller that ran it.
            break outcome;
        };
        let rounds = dirs.get_mut(dir).expect("kept while it has callers");
        rounds.callers -= 1;
        if rounds.callers == 0 && !rounds.running {
            dirs.remove(dir);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn callers_arriving_during_an_fsync_share_the_next_one() {
        let syncs = Arc::new(DirSyncs::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let slow = {
            let calls = calls.clone();
            move |_: &Path| {
                calls.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                Ok(())
            }
        };
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (syncs, slow) = (syncs.clone(), slow.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 10 }));
                    syncs.sync(Path::new("/series"), slow)
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        // The first caller's fsync, then one more for the seven that came
        // while it ran: not eight.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(syncs.dirs.lock().unwrap().is_empty(), "finished directories are forgotten");
    }

    /// Starts a successful fsync of `/d` lasting `millis` on another thread
    /// and returns once it is running.
    fn fsync_running(syncs: &Arc<DirSyncs>, millis: u64) -> std::thread::JoinHandle<io::Result<()>> {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let syncs = syncs.clone();
        let running = std::thread::spawn(move || {
            syncs.sync(Path::new("/d"), move |_| {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(millis));
                Ok(())
            })
        });
        started_rx.recv().unwrap();
        running
    }

    #[test]
    fn a_caller_is_never_covered_by_an_fsync_that_started_before_it() {
        let syncs = Arc::new(DirSyncs::default());
        let first = fsync_running(&syncs, 50);
        // Arrives while the first fsync runs: it must get one of its own.
        let ran = AtomicUsize::new(0);
        syncs
            .sync(Path::new("/d"), |_| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        first.join().unwrap().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_fsync_fails_every_caller_it_covered() {
        let syncs = Arc::new(DirSyncs::default());
        let first = fsync_running(&syncs, 30);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let syncs = syncs.clone();
                std::thread::spawn(move || {
                    syncs.sync(Path::new("/d"), |_| {
                        std::thread::sleep(Duration::from_millis(10));
                        Err(io::Error::other("disk gone"))
                    })
                })
            })
            .collect();
        first.join().unwrap().unwrap();
        for waiter in waiters {
            assert!(waiter.join().unwrap().is_err(), "a caller covered by a failed fsync was told it succeeded");
        }
        // A later caller runs its own and is not stuck with the old failure.
        syncs.sync(Path::new("/d"), |_| Ok(())).unwrap();
    }
}
