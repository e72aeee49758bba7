//! Per-SOP-instance locks: held from the duplicate check until the index
//! row is committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One lock per SOP Instance UID, so that two associations sending the same
/// instance cannot both decide it is new.
#[derive(Default)]
pub(super) struct InstanceLocks {
    held: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held from the duplicate check until the index row is committed.
pub(super) struct InstanceLock {
    held: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl InstanceLocks {
    pub(super) async fn lock(&self, key: &str) -> InstanceLock {
        let mutex = {
            let mut held = self.held.lock().expect("lock map poisoned");
            held.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        InstanceLock { held: self.held.clone(), key: key.to_owned(), _guard: guard }
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
