//! The centre's rules the workflow applies: how long a reader may hold a
//! request idle, turnaround deadlines, automatic assignment per modality,
//! and the centre's clock offset. Read from the `[worklist]` settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How urgent: sets the turnaround deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Stat,
    Urgent,
    #[default]
    Routine,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Stat => "stat",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::Stat, Priority::Urgent, Priority::Routine].into_iter().find(|p| p.as_str() == s)
    }
}

/// How a site's (or a modality's) requests reach readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Qualified readers see the pool and claim (抢单).
    Pool,
    /// Assigned by rules: credentials, same patient, least workload.
    Auto,
}

impl AssignmentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentMode::Pool => "pool",
            AssignmentMode::Auto => "auto",
        }
    }
    pub fn parse(s: &str) -> Option<AssignmentMode> {
        [AssignmentMode::Pool, AssignmentMode::Auto].into_iter().find(|m| m.as_str() == s)
    }
}

/// Turnaround deadlines in minutes, per priority: `default` and per modality.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Turnaround {
    pub stat: BTreeMap<String, u64>,
    pub urgent: BTreeMap<String, u64>,
    pub routine: BTreeMap<String, u64>,
}

impl Default for Turnaround {
    fn default() -> Self {
        let map = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Turnaround {
            // X-ray (and anything unnamed) 30 min, CT/MR 60, ECG 15.
            stat: map(&[("default", 30), ("CT", 60), ("MR", 60), ("ECG", 15)]),
            urgent: map(&[("default", 4 * 60)]),
            routine: map(&[("default", 24 * 60)]),
        }
    }
}

impl Turnaround {
    /// Minutes allowed to report a request of `priority` and `modality`.
    pub fn minutes(&self, priority: Priority, modality: Option<&str>) -> u64 {
        let table = match priority {
            Priority::Stat => &self.stat,
            Priority::Urgent => &self.urgent,
            Priority::Routine => &self.routine,
        };
        modality.and_then(|m| table.get(m)).or_else(|| table.get("default")).copied().unwrap_or(match priority {
            Priority::Stat => 30,
            Priority::Urgent => 240,
            Priority::Routine => 1440,
        })
    }

    /// The deadline of a request whose images arrived at `from` (Unix ms).
    pub fn deadline(&self, from: i64, priority: Priority, modality: Option<&str>) -> i64 {
        from + 60_000 * self.minutes(priority, modality) as i64
    }
}

/// The rules in force.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A held request with no activity for this many seconds returns to the pool.
    pub lock_secs: u64,
    pub turnaround: Turnaround,
    /// Assignment mode per modality, overriding the site's (e.g. `ECG = "auto"`).
    pub assignment_by_modality: BTreeMap<String, AssignmentMode>,
    /// The centre's offset from UTC: which calendar day "today" and a
    /// registration's date are.
    pub utc_offset_minutes: i32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { lock_secs: 30 * 60, turnaround: Turnaround::default(), assignment_by_modality: BTreeMap::new(), utc_offset_minutes: 480 }
    }
}

impl Policy {
    /// When a lock taken now lapses.
    pub fn lock_until(&self, now: i64) -> i64 {
        now + self.lock_secs as i64 * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_turnarounds_follow_the_brief() {
        let t = Turnaround::default();
        for (priority, modality, minutes) in [
            (Priority::Stat, Some("DX"), 30),
            (Priority::Stat, Some("CR"), 30),
            (Priority::Stat, Some("CT"), 60),
            (Priority::Stat, Some("MR"), 60),
            (Priority::Stat, Some("ECG"), 15),
            (Priority::Urgent, Some("CT"), 240),
            (Priority::Routine, None, 1440),
        ] {
            assert_eq!(t.minutes(priority, modality), minutes, "{priority:?} {modality:?}");
        }
    }
}
