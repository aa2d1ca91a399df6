//! Test double: delivers watch events to a [`View`]'s caches through the same adapters the
//! watches use (trim, index, unseen, settled), when a test says so, so a test can let the caches
//! lag behind the API server or catch up.

use futures::{StreamExt, stream};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use tokio::sync::watch;

use super::View;
use crate::controller::cache::{CachedJob, CachedPhaseCompletion, CachedPipelineRun, CachedPod};

/// A view whose caches are fed by the test.
pub(crate) struct Feed {
    pub(crate) view: View,
    runs: Writer<CachedPipelineRun>,
    phase_completions: Writer<CachedPhaseCompletion>,
    _runs_listed: watch::Sender<bool>,
}

impl Feed {
    /// An empty view, listed.
    pub(crate) fn new() -> Self {
        let (run_reader, runs) = reflector::store();
        let (pc_reader, phase_completions) = reflector::store();
        let (runs_listed, runs_synced) = watch::channel(true);
        let view = View::new(run_reader, runs_synced, pc_reader);
        for cache in [
            super::ChildCache::PhaseCompletions,
            super::ChildCache::Jobs,
            super::ChildCache::Pods,
        ] {
            view.mark_listed(cache);
        }
        Self {
            view,
            runs,
            phase_completions,
            _runs_listed: runs_listed,
        }
    }

    /// The run watch reports `run`.
    pub(crate) fn run(&mut self, mut run: CachedPipelineRun) {
        run.trim();
        self.runs.apply_watcher_event(&Event::Apply(run));
    }

    /// The PhaseCompletion watch reports `pc`.
    pub(crate) async fn phase_completion(&mut self, pc: CachedPhaseCompletion) {
        let events: Vec<_> = self
            .view
            .index_phase_completions(stream::iter([Ok(Event::Apply(pc))]))
            .collect()
            .await;
        for event in events.into_iter().flatten() {
            self.phase_completions.apply_watcher_event(&event);
        }
    }

    /// The Job watch reports `job`.
    pub(crate) async fn job(&self, job: CachedJob) {
        self.view
            .reflect_jobs(stream::iter([Ok(Event::Apply(job))]))
            .for_each(|_| async {})
            .await;
    }

    /// The Pod watch reports `pod`.
    pub(crate) async fn pod(&self, pod: CachedPod) {
        self.view
            .reflect_pods(stream::iter([Ok(Event::Apply(pod))]))
            .for_each(|_| async {})
            .await;
    }

    /// Whether the Job cache holds Job `name` of namespace `ns`.
    pub(crate) fn has_job(&self, ns: &str, name: &str) -> bool {
        self.view
            .jobs
            .jobs
            .store
            .get(&reflector::ObjectRef::new(name).within(ns))
            .is_some()
    }
}
