//! Backfill reconciles against the scripted API server ([`crate::controller::scripted_api`])
//! with caches fed by the test: the exact API calls of a first reconcile, and none while the
//! caches lag behind this controller's own writes or after they caught up.

use std::sync::Arc;

use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::json;
use tipoff_crds::PipelineBackfill;

use super::BackfillContext;
use super::reconcile::reconcile;
use super::view::BackfillView;
use crate::controller::cache::CachedPipelineRun;
use crate::controller::scripted_api::{ScriptedApi, now};
use crate::metrics::Metrics;

const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

struct Harness {
    api: ScriptedApi,
    backfills: Writer<PipelineBackfill>,
    own_runs: Writer<CachedPipelineRun>,
    _runs: Writer<CachedPipelineRun>,
    view: BackfillView,
    ctx: Arc<BackfillContext>,
}

impl Harness {
    /// A backfill of three dates, two at a time, applied by someone and seen by the watch.
    fn new() -> Self {
        crate::install_crypto_provider();
        let api = ScriptedApi::default();
        let (bf_reader, mut backfills) = reflector::store();
        let (own_reader, own_runs) = reflector::store();
        let (runs_reader, runs) = reflector::store();
        let view = BackfillView::new(bf_reader, own_reader, runs_reader, Default::default());
        let ctx = Arc::new(BackfillContext::new(
            api.client(),
            view.clone(),
            "op-test",
            Arc::new(Metrics::new()),
        ));
        let backfill = api.put(
            "pipelinebackfills/bf",
            json!({
                "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineBackfill",
                "metadata": {"name": "bf", "namespace": "nba", "uid": "u-bf", "generation": 1,
                             "creationTimestamp": now()},
                "spec": {"from": "2026-01-01", "to": "2026-01-03", "maxConcurrent": 2,
                         "release": {"image": IMAGE, "commit": "c4f8f339"}}
            }),
        );
        backfills.apply_watcher_event(&Event::Apply(serde_json::from_value(backfill).unwrap()));
        Self {
            api,
            backfills,
            own_runs,
            _runs: runs,
            view,
            ctx,
        }
    }

    /// Reconciles the backfill as its cache shows it; returns the API calls, the run applies
    /// and the Events each sorted (they are made at once).
    async fn reconcile(&self) -> Vec<String> {
        let cached = self
            .view
            .backfills()
            .state()
            .into_iter()
            .find(|b| b.metadata.name.as_deref() == Some("bf"))
            .unwrap();
        reconcile(cached, Arc::clone(&self.ctx)).await.unwrap();
        let mut calls = self.api.take_calls();
        calls.sort_by_key(|c| {
            (
                !c.starts_with("PATCH pipelineruns/"),
                !c.starts_with("PATCH pipelinebackfills/"),
                c.clone(),
            )
        });
        calls
    }

    /// The watches catch up with what the server has.
    fn watches_catch_up(&mut self, runs: &[&str]) {
        let backfill = self.api.get("pipelinebackfills/bf").unwrap();
        self.backfills
            .apply_watcher_event(&Event::Apply(serde_json::from_value(backfill).unwrap()));
        for run in runs {
            let stored = self.api.get(&format!("pipelineruns/{run}")).unwrap();
            let mut cached: CachedPipelineRun = serde_json::from_value(stored).unwrap();
            cached.trim();
            self.own_runs.apply_watcher_event(&Event::Apply(cached));
        }
    }
}

#[tokio::test]
async fn a_first_reconcile_applies_max_concurrent_runs_then_the_status_then_its_events() {
    let h = Harness::new();
    assert_eq!(
        h.reconcile().await,
        [
            "PATCH pipelineruns/bf-2026-01-01",
            "PATCH pipelineruns/bf-2026-01-02",
            "PATCH pipelinebackfills/bf/status",
            "POST events BackfillStateChanged",
            "POST events RunsCreated",
        ]
    );
    let run = h.api.get("pipelineruns/bf-2026-01-01").unwrap();
    assert_eq!(run["metadata"]["ownerReferences"][0]["uid"], "u-bf");
    assert_eq!(run["metadata"]["labels"]["tipoff.dev/backfill"], "bf");
    assert_eq!(run["spec"]["mode"], "Backfill");
    let status = &h.api.get("pipelinebackfills/bf").unwrap()["status"];
    assert_eq!(status["counts"]["running"], 2);
    assert_eq!(status["counts"]["pending"], 1);
}

#[tokio::test]
async fn while_the_caches_lag_nothing_is_applied_written_or_published_again() {
    let mut h = Harness::new();
    h.reconcile().await;
    // Neither the runs nor the status are in the caches yet: the view's own records stand in.
    assert_eq!(h.reconcile().await, Vec::<String>::new());
    // Caught up: still nothing to do; the third date waits for a free place.
    h.watches_catch_up(&["bf-2026-01-01", "bf-2026-01-02"]);
    assert_eq!(h.reconcile().await, Vec::<String>::new());
}
