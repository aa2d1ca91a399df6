//! One reconcile of one PipelineRun, in six steps: take a snapshot of what exists (from the
//! watch caches, no API reads; see [`super::view`]), plan, apply the children, plan the
//! statuses again with what was created, write the statuses and Events, settle the Jobs the
//! ledger records; then say when to look again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tipoff_crds::RunState;
use tracing::{debug, info, instrument};

use super::Context;
use super::apply;
use super::backoff::after_failure;
use super::cache::CachedPipelineRun;
use super::error::Error;
use super::view::ObjectKey;
use crate::planner::{self, Plan};

/// How long to wait before looking at a run again when nothing else wakes it: a safety net,
/// since every child change triggers a reconcile through the watches.
const RESYNC: Duration = Duration::from_secs(300);

/// How soon a reconcile that found the caches still listing looks again.
const CACHES_LISTING_RETRY: Duration = Duration::from_millis(250);

/// Reconciles one run.
#[instrument(skip_all, fields(run = %cached.name_any(), namespace = cached.namespace().unwrap_or_default(), date = %cached.spec.date))]
pub async fn reconcile(cached: Arc<CachedPipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = ObjectKey::of(&cached.metadata).ok_or(Error::MissingMetadata("namespace"))?;
    if cached.metadata.deletion_timestamp.is_some() {
        // Children go with the run through owner references.
        ctx.backoff.succeeded(&key);
        return Ok(Action::await_change());
    }
    // 0. Only once every cache has listed: a Job missing from a Job cache that has not listed
    // yet is not a Job that vanished (a restarted operator's first reconciles).
    if !ctx.view.listed() {
        debug!("waiting for the watch caches to list");
        return Ok(Action::requeue(CACHES_LISTING_RETRY));
    }
    // 1. What exists, as the caches and this controller's own writes know it.
    let snapshot = ctx.view.snapshot(&cached);
    // 2. What to do about it.
    let now = jiff::Timestamp::now();
    let first = planner::plan(&snapshot.run, &snapshot.observed, &ctx.catalog, now);
    // 3. Children first: a status never describes a child that was not created.
    let created = apply::children(&snapshot.run, &first, &ctx).await?;
    let jobs_applied = created.jobs.len();
    // 4. Plan the statuses again with what was just created, so they are written once,
    // already naming the new Jobs, instead of once now and again when the watch brings them.
    let (snapshot, second) = if created.is_empty() {
        (snapshot, None)
    } else {
        let snapshot = snapshot.with_created(created);
        let second = planner::plan(&snapshot.run, &snapshot.observed, &ctx.catalog, now);
        (snapshot, Some(second))
    };
    let plan = second.as_ref().unwrap_or(&first);
    // 5. Statuses that changed, and the Events of the transitions.
    let status_writes = apply::statuses(&snapshot.run, plan, &snapshot.observed, &ctx).await?;
    // 6. Finished Jobs the ledger records leave the caches.
    ctx.view.settle(&snapshot);

    ctx.backoff.succeeded(&key);
    ctx.metrics.observe_reconcile(
        &snapshot.run,
        plan.run_status.state,
        plan,
        &first.jobs,
        started.elapsed(),
    );
    ctx.metrics.observe_timing(
        &format!("{}/{}", key.namespace, key.name),
        planner::timing::run_timing(&ctx.catalog, &snapshot.run, &plan.run_status),
    );
    log_outcome(plan, jobs_applied, status_writes);
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after.min(RESYNC)),
        None => Action::requeue(RESYNC),
    })
}

fn log_outcome(plan: &Plan, jobs_applied: usize, status_writes: usize) {
    let state = plan.run_status.state.map_or("", RunState::as_str);
    if jobs_applied > 0 || status_writes > 0 {
        info!(
            jobs = jobs_applied,
            status_writes,
            state,
            progress = plan.run_status.progress.as_deref().unwrap_or(""),
            "reconciled"
        );
    } else {
        debug!(state, "reconciled, nothing to do");
    }
}

/// What to do after a failed reconcile: count it by category, say so in a Warning Event whose
/// reason is the category, and retry after this run's next backoff delay (doubling per
/// consecutive failure up to a cap; see [`super::backoff`]).
pub fn error_policy(run: Arc<CachedPipelineRun>, error: &Error, ctx: Arc<Context>) -> Action {
    let run = Arc::new(run.to_pipeline_run());
    after_failure("run", run, error, &ctx.backoff, &ctx.metrics, &ctx.events)
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
        let (_, view) = controller::controller(
            client.clone(),
            &controller::Scope::default(),
            Tuning::default(),
        );
        Arc::new(
            Context::new(client, catalog, view, "op-test").with_backoff(ErrorBackoff::new(
                Duration::from_secs(5),
                Duration::from_secs(60),
            )),
        )
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
