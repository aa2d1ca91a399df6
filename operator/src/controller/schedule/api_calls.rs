//! Schedule reconciles against the scripted API server ([`crate::controller::scripted_api`])
//! with caches fed by the test and a test clock: the exact API calls of a first reconcile, none
//! but the game-day read while the caches lag or after they caught up, and `AlreadyExists` as
//! "done".

use std::sync::Arc;

use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::json;
use tipoff_crds::PipelineSchedule;

use super::reconcile::reconcile;
use super::view::ScheduleView;
use super::{Clock, ScheduleContext};
use crate::controller::cache::CachedPipelineRun;
use crate::controller::scripted_api::{ScriptedApi, now};
use crate::metrics::Metrics;

const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

struct Harness {
    api: ScriptedApi,
    schedules: Writer<PipelineSchedule>,
    own_runs: Writer<CachedPipelineRun>,
    _runs: Writer<CachedPipelineRun>,
    view: ScheduleView,
    ctx: Arc<ScheduleContext>,
    _clock: tempfile::TempDir,
}

impl Harness {
    /// A schedule from Jan 28 (every day a game day but the 29th), at Jan 31 12:00 UTC: the 28th
    /// and the 30th are due inside the window, the 29th is skipped.
    fn new() -> Self {
        crate::install_crypto_provider();
        let api = ScriptedApi::default();
        let (sched_reader, mut schedules) = reflector::store();
        let (own_reader, own_runs) = reflector::store();
        let (runs_reader, runs) = reflector::store();
        let view = ScheduleView::new(sched_reader, own_reader, runs_reader);
        let dir = tempfile::tempdir().unwrap();
        let clock = dir.path().join("now");
        std::fs::write(&clock, "2026-01-31T12:00:00Z").unwrap();
        let ctx = Arc::new(ScheduleContext::new(
            api.client(),
            view.clone(),
            "op-test",
            Arc::new(Metrics::new()),
            Clock::File(clock),
        ));
        api.put(
            "configmaps/games",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "games", "namespace": "nba"},
                   "data": {"dates": "2026-01-28\n2026-01-30\n2026-01-31\nthrough: 2026-02-10\n"}}),
        );
        let schedule = api.put(
            "pipelineschedules/nba",
            json!({
                "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineSchedule",
                "metadata": {"name": "nba", "namespace": "nba", "uid": "u-nba", "generation": 1,
                             "creationTimestamp": now()},
                "spec": {"gameDays": {"configMap": "games"}, "startDate": "2026-01-28",
                         "release": {"image": IMAGE, "commit": "c4f8f339"}}
            }),
        );
        schedules.apply_watcher_event(&Event::Apply(serde_json::from_value(schedule).unwrap()));
        Self {
            api,
            schedules,
            own_runs,
            _runs: runs,
            view,
            ctx,
            _clock: dir,
        }
    }

    /// Reconciles the schedule as its cache shows it; returns the API calls (Events sorted:
    /// they are published at once).
    async fn reconcile(&self) -> Vec<String> {
        let cached = self
            .view
            .schedules()
            .state()
            .into_iter()
            .find(|s| s.metadata.name.as_deref() == Some("nba"))
            .unwrap();
        reconcile(cached, Arc::clone(&self.ctx)).await.unwrap();
        let mut calls = self.api.take_calls();
        calls.sort_by_key(|c| (c.starts_with("POST events"), c.clone()));
        calls
    }

    /// The watches catch up with what the server has.
    fn watches_catch_up(&mut self, runs: &[&str]) {
        let schedule = self.api.get("pipelineschedules/nba").unwrap();
        self.schedules
            .apply_watcher_event(&Event::Apply(serde_json::from_value(schedule).unwrap()));
        for run in runs {
            let stored = self.api.get(&format!("pipelineruns/{run}")).unwrap();
            let mut cached: CachedPipelineRun = serde_json::from_value(stored).unwrap();
            cached.trim();
            self.own_runs.apply_watcher_event(&Event::Apply(cached));
        }
    }
}

#[tokio::test]
async fn a_first_reconcile_reads_the_game_days_creates_the_oldest_due_run_then_the_status_then_its_events()
 {
    let h = Harness::new();
    assert_eq!(
        h.reconcile().await,
        [
            "GET configmaps/games",
            "PATCH pipelineschedules/nba/status",
            "POST pipelineruns",
            "POST events DateSkipped",
            "POST events ReadyChanged",
            "POST events RunCreated",
        ]
    );
    let run = h.api.get("pipelineruns/nba-2026-01-28").unwrap();
    assert_eq!(run["metadata"]["ownerReferences"][0]["uid"], "u-nba");
    assert_eq!(run["metadata"]["labels"]["tipoff.dev/schedule"], "nba");
    assert_eq!(run["spec"]["mode"], "Production");
    let status = &h.api.get("pipelineschedules/nba").unwrap()["status"];
    assert_eq!(status["lastScheduledDate"], "2026-01-28");
    assert_eq!(status["overdue"], 1, "the 30th waits (Forbid)");
    assert_eq!(status["skipped"][0]["date"], "2026-01-29");
}

#[tokio::test]
async fn while_the_caches_lag_or_once_caught_up_only_the_game_days_are_read() {
    let mut h = Harness::new();
    h.reconcile().await;
    let first = h.api.get("pipelineschedules/nba").unwrap()["status"].clone();
    let again = h.reconcile().await;
    let second = h.api.get("pipelineschedules/nba").unwrap()["status"].clone();
    assert_eq!(first, second, "{again:?}");
    // Neither the run nor the status are in the caches yet: the view's own records stand in,
    // so the run in flight holds the 30th back and nothing is written again.
    assert_eq!(h.reconcile().await, ["GET configmaps/games"]);
    h.watches_catch_up(&["nba-2026-01-28"]);
    assert_eq!(h.reconcile().await, ["GET configmaps/games"]);
}

#[tokio::test]
async fn a_run_that_already_exists_is_done() {
    let h = Harness::new();
    // Another replica created the 28th's run a moment ago; no cache has shown it.
    h.api.put(
        "pipelineruns/nba-2026-01-28",
        json!({"apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
               "metadata": {"name": "nba-2026-01-28", "namespace": "nba"},
               "spec": {"date": "2026-01-28", "mode": "Production",
                        "release": {"image": IMAGE, "commit": "c4f8f339"}}}),
    );
    let calls = h.reconcile().await;
    assert!(calls.contains(&"POST pipelineruns".to_owned()), "{calls:?}");
    assert!(calls.contains(&"PATCH pipelineschedules/nba/status".to_owned()));
    // The second reconcile does not try again, nor the 30th (the 28th counts as in flight).
    assert_eq!(h.reconcile().await, ["GET configmaps/games"]);
}
