//! The PipelineSchedule controller: the thin shell around [`crate::schedule::plan`], shaped
//! like the PipelineBackfill controller. It watches PipelineSchedules, the runs they created
//! (label `tipoff.dev/schedule`, owner references) and game-day ConfigMaps (label
//! `tipoff.dev/game-days`), reads the other runs of the namespace from the PipelineRun
//! controller's cache, and reconciles a schedule in named steps ([`reconcile`]): read the
//! game days, snapshot, plan, create the runs, delete old ones, write the status, publish the
//! Events; then requeue at the next due instant.
//!
//! It owns no decision, and it never changes a run that exists: a run is created once, by
//! name, and `AlreadyExists` means it is done.

#[cfg(test)]
mod api_calls;
pub mod clock;
mod reconcile;
pub mod view;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, reflector, watcher};
use kube::{Client, ResourceExt};
use tipoff_crds::PipelineSchedule;
use tipoff_crds::pipeline_schedule::{LABEL_GAME_DAYS, LABEL_SCHEDULE};
use tracing::info;

use super::Scope;
use super::cache::CachedPipelineRun;
use super::events::Publisher;
use crate::metrics::Metrics;
pub use clock::Clock;
pub use view::ScheduleView;

/// What every schedule reconcile shares.
pub struct ScheduleContext {
    /// The API client.
    pub(crate) client: Client,
    /// The caches and what corrects them.
    pub(crate) view: ScheduleView,
    /// Publishes Events.
    pub(crate) events: Publisher,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Consecutive reconcile failures per schedule, for the retry delay.
    pub(crate) backoff: super::backoff::ErrorBackoff,
    /// Where "now" comes from (the system clock, except in tests).
    pub(crate) clock: Clock,
}

impl ScheduleContext {
    /// A context publishing Events as replica `instance`, recording into `metrics`.
    pub fn new(
        client: Client,
        view: ScheduleView,
        instance: &str,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Self {
        Self {
            events: super::events(client.clone(), instance),
            client,
            view,
            metrics,
            backoff: super::backoff::ErrorBackoff::default(),
            clock,
        }
    }

    /// With this backoff after failed reconciles.
    pub fn with_backoff(mut self, backoff: super::backoff::ErrorBackoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Waits until the PipelineSchedule API answers. The PipelineRun controller does not wait for
/// it: a cluster with the older CRDs only runs PipelineRuns.
pub async fn wait_for_crd(client: &Client, scope: &Scope) {
    super::wait_for_crd::<PipelineSchedule>(client, scope, "schedules").await;
}

/// The schedule controller and its view. `runs` is the PipelineRun controller's run cache
/// ([`super::View::runs`]).
pub fn controller(
    client: Client,
    scope: &Scope,
    runs: reflector::Store<CachedPipelineRun>,
) -> (Controller<PipelineSchedule>, ScheduleView) {
    let (own_reader, own_runs) = super::own_runs(&client, scope, LABEL_SCHEDULE);
    let controller = Controller::new(
        scope.api::<PipelineSchedule>(&client),
        watcher::Config::default().any_semantic(),
    )
    .owns_stream(own_runs);
    let schedules = controller.store();
    let readers = schedules.clone();
    // A game-day list that changed wakes every schedule of its namespace that reads it.
    let controller = controller.watches(
        scope.api::<ConfigMap>(&client),
        watcher::Config::default()
            .labels(LABEL_GAME_DAYS)
            .any_semantic(),
        move |cm: ConfigMap| {
            let ns = cm.namespace();
            let name = cm.name_any();
            readers
                .state()
                .iter()
                .filter(|s| s.namespace() == ns && s.spec.game_days.config_map == name)
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let view = ScheduleView::new(schedules, own_reader, runs);
    (controller, view)
}

/// Runs the schedule controller until `shutdown` resolves.
pub async fn run(
    controller: Controller<PipelineSchedule>,
    ctx: Arc<ScheduleContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    info!("schedule controller starting");
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "schedule reconcile stream error");
            }
        })
        .await;
    info!("schedule controller stopped");
}

/// An owner reference to `schedule` (controller, blocking its deletion until the run is gone).
pub fn owner_reference(
    schedule: &PipelineSchedule,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    super::run_owner_reference(schedule)
}
