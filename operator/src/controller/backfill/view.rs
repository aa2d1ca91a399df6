//! What a backfill reconcile sees of the cluster: one snapshot built from the watch caches,
//! corrected by this controller's own writes the caches have not shown yet.
//!
//! | Source | Holds | Why |
//! |---|---|---|
//! | `backfills` | every PipelineBackfill in scope | the backfill and the overlap rule |
//! | `own_runs` | runs labelled `tipoff.dev/backfill` (trimmed) | a backfill's own runs; the same watch triggers its reconciles, so a trigger never outruns what is read |
//! | `runs` | every run in scope: the PipelineRun controller's cache, shared | the other runs of a date (skip, wait, replace); no second full cache of runs |
//! | `run_statuses` | the run statuses the PipelineRun controller wrote that `runs` and `own_runs` may not show yet | every run is read with them overlaid: a run that just failed reads as failed, not in flight |
//! | `applied` | runs this controller applied that `own_runs` has not shown yet (at most 60 s) | a reconcile right after a creation counts them in flight, so `maxConcurrent` holds while the cache lags |
//! | `written` | the last status written per backfill and the version it was planned from | while the cache still shows that version, the next plan starts from what was written, so the same Events are not published twice |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tipoff_crds::pipeline_backfill::LABEL_BACKFILL;
use tipoff_crds::{
    BackfillState, Condition, PipelineBackfill, PipelineBackfillStatus, PipelineRun,
};

use crate::backfill::{Observed, OtherBackfill, RunFacts};
use crate::controller::cache::CachedPipelineRun;
use crate::controller::view::{ObjectKey, WrittenRunStatuses};

/// How long an applied run is counted before the cache shows it.
const APPLIED_TTL: Duration = Duration::from_secs(60);

/// A status written, and the `resourceVersion` of the backfill it was planned from.
type Written = (Option<String>, PipelineBackfillStatus);

/// The backfill controller's view of the cluster.
#[derive(Clone)]
pub struct BackfillView {
    backfills: Store<PipelineBackfill>,
    own_runs: Store<CachedPipelineRun>,
    runs: Store<CachedPipelineRun>,
    run_statuses: WrittenRunStatuses,
    applied: Arc<Mutex<HashMap<ObjectKey, (RunFacts, Instant)>>>,
    written: Arc<Mutex<HashMap<ObjectKey, Written>>>,
}

impl BackfillView {
    /// A view over the three caches, reading runs with `run_statuses` overlaid.
    pub fn new(
        backfills: Store<PipelineBackfill>,
        own_runs: Store<CachedPipelineRun>,
        runs: Store<CachedPipelineRun>,
        run_statuses: WrittenRunStatuses,
    ) -> Self {
        Self {
            backfills,
            own_runs,
            runs,
            run_statuses,
            applied: Arc::default(),
            written: Arc::default(),
        }
    }

    /// Waits until the backfill and own-run caches have listed.
    pub async fn synced(&self) -> bool {
        self.backfills.wait_until_ready().await.is_ok()
            && self.own_runs.wait_until_ready().await.is_ok()
    }

    /// The backfill as it should be planned from (its status corrected by the last write) and
    /// everything that exists for it.
    pub fn snapshot(&self, cached: &PipelineBackfill) -> (PipelineBackfill, Observed) {
        let mut backfill = cached.clone();
        let ns = backfill.namespace().unwrap_or_default();
        let key = ObjectKey::new(&ns, &backfill.name_any());
        if let Ok(mut written) = self.written.lock() {
            match written.get(&key) {
                Some((planned_from, status))
                    if *planned_from == backfill.metadata.resource_version =>
                {
                    backfill.status = Some(status.clone());
                }
                Some(_) => {
                    written.remove(&key);
                }
                None => {}
            }
        }
        let uid = backfill.metadata.uid.clone().unwrap_or_default();
        let (from, to) = (backfill.spec.from.clone(), backfill.spec.to.clone());
        let in_range = |date: &str| from.as_str() <= date && date <= to.as_str();

        let mut runs: Vec<RunFacts> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // One read of the store for the whole snapshot: a run the watch adds between two reads
        // would be neither read nor counted as applied.
        let own_runs = self.own_runs.state();
        for run in &own_runs {
            if run.namespace().as_deref() == Some(ns.as_str()) && in_range(&run.spec.date) {
                seen.insert(run.name_any());
                runs.push(facts(&self.as_written(run), &uid));
            }
        }
        for run in self.runs.state() {
            let labelled = run.labels().contains_key(LABEL_BACKFILL);
            if run.namespace().as_deref() == Some(ns.as_str())
                && in_range(&run.spec.date)
                && !labelled
                && seen.insert(run.name_any())
            {
                runs.push(facts(&self.as_written(&run), &uid));
            }
        }
        if let Ok(mut applied) = self.applied.lock() {
            applied.retain(|k, (_, at)| {
                at.elapsed() < APPLIED_TTL
                    && !own_runs.iter().any(|r| {
                        r.metadata.name.as_deref() == Some(k.name.as_str())
                            && r.metadata.namespace.as_deref() == Some(k.namespace.as_str())
                    })
            });
            for (k, (f, _)) in applied.iter() {
                if k.namespace == ns && in_range(&f.date) && !seen.contains(&k.name) {
                    runs.push(f.clone());
                }
            }
        }

        let other_backfills = self
            .backfills
            .state()
            .iter()
            .filter(|b| b.namespace().as_deref() == Some(ns.as_str()))
            .filter(|b| b.metadata.uid.as_deref() != Some(uid.as_str()))
            .map(|b| OtherBackfill {
                name: b.name_any(),
                created: b
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
                from: b.spec.from.clone(),
                to: b.spec.to.clone(),
                ended: b
                    .status
                    .as_ref()
                    .and_then(|s| s.state)
                    .is_some_and(BackfillState::is_terminal),
            })
            .collect();
        (
            backfill,
            Observed {
                runs,
                other_backfills,
                // Read from the API by the reconcile, not from a cache.
                game_days: None,
            },
        )
    }

    /// A cached run with the status the run controller last wrote overlaid.
    fn as_written(&self, cached: &CachedPipelineRun) -> PipelineRun {
        let mut run = cached.to_pipeline_run();
        self.run_statuses.overlay(&mut run);
        run
    }

    /// Records a run this controller applied (as the API server returned it).
    pub fn applied_run(&self, run: &PipelineRun, backfill_uid: &str) {
        let key = ObjectKey::new(&run.namespace().unwrap_or_default(), &run.name_any());
        if let Ok(mut applied) = self.applied.lock() {
            applied.insert(key, (facts(run, backfill_uid), Instant::now()));
        }
    }

    /// Records the status written for `backfill`, planned from its version `planned_from`.
    pub fn wrote_status(
        &self,
        backfill: &PipelineBackfill,
        planned_from: Option<String>,
        status: PipelineBackfillStatus,
    ) {
        let key = ObjectKey::new(
            &backfill.namespace().unwrap_or_default(),
            &backfill.name_any(),
        );
        if let Ok(mut written) = self.written.lock() {
            written.insert(key, (planned_from, status));
        }
    }

    /// Forgets what this controller remembers of a backfill that is gone.
    pub fn forget(&self, backfill: &PipelineBackfill) {
        let key = ObjectKey::new(
            &backfill.namespace().unwrap_or_default(),
            &backfill.name_any(),
        );
        if let Ok(mut written) = self.written.lock() {
            written.remove(&key);
        }
    }

    /// Every backfill in scope.
    pub fn backfills(&self) -> Store<PipelineBackfill> {
        self.backfills.clone()
    }
}

/// What the planner reads of `run`; `own` when an owner reference names `backfill_uid`.
pub fn facts(run: &PipelineRun, backfill_uid: &str) -> RunFacts {
    let status = run.status.as_ref();
    let own = !backfill_uid.is_empty()
        && run
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == backfill_uid);
    RunFacts {
        name: run.name_any(),
        date: run.spec.date.clone(),
        created: run
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0),
        own,
        state: status.and_then(|s| s.state),
        started: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        completed: status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
        drift: status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c: &Condition| c.type_ == "CodeDrift" && c.is_true())
        }),
        release: run.spec.release.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher::Event;
    use serde_json::json;
    use tipoff_crds::{PipelineRunStatus, RunState};

    use super::*;

    fn run(state: &str) -> serde_json::Value {
        json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": "nba-2026-01-01", "namespace": "nba", "resourceVersion": "5",
                         "creationTimestamp": "2026-01-02T10:00:00Z"},
            "spec": {"date": "2026-01-01", "mode": "Production",
                     "release": {"image": "img@sha256:aa", "commit": "abc1234"}},
            "status": {"state": state}
        })
    }

    /// The run controller wrote `Failed` a moment ago; the run cache still shows the version
    /// that write was planned from, with `Running`. The backfill reads `Failed`.
    #[test]
    fn other_runs_are_read_with_the_statuses_the_run_controller_just_wrote() {
        let (backfills, mut bf_writer): (_, Writer<PipelineBackfill>) = reflector::store();
        let (own_runs, _own_writer): (_, Writer<CachedPipelineRun>) = reflector::store();
        let (runs, mut runs_writer): (_, Writer<CachedPipelineRun>) = reflector::store();
        let statuses = WrittenRunStatuses::default();
        let view = BackfillView::new(backfills.clone(), own_runs, runs, statuses.clone());

        let backfill: PipelineBackfill = serde_json::from_value(json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineBackfill",
            "metadata": {"name": "bf", "namespace": "nba", "uid": "u-bf"},
            "spec": {"from": "2026-01-01", "to": "2026-01-01", "reprocess": "Failed",
                     "release": {"image": "img@sha256:aa", "commit": "abc1234"}}
        }))
        .unwrap();
        bf_writer.apply_watcher_event(&Event::Apply(backfill.clone()));
        let cached: CachedPipelineRun = serde_json::from_value(run("Running")).unwrap();
        runs_writer.apply_watcher_event(&Event::Apply(cached));

        let state = |view: &BackfillView| view.snapshot(&backfill).1.runs[0].state;
        assert_eq!(state(&view), Some(RunState::Running));

        let written: PipelineRun = serde_json::from_value(run("Failed")).unwrap();
        let status: PipelineRunStatus = written.status.clone().unwrap();
        statuses.record(&written, "5", status);
        assert_eq!(state(&view), Some(RunState::Failed));

        // Once the cache shows a later version, the cache is trusted again.
        let mut later = run("Running");
        later["metadata"]["resourceVersion"] = json!("6");
        runs_writer.apply_watcher_event(&Event::Apply(serde_json::from_value(later).unwrap()));
        assert_eq!(state(&view), Some(RunState::Running));
    }
}
