//! The Job runner: turns Jobs into Pods and Pods into local processes.
//! [`Processes`] tracks running processes (for kills and logs); `job.rs`
//! holds the Job controller logic, `pod.rs` runs one Pod, `config.rs` maps
//! images to local commands.

pub mod config;
mod job;
pub mod pod;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::faults::Faults;
use serde_json::Value;

use crate::resources::GroupResource;
use crate::store::{Change, Store, owner_uids};
use config::RunnerConfig;
use pod::KillReason;

/// The running Pod processes and where their files live.
pub struct Processes {
    dir: PathBuf,
    running: Mutex<HashMap<(String, String), oneshot::Sender<KillReason>>>,
}

impl Processes {
    /// Tracks processes whose files live under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), oneshot::Sender<KillReason>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Directory of one Pod's files.
    pub fn pod_dir(&self, ns: &str, name: &str) -> PathBuf {
        self.dir.join("pods").join(ns).join(name)
    }

    /// The captured stdout/stderr of a Pod.
    pub fn log_path(&self, ns: &str, name: &str) -> PathBuf {
        self.pod_dir(ns, name).join("log")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Kills a running Pod's process; returns whether one was running.
    pub fn kill(&self, ns: &str, name: &str) -> bool {
        self.stop(ns, name, KillReason::Killed)
    }

    pub(crate) fn stop(&self, ns: &str, name: &str, reason: KillReason) -> bool {
        match self.running().remove(&(ns.to_string(), name.to_string())) {
            Some(tx) => tx.send(reason).is_ok(),
            None => false,
        }
    }

    fn register(&self, ns: &str, name: &str) -> oneshot::Receiver<KillReason> {
        let (tx, rx) = oneshot::channel();
        self.running()
            .insert((ns.to_string(), name.to_string()), tx);
        rx
    }

    fn finished(&self, ns: &str, name: &str) {
        self.running().remove(&(ns.to_string(), name.to_string()));
    }

    /// Whether a Pod's process is running (or about to start).
    pub fn is_running(&self, ns: &str, name: &str) -> bool {
        self.running()
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    /// (namespace, name) of every Pod whose process is running.
    pub fn running_keys(&self) -> Vec<(String, String)> {
        self.running().keys().cloned().collect()
    }
}

/// How long the runner lets store changes accumulate before a pass.
pub const RUNNER_BATCH: Duration = Duration::from_millis(50);

/// (namespace, name) of an object.
type Key = (String, String);

/// The runner's view of Jobs and Pods, kept current from the store's change feed
/// ([`Store::take_changes`]) rather than listed on every pass: the stored objects are shared
/// (`Arc`), never copied, and the Pods are indexed by owner uid.
#[derive(Default)]
struct Index {
    jobs: HashMap<Key, Arc<Value>>,
    /// Job uid -> key, to find the Job a changed Pod belongs to.
    job_by_uid: HashMap<String, Key>,
    pods: HashMap<Key, Arc<Value>>,
    /// Owner uid -> its Pods, ordered like a list (namespace, then name).
    pods_by_owner: HashMap<String, BTreeSet<Key>>,
    /// (due unix second, Job) for each Job with a clock running ([`job::next_due`]).
    timers: BTreeSet<(i64, Key)>,
    timer_of: HashMap<Key, i64>,
    /// Jobs to reconcile in the next pass, in list order.
    dirty: BTreeSet<Key>,
    /// Pods (by uid) whose process was started.
    started: HashSet<String>,
}

impl Index {
    /// Applies a changed Job or Pod; returns the key of a changed Pod.
    fn apply(&mut self, change: Change) -> Option<Key> {
        let key = (change.namespace, change.name);
        if change.gr == GroupResource::new("batch", "jobs") {
            let old = match &change.object {
                Some(job) => self.jobs.insert(key.clone(), job.clone()),
                None => self.jobs.remove(&key),
            };
            if let Some(uid) = old.as_deref().and_then(uid_of) {
                self.job_by_uid.remove(uid);
            }
            match change.object.as_deref().and_then(uid_of) {
                Some(uid) => {
                    self.job_by_uid.insert(uid.to_string(), key.clone());
                    self.dirty.insert(key);
                }
                None => {
                    self.set_timer(&key, None);
                    self.dirty.remove(&key);
                }
            }
            None
        } else {
            let old = match &change.object {
                Some(pod) => self.pods.insert(key.clone(), pod.clone()),
                None => self.pods.remove(&key),
            };
            // A Pod that is gone, or replaced by another of the same name, is forgotten.
            if let Some(uid) = old.as_deref().and_then(uid_of)
                && change.object.as_deref().and_then(uid_of) != Some(uid)
            {
                self.started.remove(uid);
            }
            for owner in old.iter().flat_map(|p| owner_uids(p)) {
                if let Some(pods) = self.pods_by_owner.get_mut(owner) {
                    pods.remove(&key);
                    if pods.is_empty() {
                        self.pods_by_owner.remove(owner);
                    }
                }
            }
            for owner in change.object.iter().flat_map(|p| owner_uids(p)) {
                self.pods_by_owner
                    .entry(owner.to_string())
                    .or_default()
                    .insert(key.clone());
            }
            // The Jobs the Pod belonged to before and after the change both need a look.
            for owner in old
                .iter()
                .chain(change.object.iter())
                .flat_map(|p| owner_uids(p))
            {
                if let Some(job) = self.job_by_uid.get(owner) {
                    self.dirty.insert(job.clone());
                }
            }
            Some(key)
        }
    }

    fn set_timer(&mut self, key: &Key, due: Option<i64>) {
        if let Some(old) = self.timer_of.remove(key) {
            self.timers.remove(&(old, key.clone()));
        }
        if let Some(due) = due {
            self.timer_of.insert(key.clone(), due);
            self.timers.insert((due, key.clone()));
        }
    }

    /// Moves the Jobs whose clock ran out by `now` (unix seconds) to `dirty`.
    fn expire_timers(&mut self, now: i64) {
        while let Some(first) = self.timers.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, key)) = self.timers.pop_first() {
                self.timer_of.remove(&key);
                self.dirty.insert(key);
            }
        }
    }

    /// A Job's Pods, in list order.
    fn pods_of(&self, job: &Value) -> Vec<&Value> {
        uid_of(job)
            .and_then(|uid| self.pods_by_owner.get(uid))
            .into_iter()
            .flatten()
            .filter_map(|key| self.pods.get(key).map(|p| &**p))
            .collect()
    }
}

/// The runner task.
///
/// A pass is incremental: the store records which Jobs and Pods were written
/// ([`Store::track_changes`]), and a pass reconciles only the Jobs that changed, whose Pods
/// changed, whose clock ran out (`activeDeadlineSeconds`, `ttlSecondsAfterFinished`), or
/// whose last reconcile failed to write; it starts or kills processes only for Pods that
/// changed. Its cost is proportional to what changed, not to how many Jobs and Pods exist
/// (listing and copying every Job and Pod on each pass made dev/cluster, not the operator,
/// the bottleneck with 10,000 Jobs in the store).
pub struct Runner {
    store: Arc<Store>,
    faults: Arc<Faults>,
    processes: Arc<Processes>,
    config: Arc<RunnerConfig>,
    index: Index,
}

impl Runner {
    /// A runner over the store.
    pub fn new(
        store: Arc<Store>,
        faults: Arc<Faults>,
        processes: Arc<Processes>,
        config: RunnerConfig,
    ) -> Self {
        store.track_changes(&GroupResource::new("batch", "jobs"));
        store.track_changes(&GroupResource::new("", "pods"));
        Self {
            store,
            faults,
            processes,
            config: Arc::new(config),
            index: Index::default(),
        }
    }

    /// Reconciles until `shutdown` fires: on every store change and every 200 ms (for
    /// clocks and retries).
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let store = self.store.clone();
            let notified = store.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.faults.runner_paused() {
                self.reconcile();
            }
            tokio::select! {
                // Changes that arrive together (a burst of writes) are handled by one pass,
                // at most every RUNNER_BATCH.
                _ = &mut notified => tokio::time::sleep(RUNNER_BATCH).await,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {
                    for (ns, name) in self.processes.running_keys() {
                        self.processes.kill(&ns, &name);
                    }
                    return;
                }
            }
        }
    }

    /// One pass over what changed since the last one.
    fn reconcile(&mut self) {
        let (Some(job_info), Some(pod_info)) = (
            self.store.resource("batch", "v1", "jobs"),
            self.store.resource("", "v1", "pods"),
        ) else {
            return;
        };
        let mut changed_pods = self.absorb_changes();
        self.index.expire_timers(jiff::Timestamp::now().as_second());
        for key in std::mem::take(&mut self.index.dirty) {
            let Some(job) = self.index.jobs.get(&key).cloned() else {
                continue;
            };
            let pods = self.index.pods_of(&job);
            let outcome = job::reconcile(
                &self.store,
                &self.processes,
                &job_info,
                &pod_info,
                &job,
                &pods,
            );
            self.index.set_timer(&key, job::next_due(&job));
            if outcome == job::Outcome::Retry {
                self.index.dirty.insert(key);
            }
        }
        // The Pods this pass created start now, not a pass later; the Jobs it wrote are
        // looked at again next pass (usually a no-op, as a real controller's resync is).
        changed_pods.extend(self.absorb_changes());
        for key in changed_pods {
            self.start_pod(&key);
        }
    }

    /// Applies the store's changes to the index; kills the processes of Pods that are gone
    /// or being deleted (or replaced by a Pod of the same name). Returns the changed Pods.
    fn absorb_changes(&mut self) -> BTreeSet<Key> {
        let mut changed = BTreeSet::new();
        for change in self.store.take_changes() {
            let Some(key) = self.index.apply(change) else {
                continue;
            };
            let live = self
                .index
                .pods
                .get(&key)
                .is_some_and(|p| !p["metadata"]["deletionTimestamp"].is_string());
            if !live {
                self.processes.kill(&key.0, &key.1);
            }
            changed.insert(key);
        }
        changed
    }

    /// Starts the process of a Pending Pod that has none yet.
    fn start_pod(&mut self, key: &Key) {
        let Some(pod) = self.index.pods.get(key) else {
            return;
        };
        let uid = uid_of(pod).unwrap_or_default();
        let pending = pod["status"]["phase"].as_str().unwrap_or("Pending") == "Pending";
        let waiting = pod["status"]["containerStatuses"].is_array();
        if !pending
            || waiting
            || self.index.started.contains(uid)
            || pod["metadata"]["deletionTimestamp"].is_string()
        {
            return;
        }
        self.index.started.insert(uid.to_string());
        let kill = self.processes.register(&key.0, &key.1);
        tokio::spawn(pod::run(
            self.store.clone(),
            self.processes.clone(),
            self.config.clone(),
            (**pod).clone(),
            kill,
        ));
    }
}

fn uid_of(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(resource: &str, name: &str, object: Option<Value>) -> Change {
        let gr = if resource == "jobs" {
            GroupResource::new("batch", "jobs")
        } else {
            GroupResource::new("", "pods")
        };
        Change {
            gr,
            namespace: "ns".into(),
            name: name.into(),
            object: object.map(Arc::new),
        }
    }

    fn job(uid: &str) -> Value {
        json!({"metadata": {"name": "j", "namespace": "ns", "uid": uid}})
    }

    fn pod(name: &str, uid: &str, owner: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": uid,
                            "ownerReferences": [{"uid": owner}]}})
    }

    fn key(name: &str) -> Key {
        ("ns".into(), name.into())
    }

    #[test]
    fn a_pod_change_dirties_its_job_only() {
        let mut index = Index::default();
        index.apply(change("jobs", "j", Some(job("job-1"))));
        index.apply(change("jobs", "k", Some(job("job-2"))));
        index.dirty.clear();
        assert_eq!(
            index.apply(change("pods", "j-a", Some(pod("j-a", "pod-1", "job-1")))),
            Some(key("j-a"))
        );
        assert_eq!(index.dirty, BTreeSet::from([key("j")]));
        let job = index.jobs[&key("j")].clone();
        assert_eq!(index.pods_of(&job).len(), 1);
        // Deleting the Pod wakes the Job again and drops it from the owner index.
        index.dirty.clear();
        index.started.insert("pod-1".into());
        index.apply(change("pods", "j-a", None));
        assert_eq!(index.dirty, BTreeSet::from([key("j")]));
        assert!(index.pods_of(&job).is_empty());
        assert!(index.pods_by_owner.is_empty());
        assert!(index.started.is_empty());
    }

    #[test]
    fn a_replaced_pod_is_forgotten_as_started() {
        let mut index = Index::default();
        index.apply(change("pods", "p", Some(pod("p", "old", "nobody"))));
        index.started.insert("old".into());
        index.apply(change("pods", "p", Some(pod("p", "new", "nobody"))));
        assert!(index.started.is_empty());
        assert_eq!(index.pods_by_owner["nobody"].len(), 1);
    }

    #[test]
    fn timers_wake_jobs_when_due_and_deleted_jobs_lose_theirs() {
        let mut index = Index::default();
        index.apply(change("jobs", "j", Some(job("job-1"))));
        index.apply(change("jobs", "k", Some(job("job-2"))));
        index.dirty.clear();
        index.set_timer(&key("j"), Some(100));
        index.set_timer(&key("k"), Some(200));
        index.set_timer(&key("k"), Some(150));
        index.expire_timers(99);
        assert!(index.dirty.is_empty());
        index.expire_timers(100);
        assert_eq!(index.dirty, BTreeSet::from([key("j")]));
        index.apply(change("jobs", "k", None));
        assert!(index.timers.is_empty() && index.timer_of.is_empty());
        assert!(!index.job_by_uid.contains_key("job-2"));
    }
}
