//! The controller: the thin shell around the planner. It watches PipelineRuns and their
//! children (PhaseCompletions and Jobs through owner references, Pods through their Job), keeps
//! them in watch caches, and for each run that changed calls [`reconcile::reconcile`]:
//! observe from the caches -> `planner::plan` -> [`apply::apply`].
//!
//! It owns no decision: everything it does is in the plan. It reads no object with GET or LIST
//! in steady state (the caches are fed by watches), and it never writes a flag ahead of the
//! fact: a phase counts as triggered when its Jobs are observed, in the watch cache or in the
//! API server's answer to their creation ([`unseen`]).

pub mod apply;
pub mod backoff;
pub mod cache;
pub mod error;
pub mod events;
pub mod expectations;
pub mod index;
pub mod reconcile;
pub mod settle;
pub mod unseen;
pub mod written;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tipoff_crds::{PhaseCompletion, PipelineRun};
use tracing::{info, warn};

use crate::catalog::Catalog;
use crate::jobs::JobSettings;
use crate::metrics::Metrics;
use crate::planner::naming::LABEL_RUN;
use cache::{CachedJob, CachedPhaseCompletion, CachedPipelineRun, CachedPod};

pub use error::Error;

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

/// The watch caches a reconcile reads from.
#[derive(Clone)]
pub struct Stores {
    /// PipelineRuns (the controller's own cache).
    pub runs: Store<CachedPipelineRun>,
    /// Becomes true once the PipelineRun cache has listed. (Not `runs.wait_until_ready()`: the
    /// Controller already waits on that store, and kube-runtime 5's `Store::wait_until_ready`
    /// wakes only the last of several waiters, since it holds one oneshot receiver with one
    /// waker slot; a second waiter would hang, or leave the Controller hanging.)
    pub runs_synced: tokio::sync::watch::Receiver<bool>,
    /// PhaseCompletions.
    pub phase_completions: Store<CachedPhaseCompletion>,
    /// Jobs tipoff created and their Pods, less the settled ones.
    pub jobs: settle::JobCaches,
    /// Each run's Jobs and Pods (by run label) and PhaseCompletions (by run name).
    pub index: index::RunIndex,
    /// Jobs created that the Job cache has not shown yet.
    pub unseen: unseen::Unseen,
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The validated pipeline catalog.
    pub catalog: Catalog,
    /// Deployment-wide settings of processor Jobs.
    pub job_settings: JobSettings,
    /// The watch caches.
    pub stores: Stores,
    /// Publishes Events.
    pub events: events::Publisher,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Children applied but not yet seen in the watch caches.
    pub expectations: expectations::Expectations,
    /// Statuses written but not yet observed.
    pub written: written::Memo,
    /// Consecutive reconcile failures per run, for the retry delay.
    pub backoff: backoff::ErrorBackoff,
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

/// How reconciles are scheduled.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// A run's reconcile waits this long after the last change that asked for it, so a burst
    /// of watch events (Job created, Pod scheduled, running, terminated, Job complete) becomes
    /// one reconcile and one status write instead of one each. It delays every trigger by as
    /// much, so it must stay well under the trigger-latency objective (1 s).
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

/// Starts the watch caches. The returned streams must be polled (by the controller) for the
/// caches to fill; `Stores` can be read at any time.
pub fn controller(
    client: Client,
    scope: &Scope,
    tuning: Tuning,
) -> (Controller<CachedPipelineRun>, Stores) {
    let managed = watcher::Config::default()
        .labels(MANAGED_SELECTOR)
        .any_semantic();
    let index = index::RunIndex::default();
    let (pc_reader, pc_writer) = reflector::store();
    let pc_stream = reflector::reflector(
        pc_writer,
        watcher(
            scope.api::<CachedPhaseCompletion>(&client),
            watcher::Config::default().any_semantic(),
        )
        .modify({
            let index = index.clone();
            move |pc| {
                pc.trim();
                index.add(&pc.metadata, Some(format!("pc/{}", pc.spec.run)));
            }
        }),
    )
    .default_backoff()
    .touched_objects();
    let jobs = settle::JobCaches::default();
    let unseen = unseen::Unseen::default();
    let job_stream = jobs
        .jobs
        .reflect(
            jobs.settled.clone(),
            unseen.track(
                watcher(scope.api::<CachedJob>(&client), managed.clone()).modify({
                    let index = index.clone();
                    move |job| {
                        job.trim();
                        index.add(&job.metadata, index::run_key("job", job.label(LABEL_RUN)));
                    }
                }),
            ),
        )
        .default_backoff()
        .touched_objects();
    let pod_stream = jobs
        .pods
        .reflect(
            jobs.settled.clone(),
            watcher(scope.api::<CachedPod>(&client), managed)
                .modify(|pod| cache::trim_meta(&mut pod.metadata))
                // A Pod tells the planner nothing until its processor has ended: the others
                // are neither cached nor a reason to reconcile.
                .try_filter(|event| std::future::ready(cache::pod_event_matters(event)))
                .modify({
                    let index = index.clone();
                    move |pod| index.add(&pod.metadata, index::run_key("pod", pod.label(LABEL_RUN)))
                }),
        )
        .default_backoff()
        .touched_objects();
    let (run_reader, run_writer) = reflector::store();
    let (runs_listed, runs_synced) = tokio::sync::watch::channel(false);
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
    let jobs_for_pods = jobs.jobs.store.clone();
    let controller = Controller::for_stream(run_stream, run_reader)
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(tuning.debounce)
                .concurrency(tuning.concurrency),
        )
        .owns_stream(pc_stream)
        .owns_stream(job_stream)
        .watches_stream(pod_stream, move |pod: CachedPod| {
            run_of_pod(&pod, &jobs_for_pods)
        });
    let stores = Stores {
        runs: controller.store(),
        runs_synced,
        phase_completions: pc_reader,
        jobs,
        index,
        unseen,
    };
    (controller, stores)
}

/// The run a Pod belongs to: Pod -> owning Job (from the cache) -> owning PipelineRun.
fn run_of_pod(pod: &CachedPod, jobs: &Store<CachedJob>) -> Option<ObjectRef<CachedPipelineRun>> {
    let ns = pod.namespace()?;
    let job = jobs.get(&ObjectRef::new(pod.job_name()?).within(&ns))?;
    let owner = job
        .owner_references()
        .iter()
        .find(|o| o.kind == "PipelineRun")?;
    Some(ObjectRef::new(&owner.name).within(&ns))
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
