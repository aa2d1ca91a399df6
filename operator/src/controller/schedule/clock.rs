//! Where a schedule reconcile's "now" comes from. In production, the system clock. End-to-end
//! tests replay days (seed 003: the operator down over three game days) in seconds, so the
//! operator also accepts a test-only clock: a file holding an RFC 3339 instant
//! (`--test-clock-file`, hidden, or `TIPOFF_TEST_CLOCK_FILE`), read at every reconcile. It
//! moves only the schedules' "now"; runs, Jobs and leases keep the system clock.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

/// The clock of the schedule controller.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Test only: the instant written in this file (the system clock while it is missing or
    /// unreadable).
    File(PathBuf),
}

impl Clock {
    /// Now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::File(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or_else(Timestamp::now),
        }
    }

    /// The longest wait before a schedule is planned again: a test clock can jump at any time,
    /// so it is looked at every second.
    pub fn max_requeue(&self) -> Option<Duration> {
        match self {
            Clock::System => None,
            Clock::File(_) => Some(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_clock_reads_its_instant_and_falls_back_to_the_system_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let clock = Clock::File(path.clone());
        let before = Timestamp::now();
        assert!(clock.now() >= before, "no file: the system clock");
        std::fs::write(&path, "2026-01-30T12:00:00Z\n").unwrap();
        assert_eq!(clock.now(), "2026-01-30T12:00:00Z".parse().unwrap());
        assert_eq!(clock.max_requeue(), Some(Duration::from_secs(1)));
        assert_eq!(Clock::System.max_requeue(), None);
    }
}
