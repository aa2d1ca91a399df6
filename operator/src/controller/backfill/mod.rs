//! The PipelineBackfill controller: the thin shell around [`crate::backfill::plan`], shaped
//! like the PipelineRun controller. It watches PipelineBackfills and the runs they created
//! (label `tipoff.dev/backfill`, owner references), reads the other runs of a date from the
//! PipelineRun controller's cache, and reconciles a backfill in named steps
//! ([`reconcile`]): snapshot, plan, apply the runs, plan again with them as created, write the
//! status, publish the Events.
//!
//! It owns no decision, and it never touches a run it did not create: reprocessing a date
//! creates a new run beside the old one.

#[cfg(test)]
mod api_calls;
mod reconcile;
pub mod view;

use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::runtime::{Controller, watcher};
use tipoff_crds::PipelineBackfill;
use tipoff_crds::pipeline_backfill::LABEL_BACKFILL;
use tracing::info;

use super::Scope;
use super::events::Publisher;
use crate::metrics::Metrics;
pub use view::BackfillView;

/// What every backfill reconcile shares.
pub struct BackfillContext {
    /// The API client.
    pub(crate) client: Client,
    /// The caches and what corrects them.
    pub(crate) view: BackfillView,
    /// Publishes Events.
    pub(crate) events: Publisher,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Consecutive reconcile failures per backfill, for the retry delay.
    pub(crate) backoff: super::backoff::ErrorBackoff,
}

impl BackfillContext {
    /// A context publishing Events as replica `instance`, recording into `metrics`.
    pub fn new(client: Client, view: BackfillView, instance: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            events: super::events(client.clone(), instance),
            client,
            view,
            metrics,
            backoff: super::backoff::ErrorBackoff::default(),
        }
    }

    /// With this backoff after failed reconciles.
    pub fn with_backoff(mut self, backoff: super::backoff::ErrorBackoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Waits until the PipelineBackfill API answers. The PipelineRun controller does not wait for
/// it: a cluster with the older CRDs only runs PipelineRuns.
pub async fn wait_for_crd(client: &Client, scope: &Scope) {
    super::wait_for_crd::<PipelineBackfill>(client, scope, "backfills").await;
}

/// The backfill controller and its view, reading the PipelineRun controller's run cache and
/// the statuses it wrote ([`super::View::runs`], [`super::View::written_run_statuses`]).
pub fn controller(
    client: Client,
    scope: &Scope,
    runs: &super::View,
) -> (Controller<PipelineBackfill>, BackfillView) {
    let (own_reader, own_runs) = super::own_runs(&client, scope, LABEL_BACKFILL);
    let controller = Controller::new(
        scope.api::<PipelineBackfill>(&client),
        watcher::Config::default().any_semantic(),
    )
    .owns_stream(own_runs);
    let view = BackfillView::new(
        controller.store(),
        own_reader,
        runs.runs(),
        runs.written_run_statuses(),
    );
    (controller, view)
}

/// Runs the backfill controller until `shutdown` resolves.
pub async fn run(
    controller: Controller<PipelineBackfill>,
    ctx: Arc<BackfillContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    info!("backfill controller starting");
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "backfill reconcile stream error");
            }
        })
        .await;
    info!("backfill controller stopped");
}

/// An owner reference to `backfill` (controller, blocking its deletion until the run is gone).
pub fn owner_reference(
    backfill: &PipelineBackfill,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    super::run_owner_reference(backfill)
}
