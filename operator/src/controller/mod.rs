//! The controller: the thin shell around the planner. It watches PipelineRuns and their
//! children (PhaseCompletions and Jobs through owner references, Pods through their Job), keeps
//! them in watch caches, and for each run that changed calls [`reconcile::reconcile`]:
//! observe from the caches -> `planner::plan` -> [`apply::apply`].
//!
//! It owns no decision: everything it does is in the plan. It reads no object with GET or LIST
//! in steady state (the caches are fed by watches), and it never writes a flag ahead of the
//! fact: a phase counts as triggered when its Jobs are observed, in the watch cache or in the
//! API server's answer to their creation ([`unseen`]).

#[cfg(test)]
mod api_calls;
mod apply;
pub mod backfill;
pub mod backoff;
pub mod cache;
pub mod error;
pub mod events;
mod game_days;
mod reconcile;
pub mod schedule;
#[cfg(test)]
mod scripted_api;
mod trigger;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, ObjectMeta};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource};
use tipoff_crds::{PhaseCompletion, PipelineRun};
use tracing::{info, warn};

use crate::catalog::Catalog;
use crate::jobs::JobSettings;
use crate::metrics::Metrics;
use cache::{CachedJob, CachedPhaseCompletion, CachedPipelineRun, CachedPod};

pub use error::Error;
pub use view::View;

/// The one field manager every write of the operator uses.
pub const FIELD_MANAGER: &str = "tipoff-operator";
/// The label selecting the Jobs and Pods tipoff manages (set by the Job builder).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=tipoff";

#[cfg(test)]
mod tests {
    #[test]
    fn the_watch_selector_matches_what_the_job_builder_sets() {
        assert_eq!(
            super::MANAGED_SELECTOR,
            format!(
                "{}={}",
                crate::jobs::MANAGED_BY_LABEL,
                crate::jobs::MANAGED_BY
            )
        );
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub(crate) client: Client,
    /// The validated pipeline catalog.
    pub(crate) catalog: Catalog,
    /// Deployment-wide settings of processor Jobs.
    pub(crate) job_settings: JobSettings,
    /// The watch caches and what corrects them.
    pub(crate) view: View,
    /// Publishes Events.
    pub(crate) events: events::Publisher,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Consecutive reconcile failures per run, for the retry delay.
    pub(crate) backoff: backoff::ErrorBackoff,
}

impl Context {
    /// A context for reconciles of `view`'s runs, publishing Events as replica `instance`, with
    /// default Job settings, fresh metrics and the default error backoff (see the `with_`
    /// methods).
    pub fn new(client: Client, catalog: Catalog, view: View, instance: &str) -> Self {
        Self {
            events: events(client.clone(), instance),
            client,
            catalog,
            job_settings: JobSettings::default(),
            view,
            metrics: Arc::new(Metrics::new()),
            backoff: backoff::ErrorBackoff::default(),
        }
    }

    /// With these settings of processor Jobs.
    pub fn with_job_settings(mut self, job_settings: JobSettings) -> Self {
        self.job_settings = job_settings;
        self
    }

    /// Recording into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// With this backoff after failed reconciles.
    pub fn with_backoff(mut self, backoff: backoff::ErrorBackoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Where the controller looks.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// One namespace, or every namespace when `None`.
    pub namespace: Option<String>,
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// Waits until the PipelineRun API answers: a missing CRD is a reason to wait, not to crash.
pub async fn wait_for_crds(client: &Client, scope: &Scope) {
    let runs: Api<PipelineRun> = scope.api(client);
    let pcs: Api<PhaseCompletion> = scope.api(client);
    let mut delay = Duration::from_millis(500);
    loop {
        let probe = ListParams::default().limit(1);
        match (
            runs.list_metadata(&probe).await,
            pcs.list_metadata(&probe).await,
        ) {
            (Ok(_), Ok(_)) => return,
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "tipoff CRDs not served yet (kubectl apply -f crds/generated/); waiting");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Writes `status` as the whole status of `name` (of kind `K`) with server-side apply, as this
/// controller's field manager, and returns the object as written.
pub async fn apply_status<K, S>(
    client: &Client,
    ns: &str,
    name: &str,
    status: &S,
) -> kube::Result<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: serde::Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    Api::<K>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(&body),
        )
        .await
}

/// The runs a backfill or a schedule created (label `label`), cached trimmed as the run
/// controller caches runs, and the stream of their changes for the creator's controller to
/// own (`Controller::owns_stream`).
pub fn own_runs(
    client: &Client,
    scope: &Scope,
    label: &str,
) -> (
    reflector::Store<CachedPipelineRun>,
    impl futures::Stream<Item = Result<CachedPipelineRun, watcher::Error>> + Send + 'static,
) {
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            scope.api::<CachedPipelineRun>(client),
            watcher::Config::default().labels(label).any_semantic(),
        )
        .modify(CachedPipelineRun::trim),
    )
    .default_backoff()
    .touched_objects();
    (reader, stream)
}

/// Waits until the API of `K`, a resource that creates runs (PipelineBackfill,
/// PipelineSchedule), answers. The PipelineRun controller does not wait for it: a cluster with
/// the older CRDs only runs PipelineRuns. `waiting` says in the log what waits.
pub async fn wait_for_crd<K>(client: &Client, scope: &Scope, waiting: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = scope.api(client);
    let crd = format!("{}.{}", K::plural(&()), K::group(&()));
    let mut delay = Duration::from_millis(500);
    loop {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => return,
            Err(e) => {
                warn!(error = %e, %crd, "{crd} not served yet (kubectl apply -f crds/generated/); {waiting} wait");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// An owner reference to `owner`, a resource that creates runs, for a run it created: its
/// controller, blocking its deletion until the run is gone (deleting a backfill or a schedule
/// deletes its runs).
pub fn run_owner_reference<K: Resource<DynamicType = ()>>(
    owner: &K,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    let mut reference = owner.controller_owner_ref(&())?;
    reference.block_owner_deletion = Some(true);
    Some(reference)
}

/// How reconciles are scheduled.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// The longest a run's reconcile waits after the last change that asked for it, so that
    /// under load a burst of watch events (Job created, running, Pod ended, Job complete)
    /// becomes one reconcile and one status write instead of one each. The wait grows with the
    /// load: none for up to [`trigger::QUIET`] runs asking at once, this much from [`trigger::FULL_AT`] runs on
    /// ([`trigger`]). It must stay well under the trigger-latency objective (1 s).
    pub debounce: Duration,
    /// Reconciles running at once (0: unbounded). One run is never reconciled twice at once.
    /// Each running reconcile holds an API connection and its buffers; unbounded, 100 runs
    /// finishing a phase together cost ~15 MiB more memory for no gain in latency when the API
    /// server is the bottleneck (benchmark in docs/operations.md).
    pub concurrency: u16,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
            concurrency: 16,
        }
    }
}

/// An `inspect_ok` step that records when a watch's first list ended.
fn mark_listed_on_init_done<K>(
    view: View,
    cache: view::ChildCache,
) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
    move |event| {
        if matches!(event, watcher::Event::InitDone) {
            view.mark_listed(cache);
        }
    }
}

/// Starts the watch caches. The returned streams must be polled (by the controller) for the
/// caches to fill; the [`View`] can be read at any time.
pub fn controller(
    client: Client,
    scope: &Scope,
    tuning: Tuning,
) -> (Controller<CachedPipelineRun>, View) {
    let managed = watcher::Config::default()
        .labels(MANAGED_SELECTOR)
        .any_semantic();
    let (run_reader, run_writer) = reflector::store();
    let (pc_reader, pc_writer) = reflector::store();
    let (runs_listed, runs_synced) = tokio::sync::watch::channel(false);
    let view = View::new(run_reader.clone(), runs_synced, pc_reader);

    // Each child cache says when its first list ended: reconciles wait for all of them.
    let pc_stream = reflector::reflector(
        pc_writer,
        view.index_phase_completions(watcher(
            scope.api::<CachedPhaseCompletion>(&client),
            watcher::Config::default().any_semantic(),
        )),
    )
    .inspect_ok(mark_listed_on_init_done(
        view.clone(),
        view::ChildCache::PhaseCompletions,
    ))
    .default_backoff()
    .touched_objects();
    let job_stream = view
        .reflect_jobs(watcher(scope.api::<CachedJob>(&client), managed.clone()))
        .inspect_ok(mark_listed_on_init_done(
            view.clone(),
            view::ChildCache::Jobs,
        ))
        .default_backoff()
        .touched_objects();
    let pod_stream = view
        .reflect_pods(watcher(scope.api::<CachedPod>(&client), managed))
        .inspect_ok(mark_listed_on_init_done(
            view.clone(),
            view::ChildCache::Pods,
        ))
        .default_backoff()
        .touched_objects();
    let run_stream = reflector::reflector(
        run_writer,
        watcher(
            scope.api::<CachedPipelineRun>(&client),
            watcher::Config::default().any_semantic(),
        )
        .modify(CachedPipelineRun::trim),
    )
    // After the reflector, so the store holds the list when the flag goes up.
    .inspect_ok(move |event| {
        if matches!(event, watcher::Event::InitDone) {
            runs_listed.send_replace(true);
        }
    })
    .default_backoff()
    .applied_objects();
    // Every watch event names the run to reconcile; the adaptive debounce ([`trigger`])
    // decides when, so kube-runtime's own debounce is off.
    let jobs_for_pods = view.job_store();
    let triggers = futures::stream::select_all([
        run_stream
            .map_ok(|run| Some(ObjectRef::from_obj(&run)))
            .boxed(),
        pc_stream.map_ok(|pc| owner_run(pc.meta())).boxed(),
        job_stream.map_ok(|job| owner_run(job.meta())).boxed(),
        pod_stream
            .map_ok(move |pod| view::run_of_pod(&pod, &jobs_for_pods))
            .boxed(),
    ])
    .filter_map(|trigger| {
        std::future::ready(match trigger {
            Ok(run) => run,
            Err(e) => {
                // The watch retries with backoff; the error only says it had to.
                warn!(error = %e, "watch error");
                None
            }
        })
    });
    let controller = Controller::for_stream(
        futures::stream::pending::<Result<CachedPipelineRun, watcher::Error>>(),
        run_reader,
    )
    .with_config(
        kube::runtime::controller::Config::default()
            .debounce(Duration::ZERO)
            .concurrency(tuning.concurrency),
    )
    .reconcile_on(trigger::adaptive(triggers, tuning.debounce));
    (controller, view)
}

/// The PipelineRun that owns an object, from its owner references.
fn owner_run(meta: &ObjectMeta) -> Option<ObjectRef<CachedPipelineRun>> {
    let ns = meta.namespace.as_deref()?;
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "PipelineRun")?;
    Some(ObjectRef::new(&owner.name).within(ns))
}

/// Runs the controller until `shutdown` resolves. Each reconcile's result is logged; errors
/// are counted and retried by [`reconcile::error_policy`].
pub async fn run(
    controller: Controller<CachedPipelineRun>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    info!("controller starting");
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile stream error");
            }
        })
        .await;
    info!("controller stopped");
}

/// The Event publisher for replica `instance`.
pub fn events(client: Client, instance: &str) -> events::Publisher {
    events::Publisher::new(client, FIELD_MANAGER, instance)
}
