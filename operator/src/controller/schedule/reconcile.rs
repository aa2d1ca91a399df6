//! One reconcile of one PipelineSchedule, in named steps: read the game-day list, take a
//! snapshot of the runs (the watch caches, no API reads), plan, create the runs due (oldest
//! first; `AlreadyExists` is done), delete runs past the history limits, write the status if it
//! changed, publish the Events; then requeue at the next due instant.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use tipoff_crds::{PipelineRun, PipelineSchedule};
use tracing::{debug, info, instrument, warn};

use super::ScheduleContext;
use crate::controller::FIELD_MANAGER;
use crate::controller::apply_status;
use crate::controller::backoff::after_failure;
use crate::controller::error::Error;
use crate::controller::view::ObjectKey;
use crate::schedule::{self, GameDays, Observed, SchedulePlan};

/// Reconciles one schedule.
#[instrument(skip_all, fields(schedule = %cached.name_any(), namespace = cached.namespace().unwrap_or_default()))]
pub async fn reconcile(
    cached: Arc<PipelineSchedule>,
    ctx: Arc<ScheduleContext>,
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
    // 1. The game days, from the ConfigMap the schedule names.
    let game_days = read_game_days(&cached, &ns, &ctx).await?;
    // 2. The runs, as the caches and this controller's own writes know them.
    let (schedule, runs) = ctx.view.snapshot(&cached);
    // 3. What to do about it.
    let now = ctx.clock.now();
    let plan = schedule::plan(&schedule, &Observed { game_days, runs }, now);
    // 4. The runs due, oldest first; the status already lists them.
    create_runs(&schedule, &ns, &plan, &ctx).await?;
    // 5. Runs past the history limits.
    delete_runs(&ns, &plan, &ctx).await?;
    // 6. The status, if it changed.
    if plan.status_changed {
        let written: PipelineSchedule =
            apply_status(&ctx.client, &ns, &schedule.name_any(), &plan.status).await?;
        ctx.view.wrote_status(
            &schedule,
            cached.metadata.resource_version.clone(),
            written.status.unwrap_or_else(|| plan.status.clone()),
        );
    }
    // 7. The Events of the transitions.
    publish_events(&schedule, &plan, &ctx).await;

    ctx.backoff.succeeded(&key);
    ctx.metrics.observe_schedule(
        &ns,
        &schedule.name_any(),
        &plan.status,
        plan.next_due,
        started.elapsed(),
    );
    log_outcome(&plan);
    let after = match ctx.clock.max_requeue() {
        Some(max) => plan.requeue_after.min(max),
        None => plan.requeue_after,
    };
    Ok(Action::requeue(after))
}

/// The game-day list the schedule names. A missing ConfigMap or key is a status, not an error.
async fn read_game_days(
    schedule: &PipelineSchedule,
    ns: &str,
    ctx: &ScheduleContext,
) -> Result<GameDays, Error> {
    crate::controller::game_days::read(
        &ctx.client,
        ns,
        &schedule.spec.game_days,
        "docs/schedule.md",
    )
    .await
}

async fn create_runs(
    schedule: &PipelineSchedule,
    ns: &str,
    plan: &SchedulePlan,
    ctx: &ScheduleContext,
) -> Result<(), Error> {
    let api: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), ns);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let owner = super::owner_reference(schedule);
    let uid = schedule.metadata.uid.clone().unwrap_or_default();
    // One after the other, oldest first, so the runs' creation order is the dates' order.
    for intent in &plan.runs {
        let mut run = PipelineRun::new(&intent.name, intent.spec.clone());
        run.metadata.namespace = Some(ns.to_owned());
        run.metadata.labels = Some(intent.labels.clone());
        run.metadata.owner_references = owner.clone().map(|o| vec![o]);
        match api.create(&params, &run).await {
            Ok(created) => {
                ctx.view.created_run(&created, &uid);
                ctx.metrics.schedule_runs_created.inc();
                info!(run = %intent.name, date = %intent.date, due = %intent.due, "created PipelineRun");
            }
            // The date's key exists: another replica, an earlier reconcile or a person made
            // it. That is what "done" means.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                ctx.view.created_run(&run, &uid);
                info!(run = %intent.name, date = %intent.date, "PipelineRun already exists: done");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn delete_runs(ns: &str, plan: &SchedulePlan, ctx: &ScheduleContext) -> Result<(), Error> {
    let api: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), ns);
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => info!(run = %name, "deleted PipelineRun past the history limits"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        ctx.view.deleted_run(ns, name);
    }
    Ok(())
}

async fn publish_events(schedule: &PipelineSchedule, plan: &SchedulePlan, ctx: &ScheduleContext) {
    let published = plan.events.iter().map(|e| async move {
        let type_ = if e.warning { "Warning" } else { "Normal" };
        // The status carries the same facts; a lost Event must not fail the reconcile.
        if let Err(err) = ctx
            .events
            .publish_about(schedule, type_, e.reason, &e.message)
            .await
        {
            warn!(error = %err, reason = e.reason, "could not publish Event");
        }
    });
    join_all(published).await;
}

fn log_outcome(plan: &SchedulePlan) {
    let next = plan.status.next_scheduled_date.as_deref().unwrap_or("");
    if !plan.runs.is_empty() || !plan.delete.is_empty() || plan.status_changed {
        info!(
            runs = plan.runs.len(),
            deleted = plan.delete.len(),
            next,
            overdue = plan.status.overdue,
            missed = plan.status.missed_count,
            "reconciled schedule"
        );
    } else {
        debug!(next, "reconciled schedule, nothing to do");
    }
}

/// After a failed reconcile: count it by category, say so in a Warning Event, and retry after
/// this schedule's next backoff delay.
pub fn error_policy(
    schedule: Arc<PipelineSchedule>,
    error: &Error,
    ctx: Arc<ScheduleContext>,
) -> Action {
    after_failure(
        "schedule",
        schedule,
        error,
        &ctx.backoff,
        &ctx.metrics,
        &ctx.events,
    )
}
