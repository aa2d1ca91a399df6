//! The middle tier of tests: real reconciles against a scripted API server
//! ([`super::scripted_api`]) and caches fed by the test ([`super::view::Feed`]), asserting the
//! exact sequence of API calls. They test how the view's side tables work together (what is
//! skipped, overlaid and remembered) without a whole dev/cluster.

use std::sync::Arc;

use serde_json::{Value, json};
use tipoff_crds::{Mode, ProcessorResult};

use super::cache::{CachedJob, CachedPhaseCompletion, CachedPipelineRun, CachedPod};
use super::reconcile::reconcile;
use super::scripted_api::{ScriptedApi, now};
use super::view::Feed;
use super::{Context, Error};
use crate::catalog::Catalog;
use tipoff_crds::children::{job_name, phase_completion_name};

const RUN: &str = "nba-2026-01-29";
const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT: &str = "c4f8f339";

/// Two phases of one processor each.
const CATALOG: &str = r"
defaults:
  deadlineSeconds: 600
  retry: {maxAttempts: 2, backoffSeconds: 30, maxBackoffSeconds: 60}
  parallelism: 1
drift: {Production: blocking, SameDay: blocking, Backfill: warning}
gates: []
phases:
  - number: 1
    name: scrape
    processors:
      - {name: scraper, outputs: [nba_raw.schedule]}
  - number: 2
    name: raw
    processors:
      - {name: loader, outputs: [nba_raw.nbac_schedule]}
";

struct Harness {
    api: ScriptedApi,
    feed: Feed,
    ctx: Arc<Context>,
}

impl Harness {
    /// A run applied by someone, seen by the run watch; nothing else exists.
    fn new() -> Self {
        crate::install_crypto_provider();
        let api = ScriptedApi::default();
        let feed = Feed::new();
        let catalog = Catalog::from_yaml(CATALOG).unwrap();
        let ctx = Arc::new(Context::new(
            api.client(),
            catalog,
            feed.view.clone(),
            "op-test",
        ));
        let mut h = Self { api, feed, ctx };
        let run = h.api.put(
            &format!("pipelineruns/{RUN}"),
            json!({
                "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
                "metadata": {"name": RUN, "namespace": "nba", "uid": "u-run", "generation": 1,
                             "creationTimestamp": now()},
                "spec": {"date": "2026-01-29", "mode": "Production",
                         "release": {"image": IMAGE, "commit": COMMIT}}
            }),
        );
        h.feed.run(serde_json::from_value(run).unwrap());
        h
    }

    /// Reconciles the run as the run cache shows it; returns the API calls it made.
    async fn reconcile(&self) -> Result<Vec<String>, Error> {
        let cached = self
            .feed
            .view
            .runs()
            .state()
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(RUN))
            .unwrap();
        let result = reconcile(cached, Arc::clone(&self.ctx)).await;
        let calls = self.api.take_calls();
        if let Err(e) = &result {
            eprintln!("reconcile failed after {calls:?}: {e}");
        }
        result.map(|_| calls)
    }

    /// The watches catch up: the run, `phases`' PhaseCompletions and `jobs` as the server has
    /// them.
    async fn watches_catch_up(&mut self, phases: &[u8], jobs: &[&str]) {
        let run = self.api.get(&format!("pipelineruns/{RUN}")).unwrap();
        self.feed
            .run(serde_json::from_value::<CachedPipelineRun>(run).unwrap());
        for phase in phases {
            let pc = self.object(&format!(
                "phasecompletions/{}",
                phase_completion_name(RUN, *phase)
            ));
            self.feed
                .phase_completion(serde_json::from_value::<CachedPhaseCompletion>(pc).unwrap())
                .await;
        }
        for job in jobs {
            let job = self.object(&format!("jobs/{job}"));
            self.feed
                .job(serde_json::from_value::<CachedJob>(job).unwrap())
                .await;
        }
    }

    fn object(&self, path: &str) -> Value {
        self.api
            .get(path)
            .unwrap_or_else(|| panic!("{path} was never written"))
    }

    /// Job `name` of `processor` completes with a good result; the watches report the Job and
    /// its Pod.
    async fn job_succeeds(&self, name: &str, processor: &str, outputs: &str) {
        let mut job = self.object(&format!("jobs/{name}"));
        let now = now();
        job["status"] = json!({
            "startTime": now, "completionTime": now, "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}]
        });
        let result = ProcessorResult {
            processor: processor.into(),
            service: "tipoff-processor".into(),
            version: "0.1.0".into(),
            commit: COMMIT.into(),
            date: "2026-01-29".into(),
            mode: Mode::Production,
            rows: [(outputs.to_owned(), 10)].into(),
            checks: vec![],
            warnings: vec![],
            duration_ms: 4000,
        };
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-0-x"), "namespace": "nba",
                         "labels": job["metadata"]["labels"],
                         "annotations": {"batch.kubernetes.io/job-completion-index": "0"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": name, "uid": "u-job"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "processor", "image": IMAGE, "imageID": IMAGE, "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "finishedAt": now,
                                         "message": serde_json::to_string(&result).unwrap()}}}]}
        });
        self.feed
            .job(serde_json::from_value::<CachedJob>(job).unwrap())
            .await;
        self.feed
            .pod(serde_json::from_value::<CachedPod>(pod).unwrap())
            .await;
    }
}

fn pc(phase: u8) -> String {
    phase_completion_name(RUN, phase)
}

fn job(phase: u8, processor: &str) -> String {
    job_name(RUN, phase, processor, 1)
}

#[tokio::test]
async fn the_first_reconcile_creates_the_first_phase_and_writes_each_status_once() {
    let h = Harness::new();
    assert_eq!(
        h.reconcile().await.unwrap(),
        [
            format!("PATCH phasecompletions/{}", pc(1)),
            format!("PATCH jobs/{}", job(1, "scraper")),
            format!("PATCH phasecompletions/{}/status", pc(1)),
            format!("PATCH pipelineruns/{RUN}/status"),
            "POST events RunStateChanged".to_owned(),
        ]
    );
}

#[tokio::test]
async fn a_reconcile_while_the_caches_lag_behind_its_writes_makes_no_call() {
    let h = Harness::new();
    h.reconcile().await.unwrap();
    // No watch event has arrived: the Job is unseen, the PhaseCompletion awaited, both
    // statuses remembered. Planned from the caches alone, this would apply both again and
    // rewrite both statuses.
    assert_eq!(h.reconcile().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_phase_completing_starts_the_next_and_records_it_in_one_round() {
    let mut h = Harness::new();
    h.reconcile().await.unwrap();
    h.watches_catch_up(&[1], &[&job(1, "scraper")]).await;
    assert_eq!(h.reconcile().await.unwrap(), Vec::<String>::new());

    h.job_succeeds(&job(1, "scraper"), "scraper", "nba_raw.schedule")
        .await;
    assert_eq!(
        h.reconcile().await.unwrap(),
        [
            format!("PATCH phasecompletions/{}", pc(2)),
            format!("PATCH jobs/{}", job(2, "loader")),
            format!("PATCH phasecompletions/{}/status", pc(1)),
            format!("PATCH phasecompletions/{}/status", pc(2)),
            format!("PATCH pipelineruns/{RUN}/status"),
            "POST events PhaseStateChanged".to_owned(),
        ]
    );
    // The Job's result is recorded in the ledger the server has; once the cache shows that
    // ledger, the finished Job leaves the cache (it is settled) and nothing is written.
    h.watches_catch_up(&[1, 2], &[&job(2, "loader")]).await;
    assert!(h.feed.has_job("nba", &job(1, "scraper")));
    assert_eq!(h.reconcile().await.unwrap(), Vec::<String>::new());
    assert!(!h.feed.has_job("nba", &job(1, "scraper")));
}

#[tokio::test]
async fn a_conflict_on_the_run_status_is_retried_without_applying_the_children_again() {
    let h = Harness::new();
    h.api
        .fail_next(&format!("PATCH pipelineruns/{RUN}/status"), 409);
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.category(), "ApiConflict");
    // The Job and the PhaseCompletion status were written and are remembered: the retry
    // writes only the run's status, and its Event, which the failed attempt never published.
    assert_eq!(
        h.reconcile().await.unwrap(),
        [
            format!("PATCH pipelineruns/{RUN}/status"),
            "POST events RunStateChanged".to_owned(),
        ]
    );
}
