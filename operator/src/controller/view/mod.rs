//! The controller's view of the cluster: the watch caches and the side tables that correct
//! them, behind one small API. A reconcile reads only what [`View::snapshot`] gives it and tells
//! the view what it did ([`View::applied_job`], [`View::wrote_run_status`], ...,
//! [`View::settle`]); nothing else in the controller touches a cache or a table.
//!
//! # Why the caches need correcting
//!
//! The caches are fed by watches, so they lag behind the operator's own writes; planned from a
//! stale cache, a reconcile would write again what it just wrote. Each table below covers one
//! way the cache can be behind or too full:
//!
//! | Table | Holds | Read by | Entry leaves when |
//! |---|---|---|---|
//! | [`expectations`] | children applied, not yet cached | `apply` (skips them) | the snapshot sees them cached; 30 s |
//! | [`unseen`] | Jobs created, as the API server returned them | the snapshot (adds them) | any watch event for the Job, a snapshot that sees it cached, a relist without it |
//! | [`written`] | statuses written, with the version planned from | the snapshot (overlays them) | the cache shows another version; 60 s |
//! | [`settle`] | Jobs whose result the cached ledger records | the Job and Pod watches (drop their events) | the Job's deletion is watched; a relist without it |
//! | [`index`] | each run's cached children, by name | the snapshot (reads one run's children) | a snapshot finds the object gone, a minute after it was added; settling |
//!
//! # One reconcile, in order
//!
//! 1. [`View::snapshot`]: the run with its status overlaid by the last write ([`written`]), its
//!    children from the caches through the [`index`], plus the Jobs created and not yet cached
//!    ([`unseen`]), and the PhaseCompletions overlaid like the run. Cached children clear their
//!    [`expectations`]. It also notes which finished Jobs the *cached* ledger records (not the
//!    overlaid one: a settled Job that the server's ledger did not record would come back as
//!    vanished).
//! 2. The planner plans from the snapshot; `apply` skips children still [`View::awaited`],
//!    and reports each apply ([`View::applied_job`], [`View::applied_phase_completion`]).
//! 3. [`Snapshot::with_created`] adds what was applied, so the statuses are planned again and
//!    written once.
//! 4. Each status write is reported ([`View::wrote_run_status`],
//!    [`View::wrote_phase_completion_status`]) for the next snapshot to overlay.
//! 5. [`View::settle`] drops the Jobs noted in step 1 (and their Pods) from the caches.
//!
//! # Keys and locks
//!
//! Objects are keyed by [`ObjectKey`] (namespace and name), a run's children by [`Children`]
//! (namespace, kind, run). Every table is a `Mutex` taken through [`lock`]: held for one
//! lookup or update, never across an `.await`, never while taking another of these locks, and
//! a poisoned lock is used as is (each update is a single insert or remove, so a panic cannot
//! leave a table half-changed).

mod expectations;
#[cfg(test)]
mod feed;
mod index;
mod settle;
mod unseen;
mod written;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{Stream, TryStreamExt};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tipoff_crds::{PhaseCompletion, PhaseCompletionStatus, PipelineRun, PipelineRunStatus};
use tokio::sync::watch;
use tracing::debug;

#[cfg(test)]
pub(crate) use feed::Feed;

use super::cache::{self, CachedJob, CachedPhaseCompletion, CachedPipelineRun, CachedPod};
use crate::planner::Observed;
use crate::planner::observe::OlderRun;
use tipoff_crds::children::{LABEL_RUN, run_label};

/// The one locking policy of the side tables (see the module doc).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An object's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjectKey {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjectKey {
    pub(crate) fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The key of `run`, or `None` without a namespace or name.
    pub(crate) fn of(meta: &ObjectMeta) -> Option<Self> {
        Some(Self::new(meta.namespace.as_deref()?, meta.name.as_deref()?))
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Which of a run's children.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ChildKind {
    Job,
    Pod,
    PhaseCompletion,
}

/// One run's children of one kind in one namespace. Jobs and Pods name their run by its run
/// label (`naming::run_label`), PhaseCompletions by the run's name (`spec.run`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Children {
    pub(crate) namespace: String,
    pub(crate) kind: ChildKind,
    pub(crate) run: String,
}

impl Children {
    fn new(namespace: &str, kind: ChildKind, run: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            kind,
            run: run.to_owned(),
        }
    }

    /// The Jobs of the run labelled `run_label`.
    pub(crate) fn jobs(namespace: &str, run_label: &str) -> Self {
        Self::new(namespace, ChildKind::Job, run_label)
    }

    /// The Pods of the run labelled `run_label`.
    pub(crate) fn pods(namespace: &str, run_label: &str) -> Self {
        Self::new(namespace, ChildKind::Pod, run_label)
    }

    /// The PhaseCompletions of the run named `run`.
    pub(crate) fn phase_completions(namespace: &str, run: &str) -> Self {
        Self::new(namespace, ChildKind::PhaseCompletion, run)
    }

    /// The children a Job belongs to (by its run label).
    pub(crate) fn of_job(job: &CachedJob) -> Option<Self> {
        Some(Self::jobs(
            job.metadata.namespace.as_deref()?,
            job.label(LABEL_RUN)?,
        ))
    }

    fn of_pod(pod: &CachedPod) -> Option<Self> {
        Some(Self::pods(
            pod.metadata.namespace.as_deref()?,
            pod.label(LABEL_RUN)?,
        ))
    }

    fn of_phase_completion(pc: &CachedPhaseCompletion) -> Option<Self> {
        Some(Self::phase_completions(
            pc.metadata.namespace.as_deref()?,
            &pc.spec.run,
        ))
    }
}

/// The run statuses this operator wrote that the run cache may not show yet. The backfill
/// controller reads other runs through it, so a run that just failed reads as failed.
#[derive(Clone, Default)]
pub struct WrittenRunStatuses(Arc<written::Memo>);

impl WrittenRunStatuses {
    /// `run` as cached, with its status replaced by the one written if the cache still shows
    /// the version that write was planned from.
    pub fn overlay(&self, run: &mut PipelineRun) {
        let key = ObjectKey::new(&run.namespace().unwrap_or_default(), &run.name_any());
        self.0.runs.overlay(
            &key,
            run.metadata.resource_version.as_deref(),
            &mut run.status,
        );
    }

    /// Records a written status, as the run controller's step 4 does (for tests).
    #[cfg(test)]
    pub(crate) fn record(&self, run: &PipelineRun, planned_from: &str, status: PipelineRunStatus) {
        let key = ObjectKey::new(&run.namespace().unwrap_or_default(), &run.name_any());
        self.0
            .runs
            .record(key, Some(planned_from.to_owned()), status);
    }
}

/// Which of the child caches have listed once. A reconcile plans only once every cache has:
/// a restarted operator's first reconciles would otherwise see a PhaseCompletion naming a
/// running Job the Job cache has not listed yet, and read it as a Job that vanished (a new
/// attempt of a Job that is still running).
#[derive(Default)]
pub(crate) struct Listed {
    phase_completions: std::sync::atomic::AtomicBool,
    jobs: std::sync::atomic::AtomicBool,
    pods: std::sync::atomic::AtomicBool,
}

/// A child cache whose first list ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChildCache {
    /// PhaseCompletions.
    PhaseCompletions,
    /// Jobs.
    Jobs,
    /// Pods.
    Pods,
}

impl Listed {
    fn flag(&self, cache: ChildCache) -> &std::sync::atomic::AtomicBool {
        match cache {
            ChildCache::PhaseCompletions => &self.phase_completions,
            ChildCache::Jobs => &self.jobs,
            ChildCache::Pods => &self.pods,
        }
    }
}

/// The watch caches and their side tables. Cheap to clone (every part is shared).
#[derive(Clone)]
pub struct View {
    runs: Store<CachedPipelineRun>,
    /// Becomes true once the PipelineRun cache has listed. (Not `runs.wait_until_ready()`: the
    /// Controller already waits on that store, and kube-runtime 5's `Store::wait_until_ready`
    /// wakes only the last of several waiters, since it holds one oneshot receiver with one
    /// waker slot; a second waiter would hang, or leave the Controller hanging.)
    runs_synced: watch::Receiver<bool>,
    phase_completions: Store<CachedPhaseCompletion>,
    jobs: settle::JobCaches,
    index: index::RunIndex,
    unseen: unseen::Unseen,
    written: Arc<written::Memo>,
    expectations: Arc<expectations::Expectations>,
    listed: Arc<Listed>,
}

/// A finished Job whose result the cached ledger records, with its Pods.
struct Settleable {
    job: String,
    pods: Vec<String>,
}

/// What one reconcile plans from (step 1 of the module doc).
pub(crate) struct Snapshot {
    /// The run, its status overlaid with the last one written.
    pub(crate) run: Arc<PipelineRun>,
    /// Its children and the older runs of its date.
    pub(crate) observed: Observed,
    settleable: Vec<Settleable>,
}

impl View {
    /// An empty view over the PipelineRun and PhaseCompletion caches; the Job and Pod caches
    /// are its own, fed by [`View::reflect_jobs`] and [`View::reflect_pods`].
    pub(crate) fn new(
        runs: Store<CachedPipelineRun>,
        runs_synced: watch::Receiver<bool>,
        phase_completions: Store<CachedPhaseCompletion>,
    ) -> Self {
        Self {
            runs,
            runs_synced,
            phase_completions,
            jobs: settle::JobCaches::default(),
            index: index::RunIndex::default(),
            unseen: unseen::Unseen::default(),
            written: Arc::default(),
            expectations: Arc::default(),
            listed: Arc::default(),
        }
    }

    /// Records that `cache` ended its first list (its watch's `InitDone`).
    pub(crate) fn mark_listed(&self, cache: ChildCache) {
        self.listed
            .flag(cache)
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the run cache and every child cache have listed: only then may a reconcile
    /// plan (a child missing from a cache that has not listed is not gone).
    pub(crate) fn listed(&self) -> bool {
        use std::sync::atomic::Ordering::Acquire;
        *self.runs_synced.borrow()
            && [
                ChildCache::PhaseCompletions,
                ChildCache::Jobs,
                ChildCache::Pods,
            ]
            .into_iter()
            .all(|c| self.listed.flag(c).load(Acquire))
    }

    /// The PipelineRun cache.
    pub fn runs(&self) -> Store<CachedPipelineRun> {
        self.runs.clone()
    }

    /// The run statuses written that the cache may not show yet.
    pub fn written_run_statuses(&self) -> WrittenRunStatuses {
        WrittenRunStatuses(self.written.clone())
    }

    /// Waits until every cache has listed; false if a cache's writer went away first.
    pub async fn synced(&self) -> bool {
        let mut runs_synced = self.runs_synced.clone();
        runs_synced.wait_for(|listed| *listed).await.is_ok()
            && self.jobs.jobs.store.wait_until_ready().await.is_ok()
            && self.jobs.pods.store.wait_until_ready().await.is_ok()
            && self.phase_completions.wait_until_ready().await.is_ok()
    }

    /// The Job cache (the Pod watch maps a Pod to its run through it).
    pub(crate) fn job_store(&self) -> Store<CachedJob> {
        self.jobs.jobs.store.clone()
    }

    /// Indexes each PhaseCompletion as it enters its cache (`stream` feeds the reflector).
    pub(crate) fn index_phase_completions<S>(
        &self,
        stream: S,
    ) -> impl Stream<Item = watcher::Result<watcher::Event<CachedPhaseCompletion>>> + Send + 'static
    where
        S: Stream<Item = watcher::Result<watcher::Event<CachedPhaseCompletion>>> + Send + 'static,
    {
        let index = self.index.clone();
        stream.modify(move |pc| {
            pc.trim();
            index.add(&pc.metadata, Children::of_phase_completion(pc));
        })
    }

    /// Feeds the Job cache from the Job watch: trimmed, indexed, seen by [`unseen`], settled
    /// Jobs left out.
    pub(crate) fn reflect_jobs<S>(
        &self,
        stream: S,
    ) -> impl Stream<Item = watcher::Result<watcher::Event<CachedJob>>> + Send + 'static
    where
        S: Stream<Item = watcher::Result<watcher::Event<CachedJob>>> + Send + 'static,
    {
        let index = self.index.clone();
        let stream = stream.modify(move |job| {
            job.trim();
            index.add(&job.metadata, Children::of_job(job));
        });
        self.jobs
            .jobs
            .reflect(self.jobs.settled.clone(), self.unseen.track(stream))
    }

    /// Feeds the Pod cache from the Pod watch: only Pods whose processor ended, trimmed,
    /// indexed, Pods of settled Jobs left out.
    pub(crate) fn reflect_pods<S>(
        &self,
        stream: S,
    ) -> impl Stream<Item = watcher::Result<watcher::Event<CachedPod>>> + Send + 'static
    where
        S: Stream<Item = watcher::Result<watcher::Event<CachedPod>>> + Send + 'static,
    {
        let index = self.index.clone();
        let stream = stream
            .modify(|pod| cache::trim_meta(&mut pod.metadata))
            // A Pod tells the planner nothing until its processor has ended: the others are
            // neither cached nor a reason to reconcile.
            .try_filter(|event| std::future::ready(cache::pod_event_matters(event)))
            .modify(move |pod| index.add(&pod.metadata, Children::of_pod(pod)));
        self.jobs.pods.reflect(self.jobs.settled.clone(), stream)
    }

    /// Step 1: what `cached` is to be planned from.
    pub(crate) fn snapshot(&self, cached: &CachedPipelineRun) -> Snapshot {
        let mut run = cached.to_pipeline_run();
        let ns = run.namespace().unwrap_or_default();
        let name = run.name_any();
        let label = run_label(&name);
        self.written.runs.overlay(
            &ObjectKey::new(&ns, &name),
            run.metadata.resource_version.as_deref(),
            &mut run.status,
        );

        let cached_pcs: Vec<PhaseCompletion> = self
            .index
            .objects(
                &Children::phase_completions(&ns, &name),
                &self.phase_completions,
            )
            .into_iter()
            .filter(|pc| pc.spec.run == name)
            .map(|pc| pc.to_phase_completion())
            .collect();
        let jobs: Vec<_> = self
            .index
            .objects(&Children::jobs(&ns, &label), &self.jobs.jobs.store)
            .into_iter()
            .filter(|j| j.label(LABEL_RUN) == Some(label.as_str()))
            .collect();
        let cached_names: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.metadata.name.as_deref())
            .collect();
        let unseen = self
            .unseen
            .of_run(&Children::jobs(&ns, &label), &cached_names);
        let pods: Vec<_> = self
            .index
            .objects(&Children::pods(&ns, &label), &self.jobs.pods.store)
            .into_iter()
            .filter(|p| p.label(LABEL_RUN) == Some(label.as_str()))
            .collect();
        // Children in the snapshot (Jobs created and not yet cached included) are not awaited.
        self.expectations.observed(
            &ns,
            cached_names
                .iter()
                .copied()
                .chain(unseen.iter().filter_map(|j| j.metadata.name.as_deref()))
                .chain(
                    cached_pcs
                        .iter()
                        .filter_map(|pc| pc.metadata.name.as_deref()),
                ),
        );

        // From the cached ledger, not the overlaid one: a cached status is never older than
        // one the cache showed before, and a recorded result stays recorded.
        let recorded: HashSet<&str> = cached_pcs
            .iter()
            .filter_map(|pc| pc.status.as_ref())
            .flat_map(|s| s.completed.iter().chain(&s.failed))
            .map(|r| r.job.as_str())
            .collect();
        let settleable = jobs
            .iter()
            .filter(|j| j.is_finished())
            .filter_map(|j| j.metadata.name.as_deref())
            .filter(|job| recorded.contains(job))
            .map(|job| Settleable {
                job: job.to_owned(),
                pods: pods
                    .iter()
                    .filter(|p| p.job_name() == Some(job))
                    .filter_map(|p| p.metadata.name.clone())
                    .collect(),
            })
            .collect();

        let phase_completions = cached_pcs
            .into_iter()
            .map(|mut pc| {
                self.written.phase_completions.overlay(
                    &ObjectKey::new(&ns, &pc.name_any()),
                    pc.metadata.resource_version.as_deref(),
                    &mut pc.status,
                );
                pc
            })
            .collect();
        let observed = Observed {
            phase_completions,
            jobs: jobs
                .iter()
                .map(|j| j.to_job())
                .chain(unseen.iter().map(CachedJob::to_job))
                .collect(),
            pods: pods.iter().map(|p| p.to_pod()).collect(),
            older_runs_for_date: older_runs_for_date(&run, &self.runs.state()),
        };
        Snapshot {
            run: Arc::new(run),
            observed,
            settleable,
        }
    }

    /// Whether child `key` was applied a moment ago and the cache has not shown it yet: applying
    /// it again would only be another write of the same object.
    pub(crate) fn awaited(&self, key: &ObjectKey) -> bool {
        self.expectations.pending(key)
    }

    /// Step 2: a PhaseCompletion was applied.
    pub(crate) fn applied_phase_completion(&self, key: ObjectKey) {
        self.expectations.expect(key);
    }

    /// Step 2: a Job was applied; `job` is the API server's answer.
    pub(crate) fn applied_job(&self, job: &CachedJob) {
        if let Some(key) = ObjectKey::of(&job.metadata) {
            self.expectations.expect(key);
        }
        self.unseen.created(job.clone());
    }

    /// Step 4: a run's status was written, planned from version `planned_from`.
    pub(crate) fn wrote_run_status(
        &self,
        key: ObjectKey,
        planned_from: Option<String>,
        status: PipelineRunStatus,
    ) {
        self.written.runs.record(key, planned_from, status);
    }

    /// Step 4: a PhaseCompletion's status was written, planned from version `planned_from`.
    pub(crate) fn wrote_phase_completion_status(
        &self,
        key: ObjectKey,
        planned_from: Option<String>,
        status: PhaseCompletionStatus,
    ) {
        self.written
            .phase_completions
            .record(key, planned_from, status);
    }

    /// Step 5: the snapshot's recorded, finished Jobs and their Pods leave the caches for
    /// good (see [`settle`]). Call only once the plan was applied.
    pub(crate) fn settle(&self, snapshot: &Snapshot) {
        let ns = snapshot.run.namespace().unwrap_or_default();
        let label = run_label(&snapshot.run.name_any());
        for Settleable { job, pods } in &snapshot.settleable {
            self.jobs.settle(&ns, job, pods.iter().map(String::as_str));
            self.index
                .forget(&Children::jobs(&ns, &label), [job.as_str()]);
            self.index.forget(
                &Children::pods(&ns, &label),
                pods.iter().map(String::as_str),
            );
            debug!(job = %job, "settled: the ledger records its result");
        }
    }
}

/// The children a reconcile applied, as the API server returned them (trimmed like the
/// caches).
#[derive(Debug, Default)]
pub(crate) struct Created {
    /// Jobs created or adopted.
    pub(crate) jobs: Vec<CachedJob>,
    /// PhaseCompletions created or adopted.
    pub(crate) phase_completions: Vec<PhaseCompletion>,
}

impl Created {
    /// Whether nothing was applied.
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.phase_completions.is_empty()
    }
}

impl Snapshot {
    /// Step 3: the snapshot with the children a reconcile just applied, as the API server
    /// returned them, in place of any older copy of the same object.
    pub(crate) fn with_created(mut self, created: Created) -> Self {
        let observed = &mut self.observed;
        let name_of = |meta: &ObjectMeta| meta.name.clone();
        for job in created.jobs {
            let name = name_of(&job.metadata);
            observed.jobs.retain(|j| name_of(&j.metadata) != name);
            observed.jobs.push(job.to_job());
        }
        for pc in created.phase_completions {
            let name = name_of(&pc.metadata);
            // A cached copy keeps its status (and any status this controller wrote): the
            // applied object carries none.
            if !observed
                .phase_completions
                .iter()
                .any(|p| name_of(&p.metadata) == name)
            {
                observed.phase_completions.push(pc);
            }
        }
        self
    }
}

/// Runs for the same date in the same namespace, created before `run`, that have not ended.
fn older_runs_for_date(run: &PipelineRun, all: &[Arc<CachedPipelineRun>]) -> Vec<OlderRun> {
    let key = |meta: &ObjectMeta| {
        (
            meta.creation_timestamp.clone().map(|t| t.0),
            meta.name.clone().unwrap_or_default(),
        )
    };
    let mine = key(&run.metadata);
    let mut older: Vec<OlderRun> = all
        .iter()
        .filter(|r| r.namespace() == run.namespace() && r.spec.date == run.spec.date)
        .filter(|r| r.name_any() != run.name_any() && r.metadata.deletion_timestamp.is_none())
        .filter(|r| !r.state().is_some_and(|s| s.is_terminal()))
        .filter(|r| key(&r.metadata) < mine)
        .map(|r| OlderRun {
            name: r.name_any(),
            state: r.state(),
        })
        .collect();
    older.sort_by(|a, b| a.name.cmp(&b.name));
    older
}

/// The run a Pod belongs to: Pod -> owning Job (from the cache) -> owning PipelineRun.
pub(crate) fn run_of_pod(
    pod: &CachedPod,
    jobs: &Store<CachedJob>,
) -> Option<ObjectRef<CachedPipelineRun>> {
    let ns = pod.namespace()?;
    let job = jobs.get(&ObjectRef::new(pod.job_name()?).within(&ns))?;
    let owner = job
        .owner_references()
        .iter()
        .find(|o| o.kind == "PipelineRun")?;
    Some(ObjectRef::new(&owner.name).within(&ns))
}
