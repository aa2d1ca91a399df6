//! Expectations: children the controller applied that its watch caches have not shown yet.
//!
//! The planner plans from the caches, so right after a Job is applied the next reconcile may
//! plan it again. Applying it again would be harmless (server-side apply of the same object)
//! but is one more API write per Job; the expectation skips it until the cache catches up, or
//! until it expires, so a write that was lost is retried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ObjectKey, lock};

/// How long an applied child is trusted to appear in the cache before it is applied again.
const TTL: Duration = Duration::from_secs(30);

/// Children applied but not yet observed.
#[derive(Default)]
pub(crate) struct Expectations {
    pending: Mutex<HashMap<ObjectKey, Instant>>,
}

impl Expectations {
    /// Records that `key` was just applied.
    pub(crate) fn expect(&self, key: ObjectKey) {
        lock(&self.pending).insert(key, Instant::now());
    }

    /// Whether `key` was applied recently and is still awaited.
    pub(crate) fn pending(&self, key: &ObjectKey) -> bool {
        let mut p = lock(&self.pending);
        match p.get(key) {
            Some(at) if at.elapsed() < TTL => true,
            Some(_) => {
                p.remove(key);
                false
            }
            None => false,
        }
    }

    /// Clears the expectations the caches now satisfy: `names` in `namespace`.
    pub(crate) fn observed<'a>(&self, namespace: &str, names: impl IntoIterator<Item = &'a str>) {
        let mut p = lock(&self.pending);
        if p.is_empty() {
            return;
        }
        for name in names {
            p.remove(&ObjectKey::new(namespace, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applied_child_is_awaited_until_observed() {
        let e = Expectations::default();
        let job = ObjectKey::new("ns", "job");
        assert!(!e.pending(&job));
        e.expect(job.clone());
        assert!(e.pending(&job));
        assert!(!e.pending(&ObjectKey::new("other", "job")));
        e.observed("ns", ["job"]);
        assert!(!e.pending(&job));
    }
}
