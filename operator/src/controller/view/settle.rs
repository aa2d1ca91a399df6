//! Jobs whose outcome is in the ledger leave the caches.
//!
//! Once a PhaseCompletion's status (written by this operator, so on the API server) records a
//! finished Job's result, the Job and its Pods tell the planner nothing the ledger does not:
//! the planner already reads a recorded attempt from the ledger when its Job is gone, as it
//! must after the Job's TTL deletes it. Keeping them cached until the TTL (`--job-ttl-seconds`,
//! seven days by default) made the operator's memory grow with every Job of the last week
//! instead of with the Jobs in flight. So a reconcile *settles* each finished, recorded Job: the Job and its Pods are
//! dropped from the caches, and later watch events for them (status touch-ups, the TTL
//! controller's deletion marks) are neither stored nor turned into reconciles.
//!
//! The set of settled Jobs is all that is kept of them: a namespace and a name each, forgotten
//! when the Job's deletion is observed or when a relist no longer lists it. After a restart
//! the set is empty: every Job is cached again, and the first reconcile of each run settles its
//! recorded Jobs once more. Attempts whose record was replaced (an earlier failed attempt of a
//! processor that was retried) are not settled; they stay cached until their TTL.

use std::collections::HashSet;
use std::future::ready;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use kube::api::ObjectMeta;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};

use super::{ObjectKey, lock};
use crate::controller::cache::{CachedJob, CachedPod};

/// The Job a cached object is about.
pub(crate) trait OfJob {
    /// Its Job's name: the Job's own, or the Pod's owner.
    fn job_name(&self) -> Option<&str>;
    /// Whether it is the Job itself.
    const IS_JOB: bool;
}

impl OfJob for CachedJob {
    fn job_name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }
    const IS_JOB: bool = true;
}

impl OfJob for CachedPod {
    fn job_name(&self) -> Option<&str> {
        CachedPod::job_name(self)
    }
    const IS_JOB: bool = false;
}

/// The settled Jobs.
#[derive(Clone, Default)]
pub(crate) struct Settled {
    keys: Arc<Mutex<HashSet<ObjectKey>>>,
}

impl Settled {
    fn keys(&self) -> MutexGuard<'_, HashSet<ObjectKey>> {
        lock(&self.keys)
    }

    fn contains<K: OfJob + kube::Resource>(&self, obj: &K) -> bool {
        key_of(obj).is_some_and(|k| self.keys().contains(&k))
    }

    /// How many Jobs are settled (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys().len()
    }
}

/// The settled-set key of `obj`: its Job's namespace and name.
fn key_of<K: OfJob + kube::Resource>(obj: &K) -> Option<ObjectKey> {
    Some(ObjectKey::new(
        obj.meta().namespace.as_deref()?,
        obj.job_name()?,
    ))
}

/// A watch cache whose objects can be dropped by the controller.
pub(crate) struct Cache<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    /// The readable cache.
    pub(crate) store: Store<K>,
    writer: Arc<Mutex<Writer<K>>>,
}

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            writer: self.writer.clone(),
        }
    }
}

impl<K> Cache<K>
where
    K: kube::Resource<DynamicType = ()> + OfJob + Clone + Default + 'static,
{
    /// An empty cache.
    pub(crate) fn new() -> Self {
        let (store, writer) = reflector::store();
        Self {
            store,
            writer: Arc::new(Mutex::new(writer)),
        }
    }

    fn apply(&self, event: &Event<K>) {
        lock(&self.writer).apply_watcher_event(event);
    }

    fn drop_object(&self, ns: &str, name: &str) {
        let mut obj = K::default();
        *obj.meta_mut() = ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        };
        self.apply(&Event::Delete(obj));
    }

    /// Feeds the cache from `stream` like kube's `reflector`, except for objects of settled
    /// Jobs: those are dropped from the cache and from the stream.
    pub(crate) fn reflect<S>(
        &self,
        settled: Settled,
        stream: S,
    ) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
    where
        S: Stream<Item = watcher::Result<Event<K>>> + Send + 'static,
        K: Send + Sync,
    {
        let cache = self.clone();
        // The Jobs a relist lists, so the settled set forgets Jobs deleted while unwatched.
        let mut listed: HashSet<ObjectKey> = HashSet::new();
        stream.filter_map(move |event| {
            let event = match event {
                Ok(event) => cache.on_event(event, &settled, &mut listed).map(Ok),
                Err(e) => Some(Err(e)),
            };
            ready(event)
        })
    }

    fn on_event(
        &self,
        event: Event<K>,
        settled: &Settled,
        listed: &mut HashSet<ObjectKey>,
    ) -> Option<Event<K>> {
        match &event {
            Event::Apply(obj) if settled.contains(obj) => {
                self.apply(&Event::Delete(obj.clone()));
                return None;
            }
            Event::InitApply(obj) => {
                if K::IS_JOB {
                    listed.extend(key_of(obj));
                }
                if settled.contains(obj) {
                    return None;
                }
            }
            Event::Init => listed.clear(),
            Event::InitDone if K::IS_JOB => {
                settled.keys().retain(|k| listed.contains(k));
                listed.clear();
            }
            Event::Delete(obj) if K::IS_JOB => {
                if let Some(k) = key_of(obj) {
                    settled.keys().remove(&k);
                }
            }
            _ => {}
        }
        self.apply(&event);
        Some(event)
    }
}

impl<K> Default for Cache<K>
where
    K: kube::Resource<DynamicType = ()> + OfJob + Clone + Default + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

/// The Job and Pod caches and the Jobs settled out of them.
#[derive(Clone, Default)]
pub(crate) struct JobCaches {
    /// Jobs.
    pub(crate) jobs: Cache<CachedJob>,
    /// Their Pods.
    pub(crate) pods: Cache<CachedPod>,
    /// The settled Jobs.
    pub(crate) settled: Settled,
}

impl JobCaches {
    /// Settles Job `name` in `ns`: it and `pods` leave the caches for good.
    pub(crate) fn settle<'a>(&self, ns: &str, name: &str, pods: impl IntoIterator<Item = &'a str>) {
        // Marked first: an event for the Job racing with this is then dropped, not stored.
        self.settled.keys().insert(ObjectKey::new(ns, name));
        self.jobs.drop_object(ns, name);
        for pod in pods {
            self.pods.drop_object(ns, pod);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::runtime::reflector::ObjectRef;

    use super::*;

    fn job(name: &str) -> CachedJob {
        let mut j = CachedJob::default();
        j.metadata.name = Some(name.into());
        j.metadata.namespace = Some("ns".into());
        j
    }

    fn pod(name: &str, job: &str) -> CachedPod {
        let mut p = CachedPod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.owner_references = Some(vec![OwnerReference {
            kind: "Job".into(),
            name: job.into(),
            ..OwnerReference::default()
        }]);
        p
    }

    /// Runs `events` through a cache's reflector; returns what came out of it.
    async fn feed<K>(cache: &Cache<K>, settled: &Settled, events: Vec<Event<K>>) -> Vec<Event<K>>
    where
        K: kube::Resource<DynamicType = ()> + OfJob + Clone + Default + Send + Sync + 'static,
    {
        cache
            .reflect(settled.clone(), stream::iter(events.into_iter().map(Ok)))
            .filter_map(|e| ready(e.ok()))
            .collect()
            .await
    }

    fn has<K: kube::Resource<DynamicType = ()> + Clone>(store: &Store<K>, name: &str) -> bool {
        store.get(&ObjectRef::new(name).within("ns")).is_some()
    }

    #[tokio::test]
    async fn a_settled_job_and_its_pods_leave_the_caches_and_stay_out() {
        let caches = JobCaches::default();
        let passed = feed(
            &caches.jobs,
            &caches.settled,
            vec![Event::Apply(job("a")), Event::Apply(job("b"))],
        )
        .await;
        assert_eq!(passed.len(), 2);
        feed(
            &caches.pods,
            &caches.settled,
            vec![Event::Apply(pod("a-0", "a")), Event::Apply(pod("b-0", "b"))],
        )
        .await;

        caches.settle("ns", "a", ["a-0"]);
        assert!(!has(&caches.jobs.store, "a") && !has(&caches.pods.store, "a-0"));
        assert!(has(&caches.jobs.store, "b") && has(&caches.pods.store, "b-0"));

        // Later updates of a settled Job or its Pods are neither stored nor passed on.
        let passed = feed(&caches.jobs, &caches.settled, vec![Event::Apply(job("a"))]).await;
        assert!(passed.is_empty());
        let passed = feed(
            &caches.pods,
            &caches.settled,
            vec![Event::Apply(pod("a-0", "a"))],
        )
        .await;
        assert!(passed.is_empty());
        assert!(!has(&caches.jobs.store, "a") && !has(&caches.pods.store, "a-0"));
        assert_eq!(caches.settled.len(), 1);

        // Its deletion is passed on and forgets it.
        let passed = feed(&caches.jobs, &caches.settled, vec![Event::Delete(job("a"))]).await;
        assert_eq!(passed.len(), 1);
        assert_eq!(caches.settled.len(), 0);
    }

    #[tokio::test]
    async fn a_relist_keeps_settled_jobs_out_and_forgets_the_ones_it_no_longer_lists() {
        let caches = JobCaches::default();
        caches.settle("ns", "a", []);
        caches.settle("ns", "gone", []);
        let passed = feed(
            &caches.jobs,
            &caches.settled,
            vec![
                Event::Init,
                Event::InitApply(job("a")),
                Event::InitApply(job("b")),
                Event::InitDone,
            ],
        )
        .await;
        assert_eq!(passed.len(), 3, "Init, b, InitDone");
        assert!(!has(&caches.jobs.store, "a"));
        assert!(has(&caches.jobs.store, "b"));
        // "gone" was not listed: deleted while the watch was down.
        assert_eq!(caches.settled.len(), 1);
        assert!(caches.settled.contains(&job("a")));
    }
}
