//! Per-SOP-instance locks: held from the duplicate check until the index
//! row is committed, so that two senders of the same instance cannot both
//! decide it is new (and both publish "version 1" under one key).
//!
//! Within a process a mutex per UID does it, from the announcement on.
//! Gateways in other processes share only the database: on PostgreSQL the
//! lock is also an advisory lock there, taken once the bytes are in
//! ([`InstanceLock::hold_across_processes`], so that a connection is held
//! only for verification, publication and indexing, not for a slow
//! sender's transfer), after which the stored versions are read again; the
//! server lets go of it if the holder is killed. On SQLite one server
//! process owns the database and the mutex is the whole lock.

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
    pub(super) async fn lock(&self, key: &str) -> Result<InstanceLock, DbError> {
        let mutex = {
            let mut held = self.held.lock().expect("lock map poisoned");
            held.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        Ok(InstanceLock { held: self.held.clone(), key: key.to_owned(), _guard: guard, across_processes: None })
    }
}

impl InstanceLock {
    /// Extends the lock to every process on the database (PostgreSQL);
    /// whether it did, in which case what was read under the process's
    /// lock alone must be read again.
    pub(super) async fn hold_across_processes(&mut self, db: &Database) -> Result<bool, DbError> {
        if self.across_processes.is_none() {
            self.across_processes = db.advisory_lock(&format!("instance {}", self.key)).await?;
        }
        Ok(self.across_processes.is_some())
    }

    /// Fails if the lock across processes was taken and has since been
    /// lost with its connection, when another gateway may hold it now.
    pub(super) async fn confirm(&mut self) -> Result<(), DbError> {
        match &mut self.across_processes {
            Some(lock) => lock.confirm().await,
            None => Ok(()),
        }
    }

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
