//! Failed logins per client address.
//!
//! Accounts lock themselves after failures in a row (the archive's
//! `record_login_failure`), which stops guessing one password; this stops
//! one address guessing across many accounts (and spending the server's
//! CPU on argon2). An address with [`MAX_FAILURES`] failures in the last
//! [`WINDOW`] is answered 429 until the oldest of them leaves the window.
//!
//! The memory is bounded: at most [`MAX_ADDRESSES`] addresses are tracked;
//! when full, those with no failure in the window are forgotten, and if
//! none are, the whole table is (losing counts is better than growing
//! without bound under a distributed attack).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins from one address allowed within [`WINDOW`].
pub const MAX_FAILURES: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
const MAX_ADDRESSES: usize = 50_000;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Attempts on names that are no account, counted as an account's are,
    /// so that a lock does not tell which names exist.
    unknown: Mutex<HashMap<String, (i64, Option<Instant>)>>,
}

impl LoginLimiter {
    /// `Some(wait)` when `address` must wait before trying again.
    pub fn blocked(&self, address: IpAddr) -> Option<Duration> {
        self.blocked_at(address, Instant::now())
    }

    /// Counts a login attempt from `address` before its password is
    /// checked (parallel attempts each count); [`Self::succeeded`] takes it
    /// back when the password was right.
    pub fn attempt(&self, address: IpAddr) {
        self.failed_at(address, Instant::now());
    }

    /// The attempt just counted was a correct login.
    pub fn succeeded(&self, address: IpAddr) {
        if let Some(times) = self.failures.lock().expect("login limiter lock").get_mut(&address) {
            times.pop_back();
        }
    }

    /// For a name that is no account: counts the attempt as
    /// `begin_login_attempt` counts an account's, locked by the same rule
    /// (`accounts::lock_ms`); `Err((attempts, wait))` while locked.
    pub fn unknown_name_attempt(&self, name: &str) -> Result<(), (i64, Duration)> {
        let now = Instant::now();
        let mut unknown = self.unknown.lock().expect("login limiter lock");
        if unknown.len() >= MAX_ADDRESSES && !unknown.contains_key(name) {
            unknown.retain(|_, (_, until)| until.is_some_and(|u| u > now));
            if unknown.len() >= MAX_ADDRESSES {
                unknown.clear();
            }
        }
        let (attempts, until) = unknown.entry(name.chars().take(64).collect()).or_insert((0, None));
        if let Some(until) = until.filter(|u| *u > now) {
            return Err((*attempts, until - now));
        }
        *attempts += 1;
        if let Some(lock) = telediag_archive::accounts::lock_ms(*attempts) {
            *until = Some(now + Duration::from_millis(lock as u64));
        }
        Ok(())
    }

    fn blocked_at(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().expect("login limiter lock");
        let times = failures.get_mut(&address)?;
        forget_old(times, now);
        if times.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + WINDOW).saturating_duration_since(now).max(Duration::from_secs(1)))
    }

    fn failed_at(&self, address: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().expect("login limiter lock");
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
            if failures.len() >= MAX_ADDRESSES {
                failures.clear();
            }
        }
        let times = failures.entry(address).or_default();
        forget_old(times, now);
        times.push_back(now);
        if times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_once_it_has_failed_too_often_until_the_window_moves_on() {
        let limiter = LoginLimiter::default();
        let (a, b) = (IpAddr::from([10, 1, 0, 1]), IpAddr::from([10, 1, 0, 2]));
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.blocked_at(a, start), None, "after {i} failures");
            limiter.failed_at(a, start + Duration::from_secs(i as u64));
        }
        let wait = limiter.blocked_at(a, start + Duration::from_secs(60)).expect("blocked after 20");
        assert_eq!(wait, WINDOW - Duration::from_secs(60), "until the first failure is 10 minutes old");
        assert_eq!(limiter.blocked_at(b, start), None, "other addresses are not affected");
        assert_eq!(limiter.blocked_at(a, start + WINDOW), None, "the first failure has left the window");
    }
}
