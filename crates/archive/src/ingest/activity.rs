//! How busy receiving is, so that background work can give way to senders.
//!
//! A sender waits for each object's acknowledgement, and on a small server
//! every derived file the pipeline writes meanwhile lengthens the fsync that
//! acknowledgement waits for (and its decoding takes CPU the receiver wants).
//! [`Archive::ingest_quiet_for`](super::Archive::ingest_quiet_for) lets the
//! pipeline see when senders are waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Objects being received or published, and when the last one finished.
pub(super) struct IngestActivity {
    in_flight: AtomicUsize,
    /// Nanoseconds from `epoch` to when the last object finished; 0 for never.
    last_finished: AtomicU64,
    epoch: Instant,
}

impl IngestActivity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(IngestActivity { in_flight: AtomicUsize::new(0), last_finished: AtomicU64::new(0), epoch: Instant::now() })
    }

    /// Marks an object as in flight until the returned guard is dropped.
    pub(super) fn start(self: &Arc<Self>) -> ActiveObject {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        ActiveObject(self.clone())
    }

    /// Zero while an object is in flight; otherwise the time since the last
    /// one finished (or since the archive opened).
    pub(super) fn quiet_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_nanos(self.last_finished.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Held while one object is received and published.
pub(super) struct ActiveObject(Arc<IngestActivity>);

impl Drop for ActiveObject {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_nanos() as u64;
        self.0.last_finished.fetch_max(now, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_an_object_is_in_flight_and_quiet_counts_from_the_last_one() {
        let activity = IngestActivity::new();
        let first = activity.start();
        let second = activity.start();
        assert_eq!(activity.quiet_for(), Duration::ZERO);
        drop(first);
        assert_eq!(activity.quiet_for(), Duration::ZERO, "one object is still arriving");
        drop(second);
        std::thread::sleep(Duration::from_millis(30));
        let quiet = activity.quiet_for();
        assert!(quiet >= Duration::from_millis(30) && quiet < Duration::from_secs(5), "{quiet:?}");
    }
}
