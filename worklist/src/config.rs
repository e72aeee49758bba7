//! The worklist's settings: turnaround times, locks, the centre's name and
//! address as printed on reports. Part of the `[worklist]` TOML section.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::requests::{AssignmentMode, Priority};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorklistConfig {
    /// Printed at the top of every report and in the CA's name.
    pub centre_name: String,
    /// Where the verification page is reached from outside (the QR code's URL).
    pub public_url: String,
    /// The centre's offset from UTC for dates on reports and "today" on the dashboard.
    pub utc_offset_minutes: i32,
    /// A claimed request with no activity for this many seconds returns to the pool.
    pub lock_secs: u64,
    pub turnaround: Turnaround,
    /// Assignment mode per modality, overriding the site's (e.g. `ECG = "auto"`).
    pub assignment_by_modality: BTreeMap<String, AssignmentMode>,
    /// A CJK font for reports; the system's WenQuanYi or Noto CJK when unset.
    pub report_font: Option<PathBuf>,
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
}

impl Default for WorklistConfig {
    fn default() -> Self {
        WorklistConfig {
            centre_name: "远程诊断中心".into(),
            public_url: "http://localhost:8080".into(),
            utc_offset_minutes: 8 * 60,
            lock_secs: 30 * 60,
            turnaround: Turnaround::default(),
            assignment_by_modality: BTreeMap::new(),
            report_font: None,
        }
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
