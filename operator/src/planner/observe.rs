//! Turns the Jobs, Pods and PhaseCompletions that exist into one typed view per processor:
//! what its latest attempt is and how it ended.
//!
//! The Jobs are the truth while they exist. A PhaseCompletion's status is the ledger of what
//! was observed before (a Job deleted by its TTL keeps its result there), and the only way to
//! notice a Job that vanished: a processor the ledger saw running whose Job is gone is a failed
//! attempt (`JobVanished`), never "running" forever. Results are parsed from the Pod's
//! termination message; a malformed or oversized one is a processor failure, not a panic.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tipoff_crds::children::{
    self, LABEL_ATTEMPT, LABEL_PHASE, LABEL_PROCESSOR, LABEL_RERUN, LABEL_RUN, processor_container,
};
use tipoff_crds::{Check, PhaseCompletion, ProcessorRecord, ProcessorResult};

/// How long after a Job completed the operator waits for its Pod's result to be observed
/// before calling the result missing (the Pod and Job caches are updated independently).
pub const RESULT_GRACE: SignedDuration = SignedDuration::from_secs(30);
/// Grace after a Job's `activeDeadlineSeconds` before the operator, not Kubernetes, declares
/// the attempt failed (a stalled Job controller or a Job that never started).
pub const DEADLINE_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// Everything that exists for one run: its PhaseCompletions, Jobs and Pods. The caller lists
/// them by the run's label; objects without the tipoff labels are ignored.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The run's PhaseCompletions.
    pub phase_completions: Vec<PhaseCompletion>,
    /// The run's Jobs (label `tipoff.dev/run`).
    pub jobs: Vec<Job>,
    /// The Pods of those Jobs.
    pub pods: Vec<Pod>,
    /// Other runs for the same date in the same namespace that were created before this one
    /// and have not ended. While any exists and this run has no Job yet, it creates none: two
    /// runs for one date never write at once.
    pub older_runs_for_date: Vec<OlderRun>,
}

/// An unfinished older run of the same date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OlderRun {
    /// Its name.
    pub name: String,
    /// Its state as last reconciled (`None` before its first status).
    pub state: Option<tipoff_crds::RunState>,
}

impl From<&str> for OlderRun {
    fn from(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: None,
        }
    }
}

impl OlderRun {
    /// Whether it waits for a person (`Blocked`, `Suspended`) rather than for its Jobs: it
    /// would hold the date indefinitely, so the waiting run says how to release it.
    pub fn waits_for_a_person(&self) -> bool {
        matches!(
            self.state,
            Some(tipoff_crds::RunState::Blocked | tipoff_crds::RunState::Suspended)
        )
    }
}

/// Why a run waits for `older` runs of its date in namespace `ns`, and what releases it: an
/// older run that waits for a person would hold the date until someone acts, so the clause
/// names it with its state and the command that releases the date.
pub fn waiting_for_older(older: &[OlderRun], ns: &str) -> String {
    let names: Vec<String> = older
        .iter()
        .map(|o| match o.state {
            Some(s) => format!("{} ({})", o.name, s.as_str()),
            None => o.name.clone(),
        })
        .collect();
    let stuck: Vec<&str> = older
        .iter()
        .filter(|o| o.waits_for_a_person())
        .map(|o| o.name.as_str())
        .collect();
    if stuck.is_empty() {
        return format!("{}; this run starts when it ends", names.join(", "));
    }
    format!(
        "{}; a Blocked or Suspended run holds the date until it ends, so resolve it or release the date with `kubectl delete pipelinerun {} -n {ns}` (its Jobs go with it; the rows it wrote stay) and this run starts",
        names.join(", "),
        stuck.join(" ")
    )
}

/// What the code that ran says about itself, for drift checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Processor names the results reported.
    pub processors: BTreeSet<String>,
    /// Commits the results reported.
    pub commits: BTreeSet<String>,
    /// The Pods' `imageID`s.
    pub image_ids: BTreeSet<String>,
}

/// A finished, successful attempt (before gates and drift are judged).
#[derive(Clone, Debug, PartialEq)]
pub struct Success {
    /// The record to keep in the PhaseCompletion's `completed` list (gate policies are set
    /// by the planner for the run's mode).
    pub record: ProcessorRecord,
    /// The checks the processor reported, merged over its Pods.
    pub checks: Vec<Check>,
    /// Identity of the code that ran.
    pub evidence: Evidence,
}

/// How the latest attempt of a processor stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Latest {
    /// No attempt has been observed.
    NotStarted,
    /// A Job exists and has not finished.
    Live {
        /// Attempt number.
        attempt: u32,
        /// The Job's name.
        job: String,
        /// When the attempt started.
        started: Option<Timestamp>,
        /// When the operator will call it overdue.
        overdue_at: Timestamp,
        /// The rerun this attempt is, if it is one.
        rerun: Option<String>,
    },
    /// The Job completed but its result has not been observed yet.
    AwaitingResult {
        /// Attempt number.
        attempt: u32,
        /// The Job's name.
        job: String,
        /// When the result is declared missing.
        until: Timestamp,
        /// The rerun this attempt is, if it is one.
        rerun: Option<String>,
    },
    /// The attempt succeeded.
    Succeeded(Box<Success>),
    /// The attempt failed (`record.reason` says why).
    Failed(Box<ProcessorRecord>),
}

/// One processor as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessorView {
    /// The latest attempt.
    pub latest: Latest,
    /// A Job that is still live but overdue: to be deleted.
    pub overdue_job: Option<String>,
    /// The latest failed record (kept while a retry runs), for the `failed` list.
    pub last_failure: Option<ProcessorRecord>,
    /// Reruns (`spec.reruns[].name`) with an attempt observed, from Job labels and the ledger,
    /// with the attempt and Job each ran as.
    pub reruns: BTreeMap<String, (u32, String)>,
}

impl ProcessorView {
    /// The latest attempt number (0 if none).
    pub fn attempt(&self) -> u32 {
        match &self.latest {
            Latest::NotStarted => 0,
            Latest::Live { attempt, .. } | Latest::AwaitingResult { attempt, .. } => *attempt,
            Latest::Succeeded(s) => s.record.attempt,
            Latest::Failed(r) => r.attempt,
        }
    }

    /// The rerun the latest attempt is, if it is one.
    pub fn latest_rerun(&self) -> Option<&str> {
        match &self.latest {
            Latest::NotStarted => None,
            Latest::Live { rerun, .. } | Latest::AwaitingResult { rerun, .. } => rerun.as_deref(),
            Latest::Succeeded(s) => s.record.rerun.as_deref(),
            Latest::Failed(r) => r.rerun.as_deref(),
        }
    }
}

/// A Job of the run, parsed.
#[derive(Clone, Debug)]
struct JobView<'a> {
    job: &'a Job,
    name: String,
    attempt: u32,
    rerun: Option<String>,
}

/// Identifies the run's Jobs by label and groups them by processor.
fn jobs_by_processor<'a>(run_label: &str, jobs: &'a [Job]) -> BTreeMap<String, Vec<JobView<'a>>> {
    let mut out: BTreeMap<String, Vec<JobView<'a>>> = BTreeMap::new();
    for job in jobs {
        let Some(labels) = job.metadata.labels.as_ref() else {
            continue;
        };
        if labels.get(LABEL_RUN).map(String::as_str) != Some(run_label) {
            continue;
        }
        let (Some(processor), Some(attempt), Some(_phase)) = (
            labels.get(LABEL_PROCESSOR),
            labels
                .get(LABEL_ATTEMPT)
                .and_then(|a| a.parse::<u32>().ok()),
            labels.get(LABEL_PHASE),
        ) else {
            continue;
        };
        let name = job.metadata.name.clone().unwrap_or_default();
        let rerun = labels.get(LABEL_RERUN).cloned();
        out.entry(processor.clone()).or_default().push(JobView {
            job,
            name,
            attempt,
            rerun,
        });
    }
    out
}

/// The inputs [`view_all`] needs that do not change per processor.
pub struct ObserveContext<'a> {
    /// The run's name (Job names derive from it).
    pub run: &'a str,
    /// The run's label value.
    pub run_label: &'a str,
    /// The run's date, for result identity checks.
    pub date: &'a str,
    /// The run's mode, for result identity checks.
    pub mode: tipoff_crds::Mode,
    /// The current time.
    pub now: Timestamp,
    /// The image and commit each processor is pinned to. When the Pods of an Indexed Job
    /// disagree, the record keeps the value that differs from the pin, so drift outlives the
    /// Job in the ledger.
    pub pinned: &'a dyn Fn(&str) -> (&'a str, &'a str),
}

/// Builds the per-processor view for every processor that has Jobs or ledger entries.
pub fn view_all(
    ctx: &ObserveContext<'_>,
    observed: &Observed,
    catalog_info: &dyn Fn(&str) -> Option<(u8, i64)>,
) -> BTreeMap<String, ProcessorView> {
    let jobs = jobs_by_processor(ctx.run_label, &observed.jobs);
    // Only this run's PhaseCompletions are its ledger.
    let pcs: Vec<PhaseCompletion> = observed
        .phase_completions
        .iter()
        .filter(|pc| pc.spec.run == ctx.run)
        .cloned()
        .collect();
    let mut names: BTreeSet<String> = jobs.keys().cloned().collect();
    for pc in &pcs {
        if let Some(status) = &pc.status {
            names.extend(status.completed.iter().map(|r| r.processor.clone()));
            names.extend(status.failed.iter().map(|r| r.processor.clone()));
            names.extend(status.running.iter().map(|r| r.processor.clone()));
        }
    }
    let empty = Vec::new();
    names
        .into_iter()
        .filter_map(|name| {
            let (phase, deadline) = catalog_info(&name)?;
            let ledger = Ledger::find(&pcs, &name);
            let view = view_processor(
                ctx,
                &name,
                jobs.get(&name).unwrap_or(&empty),
                &observed.pods,
                &ledger,
                phase,
                deadline,
            );
            Some((name, view))
        })
        .collect()
}

/// What the PhaseCompletions recorded for one processor.
#[derive(Default)]
struct Ledger {
    completed: Option<ProcessorRecord>,
    failed: Option<ProcessorRecord>,
    running: Option<u32>,
    /// The rerun of the latest running attempt, if it was one.
    running_rerun: Option<String>,
    /// Reruns the ledger saw, with their attempt and Job.
    reruns: BTreeMap<String, (u32, String)>,
}

impl Ledger {
    fn find(pcs: &[PhaseCompletion], processor: &str) -> Self {
        let mut ledger = Ledger::default();
        for status in pcs.iter().filter_map(|pc| pc.status.as_ref()) {
            if let Some(r) = status.completed.iter().find(|r| r.processor == processor) {
                ledger.completed = Some(r.clone());
            }
            if let Some(r) = status.failed.iter().find(|r| r.processor == processor) {
                ledger.failed = Some(r.clone());
            }
            if let Some(r) = status.running.iter().find(|r| r.processor == processor)
                && ledger.running.is_none_or(|a| r.attempt > a)
            {
                ledger.running = Some(r.attempt);
                ledger.running_rerun = r.rerun.clone();
                if let Some(name) = &r.rerun {
                    ledger
                        .reruns
                        .insert(name.clone(), (r.attempt, r.job.clone()));
                }
            }
            for r in status
                .completed
                .iter()
                .chain(&status.failed)
                .filter(|r| r.processor == processor)
            {
                if let Some(name) = &r.rerun {
                    ledger
                        .reruns
                        .insert(name.clone(), (r.attempt, r.job.clone()));
                }
            }
        }
        ledger
    }
}

fn view_processor(
    ctx: &ObserveContext<'_>,
    processor: &str,
    jobs: &[JobView<'_>],
    pods: &[Pod],
    ledger: &Ledger,
    phase: u8,
    deadline_seconds: i64,
) -> ProcessorView {
    // The attempt the ledger last saw running.
    let ledger_running_attempt = ledger.running;
    let latest_job = jobs.iter().max_by_key(|j| j.attempt);
    let attempt = [
        latest_job.map(|j| j.attempt),
        ledger.completed.as_ref().map(|r| r.attempt),
        ledger.failed.as_ref().map(|r| r.attempt),
        ledger_running_attempt,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);

    let mut overdue_job = None;
    let latest = if attempt == 0 {
        Latest::NotStarted
    } else if let Some(job) = latest_job.filter(|j| j.attempt == attempt && !is_deleting(j.job)) {
        let (latest, overdue) = view_job(ctx, processor, job, pods, ledger, deadline_seconds);
        overdue_job = overdue;
        latest
    } else if let Some(done) = ledger.completed.as_ref().filter(|r| r.attempt == attempt) {
        Latest::Succeeded(Box::new(success_from_record(done)))
    } else if let Some(failed) = ledger.failed.as_ref().filter(|r| r.attempt == attempt) {
        Latest::Failed(Box::new(failed.clone()))
    } else {
        // The ledger saw this attempt running (or its Job is being deleted) and no Job or
        // result is left: the attempt failed.
        let job = latest_job
            .filter(|j| j.attempt == attempt)
            .map(|j| j.name.clone())
            .unwrap_or_else(|| tipoff_crds::children::job_name(ctx.run, phase, processor, attempt));
        let mut record = failure(
            processor,
            attempt,
            job,
            None,
            ctx.now,
            "JobVanished",
            "the attempt's Job disappeared before it finished".to_owned(),
            None,
        );
        record.rerun = latest_job
            .filter(|j| j.attempt == attempt)
            .and_then(|j| j.rerun.clone())
            .or_else(|| {
                (ledger.running == Some(attempt))
                    .then(|| ledger.running_rerun.clone())
                    .flatten()
            });
        Latest::Failed(Box::new(record))
    };

    let last_failure = match &latest {
        Latest::Failed(r) => Some((**r).clone()),
        Latest::Succeeded(_) => None,
        _ => {
            // A retry is live: keep the failure that caused it, from its Job or the ledger.
            let previous = attempt.saturating_sub(1);
            jobs.iter()
                .find(|j| j.attempt == previous && previous > 0)
                .and_then(
                    |j| match view_job(ctx, processor, j, pods, ledger, deadline_seconds).0 {
                        Latest::Failed(r) => Some(*r),
                        _ => None,
                    },
                )
                .or_else(|| ledger.failed.clone().filter(|f| f.attempt == previous))
        }
    };
    let mut reruns = ledger.reruns.clone();
    for j in jobs {
        if let Some(name) = &j.rerun {
            reruns.insert(name.clone(), (j.attempt, j.name.clone()));
        }
    }
    ProcessorView {
        latest,
        overdue_job,
        last_failure,
        reruns,
    }
}

fn is_deleting(job: &Job) -> bool {
    job.metadata.deletion_timestamp.is_some() && terminal_condition(job).is_none()
}

/// How a Job ended ([`children::job_end`]): completion time, or failure time, reason, message.
enum Terminal {
    Complete(Option<Timestamp>),
    Failed(Option<Timestamp>, Option<String>, Option<String>),
}

fn terminal_condition(job: &Job) -> Option<Terminal> {
    let (end, c) = children::job_end(job)?;
    let at = c.last_transition_time.as_ref().map(|t| t.0);
    Some(if end.is_failure() {
        Terminal::Failed(at, c.reason.clone(), c.message.clone())
    } else {
        let completed = job.status.as_ref().and_then(|s| s.completion_time.as_ref());
        Terminal::Complete(completed.map(|t| t.0).or(at))
    })
}

fn job_start(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

/// The view of one Job, and its name if it is live but overdue. A rerun's records carry the
/// rerun's name, so the ledger remembers it after the Job is gone.
fn view_job(
    ctx: &ObserveContext<'_>,
    processor: &str,
    job: &JobView<'_>,
    pods: &[Pod],
    ledger: &Ledger,
    deadline_seconds: i64,
) -> (Latest, Option<String>) {
    let (mut latest, overdue) =
        view_job_outcome(ctx, processor, job, pods, ledger, deadline_seconds);
    match &mut latest {
        Latest::Succeeded(s) if s.record.attempt == job.attempt => {
            s.record.rerun.clone_from(&job.rerun);
        }
        Latest::Failed(r) if r.attempt == job.attempt => r.rerun.clone_from(&job.rerun),
        _ => {}
    }
    (latest, overdue)
}

fn view_job_outcome(
    ctx: &ObserveContext<'_>,
    processor: &str,
    job: &JobView<'_>,
    pods: &[Pod],
    ledger: &Ledger,
    deadline_seconds: i64,
) -> (Latest, Option<String>) {
    let started = job_start(job.job);
    let pods = pods_of(ctx.run_label, processor, job.attempt, pods);
    match terminal_condition(job.job) {
        Some(Terminal::Complete(finished)) => {
            // A result already recorded for this attempt stays the truth once Pods are gone.
            let completions = job
                .job
                .spec
                .as_ref()
                .and_then(|s| s.completions.or(s.parallelism))
                .unwrap_or(1)
                .max(1) as usize;
            let results = successful_results(&pods);
            if results.len() < completions {
                if let Some(done) = ledger
                    .completed
                    .as_ref()
                    .filter(|r| r.attempt == job.attempt)
                {
                    return (Latest::Succeeded(Box::new(success_from_record(done))), None);
                }
                let until = super::later(finished.unwrap_or(ctx.now), RESULT_GRACE);
                if ctx.now < until {
                    return (
                        Latest::AwaitingResult {
                            attempt: job.attempt,
                            job: job.name.clone(),
                            until,
                            rerun: job.rerun.clone(),
                        },
                        None,
                    );
                }
                let record = failure(
                    processor,
                    job.attempt,
                    job.name.clone(),
                    started,
                    finished.unwrap_or(ctx.now),
                    "MissingResult",
                    format!(
                        "the Job completed but {} of {completions} Pod results were observed",
                        results.len()
                    ),
                    None,
                );
                return (Latest::Failed(Box::new(record)), None);
            }
            (
                parse_results(
                    ctx,
                    processor,
                    job,
                    started,
                    finished.unwrap_or(ctx.now),
                    &results,
                ),
                None,
            )
        }
        Some(Terminal::Failed(at, reason, message)) => {
            let (exit_code, pod_message) = last_failed_container(&pods);
            let (reason, text) = match (reason.as_deref(), exit_code) {
                (Some("DeadlineExceeded"), _) => (
                    "DeadlineExceeded".to_owned(),
                    format!("the Job ran past its {deadline_seconds}s deadline"),
                ),
                (_, Some(code)) if is_permanent_exit(code) => (
                    "ExitPermanent".to_owned(),
                    format!("the processor exited with code {code} (bad input: not retried)"),
                ),
                (_, Some(code)) => (
                    "ExitTransient".to_owned(),
                    format!("the processor exited with code {code}"),
                ),
                (r, None) => (
                    "JobFailed".to_owned(),
                    format!(
                        "the Job failed ({}){}",
                        r.unwrap_or("no reason given"),
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                ),
            };
            let text = match pod_message {
                Some(m) if !m.trim().is_empty() => format!("{text}: {}", truncate(m.trim(), 200)),
                _ => text,
            };
            let finished = at.or(ledger
                .failed
                .as_ref()
                .filter(|r| r.attempt == job.attempt)
                .and_then(|r| r.finish_time.as_ref().map(|t| t.0)));
            let record = failure(
                processor,
                job.attempt,
                job.name.clone(),
                started,
                finished.unwrap_or(ctx.now),
                &reason,
                text,
                exit_code,
            );
            (Latest::Failed(Box::new(record)), None)
        }
        None => {
            let overdue_at = super::later(
                started.unwrap_or(ctx.now),
                SignedDuration::from_secs(deadline_seconds).saturating_add(DEADLINE_GRACE),
            );
            if ctx.now >= overdue_at {
                let record = failure(
                    processor,
                    job.attempt,
                    job.name.clone(),
                    started,
                    overdue_at,
                    "DeadlineExceeded",
                    format!(
                        "the Job was still not finished {}s after its {deadline_seconds}s deadline",
                        DEADLINE_GRACE.as_secs()
                    ),
                    None,
                );
                (Latest::Failed(Box::new(record)), Some(job.name.clone()))
            } else {
                (
                    Latest::Live {
                        attempt: job.attempt,
                        job: job.name.clone(),
                        started,
                        overdue_at,
                        rerun: job.rerun.clone(),
                    },
                    None,
                )
            }
        }
    }
}

/// Whether an exit code means bad input, which a retry cannot fix (the processor contract's
/// [`tipoff_crds::classify_exit`]).
pub fn is_permanent_exit(code: i32) -> bool {
    tipoff_crds::classify_exit(code) == tipoff_crds::ExitClass::Permanent
}

fn pods_of<'a>(run_label: &str, processor: &str, attempt: u32, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let attempt = attempt.to_string();
    pods.iter()
        .filter(|p| {
            p.metadata.labels.as_ref().is_some_and(|l| {
                l.get(LABEL_RUN).map(String::as_str) == Some(run_label)
                    && l.get(LABEL_PROCESSOR).map(String::as_str) == Some(processor)
                    && l.get(LABEL_ATTEMPT) == Some(&attempt)
            })
        })
        .collect()
}

/// One successful Pod's termination message and image.
struct PodResult {
    pod: String,
    message: String,
    image_id: String,
}

/// The results of the Job's successful Pods, one per completion index (the latest wins).
fn successful_results(pods: &[&Pod]) -> Vec<PodResult> {
    let mut by_index: BTreeMap<String, (Option<Timestamp>, PodResult)> = BTreeMap::new();
    for pod in pods {
        let Some(container) = processor_container(pod) else {
            continue;
        };
        let Some(terminated) = container.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
            continue;
        };
        if terminated.exit_code != 0 {
            continue;
        }
        let index = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
            .cloned()
            .unwrap_or_default();
        let finished = terminated.finished_at.as_ref().map(|t| t.0);
        let result = PodResult {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            message: terminated.message.clone().unwrap_or_default(),
            image_id: container.image_id.clone(),
        };
        match by_index.get(&index) {
            Some((prev, _)) if *prev >= finished => {}
            _ => {
                by_index.insert(index, (finished, result));
            }
        }
    }
    by_index.into_values().map(|(_, r)| r).collect()
}

fn last_failed_container(pods: &[&Pod]) -> (Option<i32>, Option<String>) {
    pods.iter()
        .filter_map(|p| {
            let t = processor_container(p)?
                .state
                .as_ref()?
                .terminated
                .as_ref()?;
            (t.exit_code != 0).then(|| {
                (
                    t.finished_at.as_ref().map(|f| f.0),
                    t.exit_code,
                    t.message.clone(),
                )
            })
        })
        .max_by_key(|(at, _, _)| *at)
        .map_or((None, None), |(_, code, message)| (Some(code), message))
}

/// Parses and merges the results of a completed Job's Pods.
fn parse_results(
    ctx: &ObserveContext<'_>,
    processor: &str,
    job: &JobView<'_>,
    started: Option<Timestamp>,
    finished: Timestamp,
    results: &[PodResult],
) -> Latest {
    let fail = |reason: &str, message: String| {
        Latest::Failed(Box::new(failure(
            processor,
            job.attempt,
            job.name.clone(),
            started,
            finished,
            reason,
            message,
            Some(0),
        )))
    };
    let mut evidence = Evidence::default();
    let mut rows: BTreeMap<String, i64> = BTreeMap::new();
    let mut checks: Vec<Check> = Vec::new();
    for r in results {
        let parsed = match ProcessorResult::parse(&r.message) {
            Ok(p) => p,
            Err(e) => return fail(e.category(), format!("Pod {}: {e}", r.pod)),
        };
        if parsed.date != ctx.date || parsed.mode != ctx.mode {
            return fail(
                "ResultMismatch",
                format!(
                    "Pod {} reported date {} mode {:?}, but the run is for {} in {:?} mode",
                    r.pod, parsed.date, parsed.mode, ctx.date, ctx.mode
                ),
            );
        }
        evidence
            .processors
            .insert(clip(&parsed.processor, limits::NAME));
        evidence
            .commits
            .insert(clip(&parsed.commit, limits::COMMIT));
        if !r.image_id.is_empty() {
            evidence.image_ids.insert(clip(&r.image_id, limits::IMAGE));
        }
        for (table, n) in parsed.rows {
            if rows.len() < limits::TABLES || rows.contains_key(&table) {
                *rows.entry(table).or_default() += n;
            }
        }
        for mut check in parsed.checks {
            check.missing = check
                .missing
                .iter()
                .take(limits::MISSING)
                .map(|m| clip(m, limits::ENTITY))
                .collect();
            match checks.iter_mut().find(|c| c.name == check.name) {
                Some(existing) => {
                    existing.passed &= check.passed;
                    existing.observed = sum(existing.observed, check.observed);
                    existing.expected = sum(existing.expected, check.expected);
                    existing.missing.extend(check.missing);
                    existing.missing.truncate(limits::MISSING);
                }
                None => checks.push(check),
            }
        }
    }
    let (pinned_image, pinned_commit) = (ctx.pinned)(processor);
    let mismatch = evidence
        .processors
        .iter()
        .find(|p| *p != processor)
        .cloned();
    let record = ProcessorRecord {
        processor: processor.to_owned(),
        attempt: job.attempt,
        job: job.name.clone(),
        start_time: started.map(Time),
        finish_time: Some(Time(finished)),
        commit: odd_one_out(&evidence.commits, |c| {
            super::drift::same_commit(pinned_commit, c)
        }),
        image: odd_one_out(&evidence.image_ids, |i| {
            super::drift::digest(i) == super::drift::digest(pinned_image)
        }),
        rows,
        gates: Vec::new(),
        reported_processor: mismatch,
        reason: None,
        message: None,
        exit_code: Some(0),
        rerun: None,
    };
    Latest::Succeeded(Box::new(Success {
        record,
        checks,
        evidence,
    }))
}

/// The first value that does not match the pin, else the first value.
fn odd_one_out(values: &BTreeSet<String>, matches_pin: impl Fn(&str) -> bool) -> Option<String> {
    values
        .iter()
        .find(|v| !matches_pin(v))
        .or_else(|| values.iter().next())
        .cloned()
}

fn sum(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// Rebuilds a success from a ledger record whose Job and Pods are gone.
fn success_from_record(record: &ProcessorRecord) -> Success {
    let mut evidence = Evidence::default();
    evidence.processors.insert(
        record
            .reported_processor
            .clone()
            .unwrap_or_else(|| record.processor.clone()),
    );
    evidence.commits.extend(record.commit.clone());
    evidence.image_ids.extend(record.image.clone());
    let checks = record
        .gates
        .iter()
        .map(|g| Check {
            name: g.name.clone(),
            passed: g.passed,
            observed: g.observed,
            expected: g.expected,
            missing: g.missing.clone(),
        })
        .collect();
    Success {
        record: record.clone(),
        checks,
        evidence,
    }
}

#[allow(clippy::too_many_arguments)]
fn failure(
    processor: &str,
    attempt: u32,
    job: String,
    started: Option<Timestamp>,
    finished: Timestamp,
    reason: &str,
    message: String,
    exit_code: Option<i32>,
) -> ProcessorRecord {
    ProcessorRecord {
        processor: processor.to_owned(),
        attempt,
        job,
        start_time: started.map(Time),
        finish_time: Some(Time(finished)),
        reported_processor: None,
        commit: None,
        image: None,
        rows: BTreeMap::new(),
        gates: Vec::new(),
        reason: Some(reason.to_owned()),
        message: Some(clip(&message, limits::MESSAGE)),
        exit_code,
        rerun: None,
    }
}

/// The CRD's bounds on what a record may hold, so a status write is never rejected because a
/// processor reported something oversized.
mod limits {
    /// Processor names (and reported ones).
    pub const NAME: usize = 63;
    /// Commits.
    pub const COMMIT: usize = 40;
    /// Image references and IDs.
    pub const IMAGE: usize = 512;
    /// Messages.
    pub const MESSAGE: usize = 1024;
    /// Tables in `rows`.
    pub const TABLES: usize = 32;
    /// Missing entities per check.
    pub const MISSING: usize = 20;
    /// Length of one missing entity.
    pub const ENTITY: usize = 128;
}

fn clip(text: &str, max: usize) -> String {
    truncate(text, max).to_owned()
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
