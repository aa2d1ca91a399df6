//! One reconcile of one PipelineRun: fetch what exists (from the watch caches, no API reads),
//! plan, apply, and say when to look again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use tipoff_crds::{PipelineRun, RunState};
use tracing::{debug, info, instrument, warn};

use super::Context;
use super::apply::{self, Created};
use super::cache::{CachedJob, CachedPipelineRun};
use super::error::Error;
use crate::planner::naming::{LABEL_RUN, run_label};
use crate::planner::observe::OlderRun;
use crate::planner::{self, Observed};

/// How long to wait before looking at a run again when nothing else wakes it: a safety net,
/// since every child change triggers a reconcile through the watches.
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one run.
#[instrument(skip_all, fields(run = %cached.name_any(), namespace = cached.namespace().unwrap_or_default(), date = %cached.spec.date))]
pub async fn reconcile(cached: Arc<CachedPipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = format!(
        "{}/{}",
        cached.namespace().unwrap_or_default(),
        cached.name_any()
    );
    if cached.metadata.deletion_timestamp.is_some() {
        // Children go with the run through owner references.
        ctx.backoff.succeeded(&key);
        return Ok(Action::await_change());
    }
    let run = Arc::new(cached.to_pipeline_run());
    // Plan from the last status this controller wrote while the cache has not shown it yet.
    let ns = run.namespace().unwrap_or_default();
    let run = {
        let mut status = run.status.clone();
        ctx.written.runs.overlay(
            &ns,
            &run.name_any(),
            run.metadata.resource_version.as_deref(),
            &mut status,
        );
        if status == run.status {
            run
        } else {
            let mut overlaid = (*run).clone();
            overlaid.status = status;
            Arc::new(overlaid)
        }
    };
    let (observed, settleable) = observe(&run, &ctx);
    ctx.expectations.observed(
        &ns,
        observed
            .jobs
            .iter()
            .filter_map(|j| j.metadata.name.as_deref())
            .chain(
                observed
                    .phase_completions
                    .iter()
                    .filter_map(|p| p.metadata.name.as_deref()),
            ),
    );
    let now = jiff::Timestamp::now();
    let first = planner::plan(&run, &observed, &ctx.catalog, now);
    let created = apply::children(&run, &first, &ctx).await?;
    let jobs_applied = created.jobs.len();
    // Plan the statuses again with what was just created, so they are written once, already
    // naming the new Jobs, instead of once now and again when the watch brings them back.
    let (second, observed) = if created.is_empty() {
        (None, observed)
    } else {
        let observed = with_created(observed, created);
        let second = planner::plan(&run, &observed, &ctx.catalog, now);
        (Some(second), observed)
    };
    let plan = second.as_ref().unwrap_or(&first);
    let status_writes = apply::statuses(&run, plan, &observed, &ctx).await?;
    let label = run_label(&run.name_any());
    for (job, pods) in &settleable {
        let stores = &ctx.stores;
        stores
            .jobs
            .settle(&ns, job, pods.iter().map(String::as_str));
        let pods = pods.iter().map(String::as_str);
        stores
            .index
            .forget(&ns, &format!("job/{label}"), [job.as_str()]);
        stores.index.forget(&ns, &format!("pod/{label}"), pods);
        debug!(job = %job, "settled: the ledger records its result");
    }
    ctx.backoff.succeeded(&key);
    let state = plan.run_status.state;
    ctx.metrics
        .observe_reconcile(&run, state, plan, &first.jobs, started.elapsed());
    if jobs_applied > 0 || status_writes > 0 {
        info!(
            jobs = jobs_applied,
            status_writes,
            state = state.map_or("", RunState::as_str),
            progress = plan.run_status.progress.as_deref().unwrap_or(""),
            "reconciled"
        );
    } else {
        debug!(
            state = state.map_or("", RunState::as_str),
            "reconciled, nothing to do"
        );
    }
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after.min(RESYNC)),
        None => Action::requeue(RESYNC),
    })
}

/// Finished Jobs whose result the ledger on the server records, with their Pods: once the
/// plan is applied they are settled (see [`super::settle`]).
type Settleable = Vec<(String, Vec<String>)>;

/// Everything that exists for `run`, read from the watch caches (through the run index, so a
/// reconcile reads its own run's children only), and which of its Jobs can be settled.
fn observe(run: &PipelineRun, ctx: &Context) -> (Observed, Settleable) {
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let label = run_label(&name);
    let stores = &ctx.stores;
    let cached_pcs: Vec<_> = stores
        .index
        .objects(&ns, &format!("pc/{name}"), &stores.phase_completions)
        .into_iter()
        .filter(|pc| pc.spec.run == name)
        .map(|pc| pc.to_phase_completion())
        .collect();
    let jobs: Vec<_> = stores
        .index
        .objects(&ns, &format!("job/{label}"), &stores.jobs.jobs.store)
        .into_iter()
        .filter(|j| j.label(LABEL_RUN) == Some(label.as_str()))
        .collect();
    // Jobs created a moment ago that the cache does not show yet.
    let cached: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.metadata.name.as_deref())
        .collect();
    let unseen = stores.unseen.of_run(&ns, &label, &cached);
    let pods: Vec<_> = stores
        .index
        .objects(&ns, &format!("pod/{label}"), &stores.jobs.pods.store)
        .into_iter()
        .filter(|p| p.label(LABEL_RUN) == Some(label.as_str()))
        .collect();

    // Read from the cache, not from this operator's memory of its writes: a cached status is
    // never older than one the cache showed before, and a recorded result stays recorded.
    let recorded: HashSet<&str> = cached_pcs
        .iter()
        .filter_map(|pc| pc.status.as_ref())
        .flat_map(|s| s.completed.iter().chain(&s.failed))
        .map(|r| r.job.as_str())
        .collect();
    let settleable = jobs
        .iter()
        .filter(|j| j.is_finished())
        .filter_map(|j| j.metadata.name.as_deref())
        .filter(|name| recorded.contains(name))
        .map(|job| {
            let pods = pods
                .iter()
                .filter(|p| p.job_name() == Some(job))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (job.to_owned(), pods)
        })
        .collect();

    let observed = Observed {
        phase_completions: cached_pcs
            .into_iter()
            .map(|mut pc| {
                ctx.written.phase_completions.overlay(
                    &ns,
                    &pc.name_any(),
                    pc.metadata.resource_version.as_deref(),
                    &mut pc.status,
                );
                pc
            })
            .collect(),
        jobs: jobs
            .iter()
            .map(|j| j.to_job())
            .chain(unseen.iter().map(CachedJob::to_job))
            .collect(),
        pods: pods.iter().map(|p| p.to_pod()).collect(),
        older_runs_for_date: older_runs_for_date(run, &stores.runs.state()),
    };
    (observed, settleable)
}

/// `observed` with the children a reconcile just applied, as the API server returned them, in
/// place of any older copy of the same object.
fn with_created(mut observed: Observed, created: Created) -> Observed {
    let name_of = |meta: &kube::api::ObjectMeta| meta.name.clone();
    for job in created.jobs {
        let name = name_of(&job.metadata);
        observed.jobs.retain(|j| name_of(&j.metadata) != name);
        observed.jobs.push(job.to_job());
    }
    for pc in created.phase_completions {
        let name = name_of(&pc.metadata);
        // A cached copy keeps its status (and any status this controller wrote): the applied
        // object carries none.
        if !observed
            .phase_completions
            .iter()
            .any(|p| name_of(&p.metadata) == name)
        {
            observed.phase_completions.push(pc);
        }
    }
    observed
}

/// Runs for the same date in the same namespace, created before `run`, that have not ended.
fn older_runs_for_date(run: &PipelineRun, all: &[Arc<CachedPipelineRun>]) -> Vec<OlderRun> {
    let key = |meta: &ObjectMeta| {
        (
            meta.creation_timestamp.clone().map(|t| t.0),
            meta.name.clone().unwrap_or_default(),
        )
    };
    let mine = key(&run.metadata);
    let mut older: Vec<OlderRun> = all
        .iter()
        .filter(|r| r.namespace() == run.namespace() && r.spec.date == run.spec.date)
        .filter(|r| r.name_any() != run.name_any() && r.metadata.deletion_timestamp.is_none())
        .filter(|r| !r.state().is_some_and(|s| s.is_terminal()))
        .filter(|r| key(&r.metadata) < mine)
        .map(|r| OlderRun {
            name: r.name_any(),
            state: r.state(),
        })
        .collect();
    older.sort_by(|a, b| a.name.cmp(&b.name));
    older
}

/// What to do after a failed reconcile: count it by category, say so in a Warning Event whose
/// reason is the category, and retry after this run's next backoff delay (doubling per
/// consecutive failure up to a cap; see [`super::backoff`]).
pub fn error_policy(run: Arc<CachedPipelineRun>, error: &Error, ctx: Arc<Context>) -> Action {
    let category = error.category();
    let key = format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any());
    let (failures, after) = ctx.backoff.failed(&key);
    warn!(
        run = %run.name_any(),
        category,
        error = %error,
        failures,
        retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        "reconcile failed"
    );
    ctx.metrics.reconcile_error(category);
    let note = format!(
        "reconcile failed ({failures} in a row; next try in {}s): {error}",
        after.as_secs_f64().ceil()
    );
    let (events, run) = (ctx.events.clone(), run.to_pipeline_run());
    // error_policy is synchronous; the Event must not hold up the requeue.
    tokio::spawn(async move {
        if let Err(e) = events.publish_warning(&run, category, &note).await {
            debug!(error = %e, "could not publish the reconcile-failure Event");
        }
    });
    Action::requeue(after)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::controller::{self, Tuning, backoff::ErrorBackoff};

    /// A context whose client points nowhere: error_policy's Event publish fails quietly.
    fn context() -> Arc<Context> {
        crate::install_crypto_provider();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let catalog = crate::catalog::Catalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test/pipeline.yaml"),
        )
        .unwrap();
        let (_, stores) = controller::controller(
            client.clone(),
            &controller::Scope::default(),
            Tuning::default(),
        );
        Arc::new(Context {
            client: client.clone(),
            catalog,
            job_settings: Default::default(),
            stores,
            events: controller::events(client, "op-test"),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            expectations: Default::default(),
            written: Default::default(),
            backoff: ErrorBackoff::new(Duration::from_secs(5), Duration::from_secs(60)),
        })
    }

    fn run(name: &str) -> Arc<CachedPipelineRun> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
                "metadata": {"name": name, "namespace": "ns", "uid": "u1"},
                "spec": {"date": "2026-01-29", "mode": "Production",
                         "release": {"image": "img@sha256:1", "commit": "abc1234"}}
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_run_that_keeps_failing_backs_off_exponentially_to_a_cap() {
        let ctx = context();
        let err = Error::MissingMetadata("namespace");
        let after: Vec<Action> = (0..6)
            .map(|_| error_policy(run("a"), &err, Arc::clone(&ctx)))
            .collect();
        let expected: Vec<Action> = [5, 10, 20, 40, 60, 60]
            .into_iter()
            .map(|s| Action::requeue(Duration::from_secs(s)))
            .collect();
        assert_eq!(after, expected);
        // Another run is not slowed down by the first.
        assert_eq!(
            error_policy(run("b"), &err, Arc::clone(&ctx)),
            Action::requeue(Duration::from_secs(5))
        );
        // Every failure is counted under its category.
        let text = ctx.metrics.encode();
        assert!(
            text.contains("tipoff_reconcile_errors_total{category=\"InvalidObject\"} 7"),
            "{text}"
        );
    }
}
