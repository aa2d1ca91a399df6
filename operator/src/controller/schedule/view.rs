//! What a schedule reconcile sees of the cluster: one snapshot built from the watch caches,
//! corrected by this controller's own writes the caches have not shown yet.
//!
//! | Source | Holds | Why |
//! |---|---|---|
//! | `schedules` | every PipelineSchedule in scope | the schedule; which schedules a game-day ConfigMap wakes |
//! | `own_runs` | runs labelled `tipoff.dev/schedule` (trimmed) | a schedule's own runs; the same watch triggers its reconciles |
//! | `runs` | every run in scope: the PipelineRun controller's cache, shared | other runs of a date (a date with a run from anyone is covered) |
//! | `created` | runs this controller created that `own_runs` has not shown yet (at most 60 s) | a reconcile right after a creation sees the run in flight, so `Forbid` holds while the cache lags |
//! | `written` | the last status written per schedule and the version it was planned from | while the cache still shows that version, the next plan starts from it, so the same Events are not published twice |

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tipoff_crds::{PipelineRun, PipelineSchedule, PipelineScheduleStatus};

use crate::controller::cache::CachedPipelineRun;
use crate::controller::view::ObjectKey;
use crate::schedule::RunFacts;

/// How long a created run is counted before the cache shows it.
const CREATED_TTL: Duration = Duration::from_secs(60);

/// A status written, and the `resourceVersion` of the schedule it was planned from.
type Written = (Option<String>, PipelineScheduleStatus);

/// The schedule controller's view of the cluster.
#[derive(Clone)]
pub struct ScheduleView {
    schedules: Store<PipelineSchedule>,
    own_runs: Store<CachedPipelineRun>,
    runs: Store<CachedPipelineRun>,
    created: Arc<Mutex<HashMap<ObjectKey, (RunFacts, Instant)>>>,
    deleted: Arc<Mutex<HashMap<ObjectKey, Instant>>>,
    written: Arc<Mutex<HashMap<ObjectKey, Written>>>,
}

impl ScheduleView {
    /// A view over the three caches.
    pub fn new(
        schedules: Store<PipelineSchedule>,
        own_runs: Store<CachedPipelineRun>,
        runs: Store<CachedPipelineRun>,
    ) -> Self {
        Self {
            schedules,
            own_runs,
            runs,
            created: Arc::default(),
            deleted: Arc::default(),
            written: Arc::default(),
        }
    }

    /// The schedule as it should be planned from (its status corrected by the last write) and
    /// the runs of its namespace.
    pub fn snapshot(&self, cached: &PipelineSchedule) -> (PipelineSchedule, Vec<RunFacts>) {
        let mut schedule = cached.clone();
        let ns = schedule.namespace().unwrap_or_default();
        let key = ObjectKey::new(&ns, &schedule.name_any());
        if let Ok(mut written) = self.written.lock() {
            match written.get(&key) {
                Some((planned_from, status))
                    if *planned_from == schedule.metadata.resource_version =>
                {
                    schedule.status = Some(status.clone());
                }
                Some(_) => {
                    written.remove(&key);
                }
                None => {}
            }
        }
        let uid = schedule.metadata.uid.clone().unwrap_or_default();
        let deleted: HashSet<String> = self
            .deleted
            .lock()
            .map(|mut d| {
                d.retain(|_, at| at.elapsed() < CREATED_TTL);
                d.keys()
                    .filter(|k| k.namespace == ns)
                    .map(|k| k.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let mut runs = Vec::new();
        for run in self.own_runs.state().iter().chain(self.runs.state().iter()) {
            if run.namespace().as_deref() == Some(ns.as_str())
                && !deleted.contains(&run.name_any())
                && seen.insert(run.name_any())
            {
                runs.push(facts(&run.to_pipeline_run(), &uid));
            }
        }
        if let Ok(mut created) = self.created.lock() {
            created.retain(|k, (_, at)| {
                at.elapsed() < CREATED_TTL && !(k.namespace == ns && seen.contains(&k.name))
            });
            for (k, (f, _)) in created.iter() {
                if k.namespace == ns && !seen.contains(&k.name) {
                    runs.push(f.clone());
                }
            }
        }
        (schedule, runs)
    }

    /// Records a run this controller created (as the API server returned it).
    pub fn created_run(&self, run: &PipelineRun, schedule_uid: &str) {
        let key = ObjectKey::new(&run.namespace().unwrap_or_default(), &run.name_any());
        if let Ok(mut created) = self.created.lock() {
            created.insert(key, (facts(run, schedule_uid), Instant::now()));
        }
    }

    /// Records a run this controller deleted, so it is not read from a lagging cache.
    pub fn deleted_run(&self, namespace: &str, name: &str) {
        if let Ok(mut deleted) = self.deleted.lock() {
            deleted.insert(ObjectKey::new(namespace, name), Instant::now());
        }
    }

    /// Records the status written for `schedule`, planned from its version `planned_from`.
    pub fn wrote_status(
        &self,
        schedule: &PipelineSchedule,
        planned_from: Option<String>,
        status: PipelineScheduleStatus,
    ) {
        let key = ObjectKey::new(
            &schedule.namespace().unwrap_or_default(),
            &schedule.name_any(),
        );
        if let Ok(mut written) = self.written.lock() {
            written.insert(key, (planned_from, status));
        }
    }

    /// Forgets what this controller remembers of a schedule that is gone.
    pub fn forget(&self, schedule: &PipelineSchedule) {
        let key = ObjectKey::new(
            &schedule.namespace().unwrap_or_default(),
            &schedule.name_any(),
        );
        if let Ok(mut written) = self.written.lock() {
            written.remove(&key);
        }
    }

    /// Every schedule in scope.
    pub fn schedules(&self) -> Store<PipelineSchedule> {
        self.schedules.clone()
    }
}

/// What the planner reads of `run`; `own` when an owner reference names `schedule_uid`.
pub fn facts(run: &PipelineRun, schedule_uid: &str) -> RunFacts {
    let own = !schedule_uid.is_empty()
        && run
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == schedule_uid);
    RunFacts {
        name: run.name_any(),
        date: run.spec.date.clone(),
        mode: run.spec.mode,
        own,
        state: run.status.as_ref().and_then(|s| s.state),
    }
}
