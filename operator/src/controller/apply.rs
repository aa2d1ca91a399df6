//! The side-effect end of a reconcile: turns a [`Plan`] into API calls. Children are applied
//! with server-side apply under one field manager (applying a child that exists is adoption),
//! statuses are patched only when the plan says they changed, and Events are published only for
//! the transitions the plan lists.

use futures::FutureExt;
use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tipoff_crds::{PhaseCompletion, PipelineRun};
use tracing::{info, warn};

use super::error::Error;
use super::events::Publisher;
use super::{Context, FIELD_MANAGER};
use crate::jobs::{build_job, owner_reference};
use crate::planner::Plan;

/// What applying a plan did, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    /// Jobs applied (created or adopted).
    pub jobs: usize,
    /// Status writes.
    pub status_writes: usize,
}

/// Applies `plan` for `run`.
pub async fn apply(run: &PipelineRun, plan: &Plan, ctx: &Context) -> Result<Applied, Error> {
    let ns = run.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let name = run
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let pcs: Api<PhaseCompletion> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let runs: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), &ns);
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Applied::default();

    // Children first: a status never describes a child that was not created. They are
    // independent of one another, so they are applied at once: a phase's Jobs appear together,
    // one round trip after the reconcile starts instead of one per Job.
    let pc_applies = plan
        .phase_completions
        .iter()
        .filter(|intent| !ctx.expectations.pending(&ns, &intent.name))
        .map(|intent| {
            let mut pc = PhaseCompletion::new(&intent.name, intent.spec.clone());
            pc.metadata.labels = Some(intent.labels.clone());
            pc.metadata.owner_references = owner_reference(run).map(|o| vec![o]);
            let (pcs, ssa, ns, name) = (&pcs, &ssa, &ns, &name);
            async move {
                pcs.patch(&intent.name, ssa, &Patch::Apply(&pc)).await?;
                ctx.expectations.expect(ns, &intent.name);
                info!(run = %name, phase = intent.spec.phase, phase_completion = %intent.name, "applied PhaseCompletion");
                Ok::<usize, Error>(0)
            }
            .boxed()
        });
    // Applied a moment ago but not in the watch cache yet: applying again would only be
    // another write of the same object.
    let job_applies = plan
        .jobs
        .iter()
        .filter(|intent| !ctx.expectations.pending(&ns, &intent.name))
        .map(|intent| {
            let job = build_job(run, intent, &ctx.job_settings);
            let (jobs, ssa, ns, name) = (&jobs, &ssa, &ns, &name);
            async move {
                jobs.patch(&intent.name, ssa, &Patch::Apply(&job)).await?;
                ctx.expectations.expect(ns, &intent.name);
                ctx.metrics.jobs_created.inc();
                if intent.attempt > 1 {
                    ctx.metrics.retries.inc();
                }
                info!(run = %name, date = %intent.date, phase = intent.phase, processor = %intent.processor,
                      attempt = intent.attempt, job = %intent.name, "applied Job");
                Ok::<usize, Error>(1)
            }
            .boxed()
        });
    // Every apply runs to its end (so each success is remembered) before an error is returned.
    for result in join_all(pc_applies.chain(job_applies)).await {
        applied.jobs += result?;
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
                applied.status_writes += 1;
                let planned_from = ctx
                    .stores
                    .phase_completions
                    .get(&ObjectRef::new(&write.name).within(&ns))
                    .and_then(|pc| pc.metadata.resource_version.clone());
                ctx.written.phase_completions.record(
                    &ns,
                    &write.name,
                    planned_from,
                    written.status.unwrap_or_else(|| write.status.clone()),
                );
            }
            // Created in this same plan but not visible yet, or deleted meanwhile: the next
            // reconcile writes it.
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
        ctx.written.runs.record(
            &ns,
            &name,
            run.metadata.resource_version.clone(),
            written.status.unwrap_or_else(|| plan.run_status.clone()),
        );
        applied.status_writes += 1;
    }

    publish_events(run, plan, &ctx.events).await;
    Ok(applied)
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
