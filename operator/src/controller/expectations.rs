//! Expectations: children the controller applied that its watch caches have not shown yet.
//!
//! The planner plans from the caches, so right after a Job is applied the next reconcile may
//! plan it again. Applying it again would be harmless (server-side apply of the same object)
//! but is one more API write per Job; the expectation skips it until the cache catches up, or
//! until it expires, so a write that was lost is retried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an applied child is trusted to appear in the cache before it is applied again.
const TTL: Duration = Duration::from_secs(30);

/// Children applied but not yet observed, by `(namespace, name)`.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<(String, String), Instant>>,
}

impl Expectations {
    /// Records that `name` was just applied.
    pub fn expect(&self, namespace: &str, name: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert((namespace.to_owned(), name.to_owned()), Instant::now());
        }
    }

    /// Whether `name` was applied recently and is still awaited.
    pub fn pending(&self, namespace: &str, name: &str) -> bool {
        let Ok(mut p) = self.pending.lock() else {
            return false;
        };
        let key = (namespace.to_owned(), name.to_owned());
        match p.get(&key) {
            Some(at) if at.elapsed() < TTL => true,
            Some(_) => {
                p.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Clears the expectations the caches now satisfy.
    pub fn observed<'a>(&self, namespace: &str, names: impl IntoIterator<Item = &'a str>) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        if p.is_empty() {
            return;
        }
        for name in names {
            p.remove(&(namespace.to_owned(), name.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applied_child_is_awaited_until_observed() {
        let e = Expectations::default();
        assert!(!e.pending("ns", "job"));
        e.expect("ns", "job");
        assert!(e.pending("ns", "job"));
        assert!(!e.pending("other", "job"));
        e.observed("ns", ["job"]);
        assert!(!e.pending("ns", "job"));
    }
}
