//! One reconcile of one PipelineBackfill, in six steps: take a snapshot of what exists (the
//! watch caches, no API reads; [`super::view`]), plan, apply the runs to create, plan again
//! with the runs as created, write the status if it changed, publish the Events of the
//! transitions; then say when to look again.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use tipoff_crds::{PipelineBackfill, PipelineRun};
use tracing::{debug, info, instrument, warn};

use super::BackfillContext;
use crate::backfill::{self, BackfillPlan};
use crate::controller::FIELD_MANAGER;
use crate::controller::apply_status;
use crate::controller::backoff::after_failure;
use crate::controller::error::Error;
use crate::controller::view::ObjectKey;

/// Reconciles one backfill.
#[instrument(skip_all, fields(backfill = %cached.name_any(), namespace = cached.namespace().unwrap_or_default()))]
pub async fn reconcile(
    cached: Arc<PipelineBackfill>,
    ctx: Arc<BackfillContext>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = cached
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let key = ObjectKey::new(&ns, &cached.name_any());
    if cached.metadata.deletion_timestamp.is_some() {
        // Its runs go with it through owner references.
        ctx.view.forget(&cached);
        ctx.backoff.succeeded(&key);
        return Ok(Action::await_change());
    }
    // 1. What exists, as the caches and this controller's own writes know it, and the
    // game-day list if the backfill names one (read from the API).
    let (backfill, mut observed) = ctx.view.snapshot(&cached);
    let game_days = match &backfill.spec.game_days {
        Some(source) => Some(
            crate::controller::game_days::read(&ctx.client, &ns, source, "docs/backfill.md")
                .await?,
        ),
        None => None,
    };
    observed.game_days = game_days.clone();
    // 2. What to do about it.
    let now = jiff::Timestamp::now();
    let first = backfill::plan(&backfill, &observed, now);
    // 3. The runs first: the status already counts them, so it is written only once they exist.
    apply_runs(&backfill, &ns, &first, &ctx).await?;
    // 4. Plan again with the runs as the API server created them (the view records them), so
    // the status is written once, with their creation times.
    let mut applied = first.runs.len();
    let plan = if first.runs.is_empty() {
        first
    } else {
        let (again, mut observed) = ctx.view.snapshot(&cached);
        observed.game_days = game_days;
        let second = backfill::plan(&again, &observed, now);
        // Nothing new is due (the runs just created took the free places); were it, it is
        // applied too, so the status never counts a run that does not exist.
        apply_runs(&again, &ns, &second, &ctx).await?;
        applied += second.runs.len();
        second
    };
    // 5. The status, if it changed.
    if plan.status_changed {
        let written: PipelineBackfill =
            apply_status(&ctx.client, &ns, &backfill.name_any(), &plan.status).await?;
        ctx.view.wrote_status(
            &backfill,
            cached.metadata.resource_version.clone(),
            written.status.unwrap_or_else(|| plan.status.clone()),
        );
    }
    // 6. The Events of the transitions.
    publish_events(&backfill, &plan, &ctx).await;

    ctx.backoff.succeeded(&key);
    ctx.metrics.observe_backfill(
        &format!("{ns}/{}", backfill.name_any()),
        &plan.status,
        started.elapsed(),
    );
    log_outcome(&plan, applied);
    Ok(Action::requeue(plan.requeue_after))
}

async fn apply_runs(
    backfill: &PipelineBackfill,
    ns: &str,
    plan: &BackfillPlan,
    ctx: &BackfillContext,
) -> Result<(), Error> {
    let api: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), ns);
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let owner = super::owner_reference(backfill);
    let uid = backfill.metadata.uid.clone().unwrap_or_default();
    let applies = plan.runs.iter().map(|intent| {
        let mut run = PipelineRun::new(&intent.name, intent.spec.clone());
        run.metadata.labels = Some(intent.labels.clone());
        if !intent.annotations.is_empty() {
            run.metadata.annotations = Some(intent.annotations.clone());
        }
        run.metadata.owner_references = owner.clone().map(|o| vec![o]);
        let (api, ssa, uid) = (&api, &ssa, &uid);
        async move {
            let created = api.patch(&intent.name, ssa, &Patch::Apply(&run)).await?;
            ctx.view.applied_run(&created, uid);
            ctx.metrics.backfill_runs_created.inc();
            info!(run = %intent.name, date = %intent.date, "applied PipelineRun");
            Ok::<_, Error>(())
        }
    });
    // Every apply runs to its end (so each success is remembered) before an error is returned.
    join_all(applies).await.into_iter().collect()
}

async fn publish_events(backfill: &PipelineBackfill, plan: &BackfillPlan, ctx: &BackfillContext) {
    let published = plan.events.iter().map(|e| async move {
        let type_ = if e.warning { "Warning" } else { "Normal" };
        // The status carries the same facts; a lost Event must not fail the reconcile.
        if let Err(err) = ctx
            .events
            .publish_about(backfill, type_, e.reason, &e.message)
            .await
        {
            warn!(error = %err, reason = e.reason, "could not publish Event");
        }
    });
    join_all(published).await;
}

fn log_outcome(plan: &BackfillPlan, runs: usize) {
    let state = plan.status.state.map_or("", |s| s.as_str());
    let progress = plan.status.progress.as_deref().unwrap_or("");
    if runs > 0 || plan.status_changed {
        info!(
            runs,
            status_written = plan.status_changed,
            state,
            progress,
            "reconciled backfill"
        );
    } else {
        debug!(state, progress, "reconciled backfill, nothing to do");
    }
}

/// After a failed reconcile: count it by category, say so in a Warning Event, and retry after
/// this backfill's next backoff delay.
pub fn error_policy(
    backfill: Arc<PipelineBackfill>,
    error: &Error,
    ctx: Arc<BackfillContext>,
) -> Action {
    after_failure(
        "backfill",
        backfill,
        error,
        &ctx.backoff,
        &ctx.metrics,
        &ctx.events,
    )
}
