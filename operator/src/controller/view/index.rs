//! Each run's cached children, by name, so a reconcile reads its own run's objects instead of
//! scanning every cached object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::{Children, lock};

/// The names of the cached objects of each run, by [`Children`] (a run's Jobs, Pods or
/// PhaseCompletions in a namespace). Filled as objects enter a cache (just before the
/// reflector stores them); a name whose object is no longer in the cache is forgotten when a
/// reconcile finds it gone (and was added over a minute ago, so an object on its way into the
/// cache is never forgotten). It lets a reconcile read its own run's children instead of
/// scanning every cached object: with 1,000 runs in flight the caches hold tens of thousands
/// of Jobs and Pods, and the scan made each reconcile cost O(every object), the whole
/// benchmark O(runs²).
#[derive(Clone, Default)]
pub(crate) struct RunIndex {
    names: Arc<Mutex<Names>>,
}

/// Object names, with when each was last seen entering a cache, by run and kind.
type Names = HashMap<Children, HashMap<String, Instant>>;

/// How long a name is kept without its object in the cache.
const FORGET_AFTER: Duration = Duration::from_secs(60);

impl RunIndex {
    /// Records `meta`'s object under `key`.
    pub(crate) fn add(&self, meta: &ObjectMeta, key: Option<Children>) {
        let (Some(name), Some(key)) = (&meta.name, key) else {
            return;
        };
        lock(&self.names)
            .entry(key)
            .or_default()
            .insert(name.clone(), Instant::now());
    }

    /// Forgets `names` under `key` (objects that left the cache for good).
    pub(crate) fn forget<'a>(&self, key: &Children, names: impl IntoIterator<Item = &'a str>) {
        let mut all = lock(&self.names);
        if let Some(set) = all.get_mut(key) {
            for name in names {
                set.remove(name);
            }
            if set.is_empty() {
                all.remove(key);
            }
        }
    }

    /// The objects of `key` that are in `store`.
    pub(crate) fn objects<K>(&self, key: &Children, store: &Store<K>) -> Vec<Arc<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let mut names = lock(&self.names);
        let Some(set) = names.get_mut(key) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(set.len());
        set.retain(
            |name, added| match store.get(&ObjectRef::new(name).within(&key.namespace)) {
                Some(obj) => {
                    out.push(obj);
                    true
                }
                None => added.elapsed() < FORGET_AFTER,
            },
        );
        if set.is_empty() {
            names.remove(key);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::cache::CachedJob;
    use tipoff_crds::children::LABEL_RUN;

    #[test]
    fn the_run_index_finds_a_runs_objects_and_forgets_stale_names_only_late() {
        use kube::runtime::{reflector, watcher};
        let (reader, mut writer) = reflector::store::<CachedJob>();
        let index = RunIndex::default();
        let job_of = |name: &str, run: &str| {
            let mut j = CachedJob::default();
            j.metadata.name = Some(name.into());
            j.metadata.namespace = Some("ns".into());
            j.metadata.labels = Some([(LABEL_RUN.to_owned(), run.to_owned())].into());
            j
        };
        let jobs = |ns: &str, run: &str| Children::jobs(ns, run);
        for (name, run) in [("a-1", "a"), ("a-2", "a"), ("b-1", "b")] {
            let j = job_of(name, run);
            index.add(&j.metadata, Children::of_job(&j));
            writer.apply_watcher_event(&watcher::Event::Apply(j));
        }
        // Indexed but not in the cache yet (on its way in): not returned, not forgotten.
        let late = job_of("a-3", "a");
        index.add(&late.metadata, Children::of_job(&late));
        let mut names: Vec<String> = index
            .objects(&jobs("ns", "a"), &reader)
            .iter()
            .filter_map(|j| j.metadata.name.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["a-1", "a-2"]);
        writer.apply_watcher_event(&watcher::Event::Apply(late));
        assert_eq!(index.objects(&jobs("ns", "a"), &reader).len(), 3);
        assert_eq!(index.objects(&jobs("ns", "b"), &reader).len(), 1);
        assert!(index.objects(&jobs("other", "a"), &reader).is_empty());
        index.forget(&jobs("ns", "a"), ["a-1", "a-3"]);
        assert_eq!(index.objects(&jobs("ns", "a"), &reader).len(), 1);
        index.forget(&jobs("ns", "b"), ["b-1"]);
        assert!(index.names.lock().unwrap().get(&jobs("ns", "b")).is_none());
    }
}
