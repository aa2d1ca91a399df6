//! Per-run backoff after failed reconciles: a run whose reconcile keeps failing is retried
//! after `base`, `2 * base`, `4 * base`, ... up to `max`, and from `base` again once a
//! reconcile of it succeeds. One failing run never speeds up or slows down another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Consecutive reconcile failures per run (`namespace/name`), and the delays they earn.
#[derive(Debug)]
pub struct ErrorBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for ErrorBackoff {
    /// 5 s doubling to 5 min (the resync period: a failing run is looked at no less often
    /// than a healthy one).
    fn default() -> Self {
        Self::new(Duration::from_secs(5), Duration::from_secs(300))
    }
}

impl ErrorBackoff {
    /// Backoff from `base` doubling up to `max` (`max` is raised to `base` if lower).
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The delay after the `failures`-th consecutive failure (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// Records a failed reconcile of `run`; returns how many failed in a row and how long to
    /// wait before the next try.
    pub fn failed(&self, run: &str) -> (u32, Duration) {
        let n = match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(run.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        (n, self.delay(n))
    }

    /// Records a successful reconcile (or the run's deletion): the next failure starts over.
    pub fn succeeded(&self, run: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_cap_and_reset_per_run() {
        let b = ErrorBackoff::new(Duration::from_secs(5), Duration::from_secs(60));
        let secs: Vec<u64> = (0..6).map(|_| b.failed("ns/a").1.as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
        // Another run has its own count.
        assert_eq!(b.failed("ns/b"), (1, Duration::from_secs(5)));
        b.succeeded("ns/a");
        assert_eq!(b.failed("ns/a"), (1, Duration::from_secs(5)));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }
}
