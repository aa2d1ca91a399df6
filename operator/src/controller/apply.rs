//! The side-effect end of a reconcile: turns a [`Plan`] into API calls. Children are applied
//! with server-side apply under one field manager (applying a child that exists is adoption),
//! statuses are patched only when the plan says they changed, and Events are published only for
//! the transitions the plan lists.
//!
//! Children and statuses are two steps: a reconcile applies the children, plans again with what
//! the API server returned for them, and writes the statuses of that second plan (see
//! [`super::view`]). Each write is reported to the view, so the next snapshot knows of it
//! before the watch brings it back.

use futures::future::join_all;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tipoff_crds::{PhaseCompletion, PipelineRun};
use tracing::{info, warn};

use super::cache::{self, CachedJob};
use super::error::Error;
use super::events::Publisher;
use super::view::{Created, ObjectKey};
use super::{Context, FIELD_MANAGER};
use crate::jobs::{build_job, owner_reference};
use crate::planner::{Observed, Plan};

/// The run's namespace and name.
fn identity(run: &PipelineRun) -> Result<(String, String), Error> {
    let ns = run.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let name = run
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    Ok((ns, name))
}

/// Applies `plan`'s children for `run`: PhaseCompletions and Jobs to create, overdue Jobs to
/// delete. Returns what was created, as the API server has it.
pub(crate) async fn children(
    run: &PipelineRun,
    plan: &Plan,
    ctx: &Context,
) -> Result<Created, Error> {
    let (ns, name) = identity(run)?;
    let pcs: Api<PhaseCompletion> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Api<CachedJob> = Api::namespaced(ctx.client.clone(), &ns);
    let ssa = PatchParams::apply(FIELD_MANAGER).force();

    // Children first: a status never describes a child that was not created. They are
    // independent of one another, so they are applied at once: a phase's Jobs appear together,
    // one round trip after the reconcile starts instead of one per Job.
    let pc_applies = plan
        .phase_completions
        .iter()
        .filter(|intent| !ctx.view.awaited(&ObjectKey::new(&ns, &intent.name)))
        .map(|intent| {
            let mut pc = PhaseCompletion::new(&intent.name, intent.spec.clone());
            pc.metadata.labels = Some(intent.labels.clone());
            pc.metadata.owner_references = owner_reference(run).map(|o| vec![o]);
            let (pcs, ssa, ns, name) = (&pcs, &ssa, &ns, &name);
            async move {
                let mut created = pcs.patch(&intent.name, ssa, &Patch::Apply(&pc)).await?;
                ctx.view
                    .applied_phase_completion(ObjectKey::new(ns, &intent.name));
                cache::phase_completion(&mut created);
                info!(run = %name, phase = intent.spec.phase, phase_completion = %intent.name, "applied PhaseCompletion");
                Ok::<_, Error>(created)
            }
        });
    // Applied a moment ago but not in the watch cache yet: applying again would only be
    // another write of the same object.
    let job_applies = plan
        .jobs
        .iter()
        .filter(|intent| !ctx.view.awaited(&ObjectKey::new(&ns, &intent.name)))
        .map(|intent| {
            let job = build_job(run, intent, &ctx.job_settings);
            let (jobs, ssa, name) = (&jobs, &ssa, &name);
            async move {
                let mut created = jobs.patch(&intent.name, ssa, &Patch::Apply(&job)).await?;
                created.trim();
                ctx.view.applied_job(&created);
                ctx.metrics.jobs_created.inc();
                if intent.attempt > 1 {
                    ctx.metrics.retries.inc();
                }
                info!(run = %name, date = %intent.date, phase = intent.phase, processor = %intent.processor,
                      attempt = intent.attempt, job = %intent.name, "applied Job");
                Ok::<_, Error>(created)
            }
        });
    // Every apply runs to its end (so each success is remembered) before an error is returned.
    let (pc_results, job_results) = futures::join!(join_all(pc_applies), join_all(job_applies));
    let mut created = Created::default();
    let mut first_error = None;
    for result in pc_results {
        match result {
            Ok(pc) => created.phase_completions.push(pc),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    for result in job_results {
        match result {
            Ok(job) => created.jobs.push(job),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    for job in &plan.jobs_to_delete {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match jobs.delete(job, &dp).await {
            Ok(_) => info!(run = %name, job = %job, "deleted overdue Job"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// Writes `plan`'s changed statuses for `run` and publishes its Events; `observed` is what the
/// plan was made from. Returns the number of status writes.
pub(crate) async fn statuses(
    run: &PipelineRun,
    plan: &Plan,
    observed: &Observed,
    ctx: &Context,
) -> Result<usize, Error> {
    let (ns, name) = identity(run)?;
    let pcs: Api<PhaseCompletion> = Api::namespaced(ctx.client.clone(), &ns);
    let runs: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), &ns);
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let mut writes = 0;

    for write in plan.phase_completion_statuses.iter().filter(|w| w.changed) {
        let body = json!({
            "apiVersion": PhaseCompletion::api_version(&()),
            "kind": PhaseCompletion::kind(&()),
            "status": write.status,
        });
        match pcs
            .patch_status(&write.name, &ssa, &Patch::Apply(&body))
            .await
        {
            Ok(written) => {
                writes += 1;
                // The version planned from: the cached one, or the one just created.
                let planned_from = observed
                    .phase_completions
                    .iter()
                    .find(|pc| pc.metadata.name.as_deref() == Some(write.name.as_str()))
                    .and_then(|pc| pc.metadata.resource_version.clone());
                ctx.view.wrote_phase_completion_status(
                    ObjectKey::new(&ns, &write.name),
                    planned_from,
                    written.status.unwrap_or_else(|| write.status.clone()),
                );
            }
            // Deleted meanwhile: the next reconcile sees that.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if plan.run_status_changed {
        let body = json!({
            "apiVersion": PipelineRun::api_version(&()),
            "kind": PipelineRun::kind(&()),
            "status": plan.run_status,
        });
        let written = runs.patch_status(&name, &ssa, &Patch::Apply(&body)).await?;
        ctx.view.wrote_run_status(
            ObjectKey::new(&ns, &name),
            run.metadata.resource_version.clone(),
            written.status.unwrap_or_else(|| plan.run_status.clone()),
        );
        writes += 1;
    }

    publish_events(run, plan, &ctx.events).await;
    Ok(writes)
}

async fn publish_events(run: &PipelineRun, plan: &Plan, events: &Publisher) {
    let published = plan.events.iter().map(|e| async move {
        // An Event that cannot be written must not fail the reconcile: the status already
        // carries the same facts.
        if let Err(err) = events.publish(run, e).await {
            warn!(error = %err, reason = e.reason.as_str(), "could not publish Event");
        }
    });
    join_all(published).await;
}
