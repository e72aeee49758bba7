//! Per-SOP-instance locks: held from the duplicate check until the index
//! row is committed, so that two senders of the same instance cannot both
//! decide it is new (and both publish "version 1" under one key).
//!
//! Within a process a mutex per UID does it. Gateways in other processes
//! share only the database: on PostgreSQL each lock is also an advisory lock
//! there, taken after the mutex (so one process waits on the server with one
//! connection per instance at most), and let go by the server itself if the
//! holder is killed. On SQLite one server process owns the database and the
//! mutex is the whole lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::db::{AdvisoryLock, Database, DbError};

type LockMap = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// One lock per SOP Instance UID.
#[derive(Default)]
pub(super) struct InstanceLocks {
    held: LockMap,
}

/// Held from the duplicate check until the index row is committed.
pub(super) struct InstanceLock {
    held: LockMap,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    across_processes: Option<AdvisoryLock>,
}

impl InstanceLocks {
    pub(super) async fn lock(&self, db: &Database, key: &str) -> Result<InstanceLock, DbError> {
        let mutex = {
            let mut held = self.held.lock().expect("lock map poisoned");
            held.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        let mut lock = InstanceLock { held: self.held.clone(), key: key.to_owned(), _guard: guard, across_processes: None };
        lock.across_processes = db.advisory_lock(&format!("instance {key}")).await?;
        Ok(lock)
    }
}

impl InstanceLock {
    /// Lets go at once, the database's lock included (dropping lets go of
    /// that a moment later, when its connection returns to the pool).
    pub(super) async fn release(mut self) {
        if let Some(lock) = self.across_processes.take() {
            lock.release().await;
        }
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("lock map poisoned");
        if let Some(mutex) = held.get(&self.key)
            && Arc::strong_count(mutex) <= 2
        {
            held.remove(&self.key);
        }
    }
}
