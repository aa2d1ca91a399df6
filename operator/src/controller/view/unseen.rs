//! Jobs this controller created that its Job cache has not shown yet.
//!
//! A reconcile that creates Jobs holds the API server's answer to each create: the Job as it
//! now exists. Planning the statuses from those Jobs in the same reconcile writes the phase's
//! `running` list, `nextPhaseTriggered` and the run's progress once, instead of once now and
//! again when the watch brings the Jobs back (the benchmark measured that second round as 0.49
//! API writes per Job). A status then names a Job the cache may not show yet, so until it does,
//! every reconcile of the run plans from the created Job as well: otherwise a `running` entry
//! without a cached Job would read as a Job that vanished.
//!
//! An entry leaves when its Job is seen: the cache shows it (checked by each reconcile), the
//! watch reports any event for it (its deletion included), or a relist that started after the
//! entry was made ends without listing it (the Job was deleted while unwatched). Nothing else
//! expires it: a watch that lags by minutes must not turn a live Job into a vanished one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event};

use super::{Children, lock};
use crate::controller::cache::CachedJob;
use tipoff_crds::children::LABEL_RUN;

#[derive(Default)]
struct Inner {
    /// Created Jobs by run, then by name, with the relist epoch they were created in.
    jobs: HashMap<Children, HashMap<String, (u64, CachedJob)>>,
    /// Counts the relists that started.
    epoch: u64,
}

/// The created, not yet seen Jobs.
#[derive(Clone, Default)]
pub(crate) struct Unseen {
    inner: Arc<Mutex<Inner>>,
}

impl Unseen {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Records a Job the API server just returned for a create (or an adoption).
    pub(crate) fn created(&self, job: CachedJob) {
        let (Some(name), Some(run)) = (job.metadata.name.clone(), Children::of_job(&job)) else {
            return;
        };
        let mut inner = self.lock();
        let epoch = inner.epoch;
        inner
            .jobs
            .entry(run)
            .or_default()
            .insert(name, (epoch, job));
    }

    /// The unseen Jobs of `run`, less those `cached` (which leave for good).
    pub(crate) fn of_run(&self, run: &Children, cached: &[&str]) -> Vec<CachedJob> {
        let mut inner = self.lock();
        let Some(jobs) = inner.jobs.get_mut(run) else {
            return Vec::new();
        };
        jobs.retain(|name, _| !cached.contains(&name.as_str()));
        let out = jobs.values().map(|(_, job)| job.clone()).collect();
        if jobs.is_empty() {
            inner.jobs.remove(run);
        }
        out
    }

    /// How many Jobs are unseen (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().jobs.values().map(HashMap::len).sum()
    }

    fn seen(&self, job: &CachedJob) {
        let meta = &job.metadata;
        let (Some(ns), Some(name)) = (&meta.namespace, &meta.name) else {
            return;
        };
        let mut inner = self.lock();
        // The label is on every Job tipoff creates; without it, look through every run.
        let ours = job.label(LABEL_RUN);
        inner.jobs.retain(|run, jobs| {
            if &run.namespace == ns && ours.is_none_or(|l| l == run.run) {
                jobs.remove(name);
            }
            !jobs.is_empty()
        });
    }

    fn relist_started(&self) {
        self.lock().epoch += 1;
    }

    fn relist_done(&self) {
        let mut inner = self.lock();
        let current = inner.epoch;
        inner.jobs.retain(|_, jobs| {
            jobs.retain(|_, (epoch, _)| *epoch == current);
            !jobs.is_empty()
        });
    }

    /// Passes the Job watch's events through, learning from each which Jobs were seen.
    pub(crate) fn track<S>(
        &self,
        stream: S,
    ) -> impl Stream<Item = watcher::Result<Event<CachedJob>>> + Send + 'static
    where
        S: Stream<Item = watcher::Result<Event<CachedJob>>> + Send + 'static,
    {
        let unseen = self.clone();
        stream.inspect(move |event| match event {
            Ok(Event::Apply(job) | Event::InitApply(job) | Event::Delete(job)) => unseen.seen(job),
            Ok(Event::Init) => unseen.relist_started(),
            Ok(Event::InitDone) => unseen.relist_done(),
            Err(_) => {}
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::stream;
    use kube::api::ObjectMeta;

    use super::*;

    fn job(name: &str, run: &str) -> CachedJob {
        CachedJob {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("ns".to_owned()),
                labels: Some(BTreeMap::from([(LABEL_RUN.to_owned(), run.to_owned())])),
                ..ObjectMeta::default()
            },
            ..CachedJob::default()
        }
    }

    fn names(jobs: &[CachedJob]) -> Vec<&str> {
        let mut out: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.metadata.name.as_deref())
            .collect();
        out.sort();
        out
    }

    async fn feed(unseen: &Unseen, events: Vec<Event<CachedJob>>) {
        unseen
            .track(stream::iter(events.into_iter().map(Ok)))
            .for_each(|_| async {})
            .await;
    }

    #[test]
    fn a_created_job_is_its_runs_until_the_cache_shows_it() {
        let unseen = Unseen::default();
        unseen.created(job("r-a-1", "r"));
        unseen.created(job("r-b-1", "r"));
        unseen.created(job("s-a-1", "s"));
        assert_eq!(
            names(&unseen.of_run(&Children::jobs("ns", "r"), &[])),
            ["r-a-1", "r-b-1"]
        );
        assert!(unseen.of_run(&Children::jobs("other", "r"), &[]).is_empty());
        assert_eq!(
            names(&unseen.of_run(&Children::jobs("ns", "r"), &["r-a-1"])),
            ["r-b-1"]
        );
        // Once cached it is gone for good, even from a reconcile that no longer lists it.
        assert_eq!(
            names(&unseen.of_run(&Children::jobs("ns", "r"), &[])),
            ["r-b-1"]
        );
        assert_eq!(unseen.len(), 2);
    }

    #[tokio::test]
    async fn any_watch_event_for_a_job_means_it_was_seen() {
        let unseen = Unseen::default();
        for name in ["r-a-1", "r-b-1", "r-c-1"] {
            unseen.created(job(name, "r"));
        }
        feed(
            &unseen,
            vec![
                Event::Apply(job("r-a-1", "r")),
                Event::Delete(job("r-b-1", "r")),
                // Another run's Job of the same name is not this one.
                Event::Apply(job("r-c-1", "s")),
            ],
        )
        .await;
        assert_eq!(
            names(&unseen.of_run(&Children::jobs("ns", "r"), &[])),
            ["r-c-1"]
        );
    }

    #[tokio::test]
    async fn a_relist_forgets_jobs_created_before_it_that_it_did_not_list() {
        let unseen = Unseen::default();
        unseen.created(job("r-gone-1", "r"));
        unseen.created(job("r-listed-1", "r"));
        feed(
            &unseen,
            vec![Event::Init, Event::InitApply(job("r-listed-1", "r"))],
        )
        .await;
        // Created while the relist runs: the list may predate it, so it is kept.
        unseen.created(job("r-new-1", "r"));
        feed(&unseen, vec![Event::InitDone]).await;
        assert_eq!(
            names(&unseen.of_run(&Children::jobs("ns", "r"), &[])),
            ["r-new-1"]
        );
        assert_eq!(unseen.len(), 1);
    }
}
