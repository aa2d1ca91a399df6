//! Statuses the controller wrote that its watch caches have not shown yet.
//!
//! The planner compares the status it derives with the status it observes, and writes (and
//! emits Events) only on a difference. Under load the caches lag behind the controller's own
//! writes: a Pod event can start a reconcile of a run whose status write from a moment ago has
//! not come back through the watch. Planned against the stale status, that reconcile would
//! write the same status again and publish the same Events again (the benchmark measured this
//! as most of the API writes per Job at 100 runs).
//!
//! So after each status write the controller remembers what it wrote, with the
//! `resourceVersion` it planned from. Before planning, a cached object still at the version it
//! planned from is overlaid with the remembered status; one at any other version has caught up
//! with the write (or was changed by someone else since), so the cache is trusted and the
//! memory dropped. Resource versions are compared for
//! equality only, as the API conventions require (they are opaque).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ObjectKey, lock};

/// How long a written status is remembered at most: long past any normal watch lag.
const TTL: Duration = Duration::from_secs(60);

struct Entry<S> {
    planned_from: Option<String>,
    status: S,
    at: Instant,
}

/// Written statuses of one kind, by object.
pub(crate) struct Written<S> {
    entries: Mutex<HashMap<ObjectKey, Entry<S>>>,
}

impl<S> Default for Written<S> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<S: Clone> Written<S> {
    /// Records that `status` was written to `key`, planned from version `planned_from`.
    pub(crate) fn record(&self, key: ObjectKey, planned_from: Option<String>, status: S) {
        let mut e = lock(&self.entries);
        e.retain(|_, v| v.at.elapsed() < TTL);
        e.insert(
            key,
            Entry {
                planned_from,
                status,
                at: Instant::now(),
            },
        );
    }

    /// The status to plan from for an object the cache shows at `cached_version` with
    /// `cached_status`: the remembered one while the cache has not caught up with the write.
    pub(crate) fn overlay(
        &self,
        key: &ObjectKey,
        cached_version: Option<&str>,
        cached_status: &mut Option<S>,
    ) {
        let mut e = lock(&self.entries);
        let Some(entry) = e.get(key) else {
            return;
        };
        if entry.at.elapsed() < TTL
            && entry.planned_from.is_some()
            && entry.planned_from.as_deref() == cached_version
        {
            *cached_status = Some(entry.status.clone());
        } else {
            e.remove(key);
        }
    }

    /// How many writes are remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The written statuses of both kinds.
#[derive(Default)]
pub(crate) struct Memo {
    /// PipelineRun statuses.
    pub(crate) runs: Written<tipoff_crds::PipelineRunStatus>,
    /// PhaseCompletion statuses.
    pub(crate) phase_completions: Written<tipoff_crds::PhaseCompletionStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ns, name)
    }

    fn written() -> Written<&'static str> {
        let w = Written::default();
        w.record(key("ns", "run"), Some("5".into()), "new");
        w
    }

    #[test]
    fn a_cache_still_at_the_planned_version_sees_the_written_status() {
        let w = written();
        let mut status = Some("old");
        w.overlay(&key("ns", "run"), Some("5"), &mut status);
        assert_eq!(status, Some("new"));
        assert_eq!(w.len(), 1, "kept until the cache catches up");
    }

    #[test]
    fn a_cache_that_caught_up_is_trusted_and_the_memory_dropped() {
        let w = written();
        let mut status = Some("new-from-cache");
        w.overlay(&key("ns", "run"), Some("7"), &mut status);
        assert_eq!(status, Some("new-from-cache"));
        assert!(w.is_empty());
    }

    #[test]
    fn a_change_by_someone_else_wins_over_the_memory() {
        let w = written();
        let mut status = Some("theirs");
        w.overlay(&key("ns", "run"), Some("9"), &mut status);
        assert_eq!(status, Some("theirs"));
        assert!(w.is_empty());
    }

    #[test]
    fn other_objects_and_unknown_versions_are_untouched() {
        let w = written();
        let mut status = Some("old");
        w.overlay(&key("ns", "other"), Some("5"), &mut status);
        w.overlay(&key("other-ns", "run"), Some("5"), &mut status);
        assert_eq!(status, Some("old"));
        let w: Written<&str> = Written::default();
        w.record(key("ns", "run"), None, "new");
        w.overlay(&key("ns", "run"), None, &mut status);
        assert_eq!(
            status,
            Some("old"),
            "no planned-from version, nothing to compare"
        );
    }
}
