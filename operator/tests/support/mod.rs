//! A tiny in-memory "cluster" for planner tests: it applies a plan the way the controller will
//! (create Jobs and PhaseCompletions, delete overdue Jobs, write statuses) and lets a test
//! finish Jobs the way Kubernetes would (conditions on the Job, a terminated Pod with the
//! processor's result as its termination message).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tipoff_crds::children::{LABEL_ATTEMPT, LABEL_PROCESSOR};
use tipoff_crds::{
    Check, Mode, Override, OverrideType, PhaseCompletion, PipelineRun, PipelineRunSpec,
    ProcessorResult, Release,
};
use tipoff_operator::catalog::Catalog;
use tipoff_operator::jobs::{JobSettings, build_job};
use tipoff_operator::planner::{self, JobIntent, Observed, Plan};

/// The pinned image of every test run.
pub const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// An imageID with another digest: drift.
pub const OTHER_IMAGE_ID: &str = "ghcr.io/tipoff/processor@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
/// The pinned commit.
pub const COMMIT: &str = "c4f8f339";
/// The run's date.
pub const DATE: &str = "2026-01-29";

/// When every test run is created.
pub fn t0() -> Timestamp {
    "2026-01-30T09:00:00Z".parse().unwrap()
}

/// The six-phase test catalog.
pub fn test_catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test/pipeline.yaml"))
        .unwrap()
}

/// A run of the test catalog.
pub fn run(name: &str, mode: Mode) -> PipelineRun {
    let mut run = PipelineRun::new(
        name,
        PipelineRunSpec::new(
            DATE,
            mode,
            Release {
                version: Some("v0.1.0".into()),
                ..Release::pinned(IMAGE, COMMIT)
            },
        ),
    );
    run.metadata.namespace = Some("nba".into());
    run.metadata.generation = Some(1);
    run.metadata.creation_timestamp = Some(Time(t0()));
    run
}

/// An override of `type_` for `processor` (all processors when `None`).
pub fn override_(type_: OverrideType, processor: Option<&str>, gate: Option<&str>) -> Override {
    Override {
        type_,
        processor: processor.map(Into::into),
        gate: gate.map(Into::into),
        reason: "same-day predictions requested by the on-call (ticket 170)".into(),
    }
}

/// The in-memory cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The run, with the status last written.
    pub run: PipelineRun,
    /// What exists.
    pub observed: Observed,
    /// The current time.
    pub now: Timestamp,
    /// The catalog.
    pub catalog: Catalog,
}

impl Cluster {
    /// A cluster with only `run` in it, at `t0`.
    pub fn new(run: PipelineRun) -> Self {
        Self {
            run,
            observed: Observed::default(),
            now: t0(),
            catalog: test_catalog(),
        }
    }

    /// Plans without applying.
    pub fn plan(&self) -> Plan {
        planner::plan(&self.run, &self.observed, &self.catalog, self.now)
    }

    /// Applies a plan like the controller would.
    pub fn apply(&mut self, plan: &Plan) {
        for intent in &plan.jobs {
            if !self
                .observed
                .jobs
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(&intent.name))
            {
                self.observed
                    .jobs
                    .push(job_from(&self.run, intent, self.now));
            }
        }
        for name in &plan.jobs_to_delete {
            self.delete_job(name);
        }
        for intent in &plan.phase_completions {
            if !self
                .observed
                .phase_completions
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(&intent.name))
            {
                let mut pc = PhaseCompletion::new(&intent.name, intent.spec.clone());
                pc.metadata.labels = Some(intent.labels.clone());
                self.observed.phase_completions.push(pc);
            }
        }
        if plan.run_status_changed {
            self.run.status = Some(plan.run_status.clone());
        }
        for write in plan.phase_completion_statuses.iter().filter(|w| w.changed) {
            if let Some(pc) = self
                .observed
                .phase_completions
                .iter_mut()
                .find(|p| p.metadata.name.as_deref() == Some(&write.name))
            {
                pc.status = Some(write.status.clone());
            }
        }
    }

    /// Plans and applies.
    pub fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        plan
    }

    /// Steps until a plan creates nothing and changes no status (at most 20 steps); returns
    /// the last plan.
    pub fn settle(&mut self) -> Plan {
        let mut plan = self.step();
        for _ in 0..20 {
            let quiet = plan.jobs.is_empty()
                && plan.phase_completions.is_empty()
                && plan.jobs_to_delete.is_empty()
                && !plan.run_status_changed
                && plan.phase_completion_statuses.iter().all(|w| !w.changed);
            if quiet {
                return plan;
            }
            plan = self.step();
        }
        panic!("the planner did not settle: {plan:#?}");
    }

    /// Moves the clock.
    pub fn advance(&mut self, seconds: i64) {
        self.now += SignedDuration::from_secs(seconds);
    }

    /// The live (unfinished) Job of `processor`, if any.
    pub fn live_job(&self, processor: &str) -> Option<&Job> {
        self.observed
            .jobs
            .iter()
            .find(|j| label(j, LABEL_PROCESSOR) == Some(processor) && !finished(j))
    }

    /// Processors with a live Job.
    pub fn live_processors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .observed
            .jobs
            .iter()
            .filter(|j| !finished(j))
            .filter_map(|j| label(j, LABEL_PROCESSOR).map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    /// Names of all Jobs.
    pub fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .observed
            .jobs
            .iter()
            .filter_map(|j| j.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The result `processor` reports when all is well.
    pub fn result_for(&self, processor: &str) -> ProcessorResult {
        let p = self.catalog.processor(processor).unwrap();
        ProcessorResult {
            processor: processor.into(),
            service: "tipoff-processor".into(),
            version: "0.1.0".into(),
            commit: COMMIT.into(),
            date: self.run.spec.date.clone(),
            mode: self.run.spec.mode,
            rows: p.outputs.iter().map(|t| (t.clone(), 100)).collect(),
            checks: p
                .gates
                .iter()
                .map(|g| Check {
                    name: g.name.clone(),
                    passed: true,
                    observed: Some(10),
                    expected: Some(10),
                    missing: vec![],
                })
                .collect(),
            warnings: vec![],
            duration_ms: 1000,
        }
    }

    /// Completes the live Job of `processor` with a good result.
    pub fn succeed(&mut self, processor: &str) {
        let result = self.result_for(processor);
        self.succeed_with(processor, &result, IMAGE);
    }

    /// Completes the live Job of `processor` with `result`, run from `image_id`.
    pub fn succeed_with(&mut self, processor: &str, result: &ProcessorResult, image_id: &str) {
        let message = serde_json::to_string(result).unwrap();
        self.complete_with_message(processor, &message, image_id);
    }

    /// Completes the live Job of `processor`; each Pod's termination message is `message`.
    pub fn complete_with_message(&mut self, processor: &str, message: &str, image_id: &str) {
        let now = self.now;
        let job = self.live_job_mut(processor);
        let parallelism = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1);
        set_condition(job, "Complete", None, now);
        job.status.as_mut().unwrap().completion_time = Some(Time(now));
        let job = job.clone();
        for index in 0..parallelism {
            self.observed
                .pods
                .push(pod_of(&job, index, 0, Some(message), image_id, now));
        }
    }

    /// Completes the live Job of `processor` but no Pod result is observed.
    pub fn complete_without_pod(&mut self, processor: &str) {
        let now = self.now;
        let job = self.live_job_mut(processor);
        set_condition(job, "Complete", None, now);
    }

    /// Fails the live Job of `processor`; its Pod exited with `exit_code`.
    pub fn fail(&mut self, processor: &str, exit_code: i32) {
        let now = self.now;
        let job = self.live_job_mut(processor);
        set_condition(job, "Failed", Some("BackoffLimitExceeded"), now);
        let job = job.clone();
        self.observed.pods.push(pod_of(
            &job,
            0,
            exit_code,
            Some("upstream timed out"),
            IMAGE,
            now,
        ));
    }

    /// Kubernetes failed the live Job of `processor` for running past its deadline.
    pub fn fail_deadline(&mut self, processor: &str) {
        let now = self.now;
        let job = self.live_job_mut(processor);
        set_condition(job, "Failed", Some("DeadlineExceeded"), now);
    }

    /// The live Job of `processor` (and its Pods) disappears.
    pub fn vanish(&mut self, processor: &str) {
        let name = self
            .live_job(processor)
            .and_then(|j| j.metadata.name.clone())
            .unwrap();
        self.delete_job(&name);
    }

    /// Deletes a Job and its Pods.
    pub fn delete_job(&mut self, name: &str) {
        let Some(job) = self
            .observed
            .jobs
            .iter()
            .find(|j| j.metadata.name.as_deref() == Some(name))
            .cloned()
        else {
            return;
        };
        self.observed
            .jobs
            .retain(|j| j.metadata.name.as_deref() != Some(name));
        let (p, a) = (label(&job, LABEL_PROCESSOR), label(&job, LABEL_ATTEMPT));
        self.observed.pods.retain(|pod| {
            !(pod
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get(LABEL_PROCESSOR)
                .map(String::as_str)
                == p
                && pod
                    .metadata
                    .labels
                    .as_ref()
                    .unwrap()
                    .get(LABEL_ATTEMPT)
                    .map(String::as_str)
                    == a)
        });
    }

    /// Runs the pipeline to the end with every processor succeeding (at most 50 rounds).
    pub fn run_all_succeeding(&mut self) -> Plan {
        let mut plan = self.settle();
        for _ in 0..50 {
            let live = self.live_processors();
            if live.is_empty() {
                return plan;
            }
            for p in live {
                self.succeed(&p);
            }
            self.advance(10);
            plan = self.settle();
        }
        plan
    }

    fn live_job_mut(&mut self, processor: &str) -> &mut Job {
        self.observed
            .jobs
            .iter_mut()
            .find(|j| label(j, LABEL_PROCESSOR) == Some(processor) && !finished(j))
            .unwrap_or_else(|| panic!("no live Job for {processor}"))
    }
}

/// A label of a Job.
pub fn label<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// Whether a Job has a terminal condition.
pub fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn set_condition(job: &mut Job, type_: &str, reason: Option<&str>, now: Timestamp) {
    let status = job.status.get_or_insert_with(JobStatus::default);
    status.active = Some(0);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(JobCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: reason.map(Into::into),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        });
}

/// The Job the controller creates for `intent` (the real Job builder), as Kubernetes shows it
/// once it started.
pub fn job_from(run: &PipelineRun, intent: &JobIntent, now: Timestamp) -> Job {
    let mut job = build_job(run, intent, &JobSettings::default());
    job.metadata.creation_timestamp = Some(Time(now));
    job.status = Some(JobStatus {
        start_time: Some(Time(now)),
        active: Some(1),
        ..Default::default()
    });
    job
}

fn pod_of(
    job: &Job,
    index: i32,
    exit_code: i32,
    message: Option<&str>,
    image_id: &str,
    now: Timestamp,
) -> Pod {
    let name = format!("{}-{index}-x", job.metadata.name.clone().unwrap());
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            labels: job.metadata.labels.clone(),
            annotations: Some(BTreeMap::from([(
                "batch.kubernetes.io/job-completion-index".to_owned(),
                index.to_string(),
            )])),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(
                if exit_code == 0 {
                    "Succeeded"
                } else {
                    "Failed"
                }
                .into(),
            ),
            container_statuses: Some(vec![ContainerStatus {
                name: "processor".into(),
                image: IMAGE.into(),
                image_id: image_id.into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        message: message.map(Into::into),
                        finished_at: Some(Time(now)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}
