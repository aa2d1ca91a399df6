//! Per-run backoff after failed reconciles: a run whose reconcile keeps failing is retried
//! after `base`, `2 * base`, `4 * base`, ... up to `max`, and from `base` again once a
//! reconcile of it succeeds. One failing run never speeds up or slows down another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{debug, warn};

use super::error::Error;
use super::events::Publisher;
use super::view::ObjectKey;
use crate::metrics::Metrics;

/// What every controller does after a failed reconcile of `object` (a `kind`: run, backfill,
/// schedule): count it by category, log it, say so in a Warning Event on the object (spawned:
/// an `error_policy` is synchronous and the Event must not hold up the requeue), and retry
/// after the object's next delay in `backoff`.
pub fn after_failure<K>(
    kind: &'static str,
    object: Arc<K>,
    error: &Error,
    backoff: &ErrorBackoff,
    metrics: &Metrics,
    events: &Publisher,
) -> Action
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let category = error.category();
    let name = object.name_any();
    let key = ObjectKey::new(&object.namespace().unwrap_or_default(), &name);
    let (failures, after) = backoff.failed(&key);
    warn!(
        kind,
        name = %name,
        category,
        error = %error,
        failures,
        retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        "reconcile failed"
    );
    metrics.reconcile_error(category);
    let note = format!(
        "reconcile failed ({failures} in a row; next try in {}s): {error}",
        after.as_secs_f64().ceil()
    );
    let events = events.clone();
    tokio::spawn(async move {
        if let Err(e) = events
            .publish_about(object.as_ref(), "Warning", category, &note)
            .await
        {
            debug!(error = %e, "could not publish the reconcile-failure Event");
        }
    });
    Action::requeue(after)
}

/// Consecutive reconcile failures per run, and the delays they earn.
#[derive(Debug)]
pub struct ErrorBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<ObjectKey, u32>>,
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
    pub(crate) fn failed(&self, run: &ObjectKey) -> (u32, Duration) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(run.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let n = *n;
        (n, self.delay(n))
    }

    /// Records a successful reconcile (or the run's deletion): the next failure starts over.
    pub(crate) fn succeeded(&self, run: &ObjectKey) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_cap_and_reset_per_run() {
        let b = ErrorBackoff::new(Duration::from_secs(5), Duration::from_secs(60));
        let (a, other) = (ObjectKey::new("ns", "a"), ObjectKey::new("ns", "b"));
        let secs: Vec<u64> = (0..6).map(|_| b.failed(&a).1.as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
        // Another run has its own count.
        assert_eq!(b.failed(&other), (1, Duration::from_secs(5)));
        b.succeeded(&a);
        assert_eq!(b.failed(&a), (1, Duration::from_secs(5)));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }
}
