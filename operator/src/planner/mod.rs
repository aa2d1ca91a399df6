//! The pure planner: `plan(run, observed, catalog, now) -> Plan`.
//!
//! Given a `PipelineRun`, everything that exists for it (PhaseCompletions, Jobs, Pods), the
//! catalog and the current time, the planner decides which Jobs and PhaseCompletions to
//! create, which overdue Jobs to delete, what status to write, which Events to emit and when
//! to look again. It reads no clock and does no I/O, so every rule is tested without a cluster,
//! and the status it computes depends only on what exists: an operator that lost its state
//! rebuilds the same status from the same children.
//!
//! Concerns live in submodules: [`naming`] (child names and labels), [`observe`] (Jobs and Pods
//! into a typed view), [`dependencies`] (who may run), [`gates`], [`drift`], [`retry`],
//! [`overrides`] and [`status`] (statuses, conditions and Events).
//!
//! # States
//!
//! A **processor** is `Pending` until its phase is reached (every earlier phase succeeded),
//! then `Waiting` while a dependency is in progress, `Ready` (a Job is planned), `Live` while
//! its Job runs, and on success `Accepted`, or `Held` when a blocking gate failed or drift
//! blocks. A failed attempt is `BackingOff` until `finish + min(base * 2^(n-1), cap)`, then
//! `Ready` for attempt n+1, or `Exhausted` after the last attempt or a permanent exit code.
//! A Job past its deadline (plus a minute's grace), a Job that vanished, or a completed Job
//! whose result never appeared is a failed attempt. A processor whose dependency ended
//! without being accepted is `DepBlocked`, unless a `SkipDependencyCheck` override lets it run
//! once that dependency has finished in any way.
//!
//! A **phase** is `Skipped` (outside the subset), `Pending` (no processor reached), `Running`
//! (any processor Ready, Live, BackingOff or Waiting), and once nothing more can happen:
//! `Succeeded` (every required processor Accepted), `Failed` (a required one Exhausted) or
//! `Blocked` (a required one Held, DepBlocked or never reached).
//!
//! A **run** is `Blocked` when its spec names what the catalog lacks or nothing is in scope;
//! `Succeeded` when every phase succeeded; `Failed` once its deadline passed; `Running` while
//! a Job is live; otherwise, while work remains, `Suspended` (if `suspend`), `Pending` (no
//! attempt observed yet) or `Running`; and when nothing more can happen, `Succeeded` if its
//! last phase succeeded through overrides, `Failed` if the first unsuccessful phase failed,
//! else `Blocked`. None of these is absorbing: a spec change (an override, `suspend: false`)
//! or a change of the children is planned from again.

pub mod dependencies;
pub mod drift;
pub mod gates;
pub mod observe;
pub mod overrides;
pub mod processor_state;
pub mod reruns;
pub mod retry;
pub mod status;
pub mod timing;
pub mod transitions;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tipoff_crds::{
    DriftFinding, Mode, OverrideType, PhaseCompletionSpec, PhaseCompletionStatus, PipelineRun,
    PipelineRunStatus, children,
};

use crate::catalog::{Catalog, Enforcement};

use self::dependencies::{Evaluation, Own, Scope, State};
use self::observe::{Latest, ObserveContext, ProcessorView};
use self::overrides::{Applied, applies};

pub use self::observe::Observed;
pub use self::status::{EventIntent, EventReason, EventType};

/// Where a processor takes its players from (seed 001's "player source").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayerSource {
    /// Who is expected to play (`upcoming_player_game_context`): Production and SameDay.
    Expected,
    /// Who actually played (`player_game_summary`): Backfill.
    WhoPlayed,
}

/// Mode-derived settings a processor is started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorFlags {
    /// Where players come from.
    pub player_source: PlayerSource,
    /// The processor must not fail on missing inputs (an audited `SkipDependencyCheck`).
    pub skip_dependency_check: bool,
    /// Checks the processor should not run in this mode (gates that are `off`), e.g. the
    /// defensive gap checks in SameDay.
    pub disabled_checks: Vec<String>,
}

/// A Job to create for one processor attempt. The Job object itself is built from this
/// intent by the Job builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobIntent {
    /// The Job's deterministic name.
    pub name: String,
    /// The phase number.
    pub phase: u8,
    /// The processor.
    pub processor: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The labels identifying the Job (and its Pods).
    pub labels: BTreeMap<String, String>,
    /// The image to run, pinned by digest.
    pub image: String,
    /// The commit that image was built from.
    pub commit: String,
    /// The run's date.
    pub date: String,
    /// The run's mode.
    pub mode: Mode,
    /// The Job's `activeDeadlineSeconds`.
    pub deadline_seconds: i64,
    /// The Job's parallelism (Indexed completions above 1).
    pub parallelism: u32,
    /// Mode-derived flags.
    pub flags: ProcessorFlags,
    /// The rerun (`spec.reruns[].name`) this attempt is, if it is one.
    pub rerun: Option<String>,
    /// The one game the attempt is limited to (a rerun's `game`).
    pub game: Option<String>,
    /// The processor's resource requests and limits from the catalog (over the defaults).
    pub resources: crate::catalog::Resources,
}

/// A PhaseCompletion to create.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseCompletionIntent {
    /// Its deterministic name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its spec.
    pub spec: PhaseCompletionSpec,
}

/// The status a PhaseCompletion should have.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseCompletionStatusWrite {
    /// The PhaseCompletion's name.
    pub name: String,
    /// The status.
    pub status: PhaseCompletionStatus,
    /// Whether it differs from the observed status (write only then).
    pub changed: bool,
}

/// Everything the operator should do for one run, now.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Jobs to create (creating one that exists is adoption).
    pub jobs: Vec<JobIntent>,
    /// Jobs to delete: live but past their deadline, or every live Job once the run's
    /// deadline passed.
    pub jobs_to_delete: Vec<String>,
    /// PhaseCompletions to create.
    pub phase_completions: Vec<PhaseCompletionIntent>,
    /// The run's status.
    pub run_status: PipelineRunStatus,
    /// Whether it differs from the observed status (write only then).
    pub run_status_changed: bool,
    /// The statuses of the PhaseCompletions that exist.
    pub phase_completion_statuses: Vec<PhaseCompletionStatusWrite>,
    /// Events for transitions.
    pub events: Vec<EventIntent>,
    /// When to plan again if nothing changes before.
    pub requeue_after: Option<Duration>,
}

/// What the planner derived about one in-scope processor (shared with [`status`]).
#[derive(Clone, Debug, Default)]
pub struct Judged {
    /// The gates of its successful attempt.
    pub gates: gates::Verdict,
    /// Drift in its successful attempt.
    pub drift: Vec<DriftFinding>,
    /// Whether that drift blocks.
    pub drift_blocks: bool,
}

/// Everything [`status`] needs, computed once.
pub struct Derived<'a> {
    /// The run.
    pub run: &'a PipelineRun,
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The run's scope.
    pub scope: &'a Scope,
    /// Per-processor views.
    pub views: &'a BTreeMap<String, ProcessorView>,
    /// Per-processor judgements.
    pub judged: &'a BTreeMap<String, Judged>,
    /// States of processors and phases.
    pub eval: &'a Evaluation,
    /// Every override effect.
    pub applied: &'a [Applied],
    /// Why the spec cannot be run against the catalog, if so.
    pub invalid: Option<String>,
    /// Which pinned images are outside the operator's image allowlist, if any: such a run
    /// never runs.
    pub image_not_allowed: Option<String>,
    /// Older runs for the same date this run waits for, if any.
    pub waiting_for: Option<String>,
    /// When the run's deadline passed, if it did.
    pub deadline_passed: Option<Timestamp>,
    /// The current time.
    pub now: Timestamp,
    /// Reruns that have started.
    pub reruns_started: &'a BTreeMap<String, reruns::Started>,
    /// Reruns that can never run, and why.
    pub reruns_invalid: &'a BTreeMap<String, String>,
}

/// How often a run waiting for an older run of its date looks again.
pub const WAIT_FOR_OLDER_RUN_SECS: i64 = 5;

/// Plans one reconcile of `run`.
pub fn plan(run: &PipelineRun, observed: &Observed, catalog: &Catalog, now: Timestamp) -> Plan {
    let spec = &run.spec;
    let run_name = run.metadata.name.clone().unwrap_or_default();
    let run_label = children::run_label(&run_name);
    let invalid = validate_spec(run, catalog);
    let image_not_allowed = images_not_allowed(run, catalog);
    let scope = scope_of(run, catalog);

    let pin = |p: &str| run.spec.release.for_processor(p);
    let ctx = ObserveContext {
        pinned: &pin,
        run: &run_name,
        run_label: &run_label,
        date: &spec.date,
        mode: spec.mode,
        now,
    };
    let info = |p: &str| catalog.processor(p).map(|c| (c.phase, c.deadline_seconds));
    let views = observe::view_all(&ctx, observed, &info);

    // Each processor's own situation, with gates and drift judged for the run's mode
    // (`processor_state`, step 1), then in the light of its phase and dependencies (step 2).
    let (own, judged, mut applied) = judge_all(run, catalog, &scope, &views);
    let eval = dependencies::evaluate(catalog, &scope, spec.mode, &spec.overrides, &own, now);
    applied.extend(eval.applied.iter().cloned());
    applied.sort();
    applied.dedup();

    let deadline_passed = spec.deadline_seconds.and_then(|secs| {
        let created = run.metadata.creation_timestamp.as_ref()?.0;
        let at = later(created, SignedDuration::from_secs(secs));
        (now >= at).then_some(at)
    });

    // Two runs for one date never write at once: a run that has not started waits for the
    // older ones to end.
    let waiting_for = (!observed.older_runs_for_date.is_empty()
        && views.values().all(|v| v.attempt() == 0))
    .then(|| {
        observe::waiting_for_older(
            &observed.older_runs_for_date,
            run.metadata.namespace.as_deref().unwrap_or("default"),
        )
    });

    // Children to create. A processor with a rerun due gets the rerun, not a retry.
    let may_start = invalid.is_none()
        && image_not_allowed.is_none()
        && waiting_for.is_none()
        && deadline_passed.is_none()
        && !spec.suspend;
    let reruns_started = reruns::started(run, &views);
    let reruns_invalid = reruns::invalid(run, catalog, &scope);
    let jobs = if may_start {
        let due = reruns::next(run, &views, &reruns_started, &reruns_invalid);
        jobs_to_create(run, catalog, &scope, &views, &eval, &due)
    } else {
        Vec::new()
    };
    let phase_completions =
        phase_completions_to_create(run, catalog, &scope, &views, &jobs, observed);
    let jobs_to_delete = jobs_to_delete(&views, deadline_passed.is_some());

    let derived = Derived {
        run,
        catalog,
        scope: &scope,
        views: &views,
        judged: &judged,
        eval: &eval,
        applied: &applied,
        invalid,
        image_not_allowed,
        waiting_for,
        deadline_passed,
        now,
        reruns_started: &reruns_started,
        reruns_invalid: &reruns_invalid,
    };
    let out = status::build(&derived, observed);

    Plan {
        requeue_after: requeue_after(&derived, &out.run_status),
        jobs,
        jobs_to_delete,
        phase_completions,
        run_status_changed: run.status.as_ref() != Some(&out.run_status),
        run_status: out.run_status,
        phase_completion_statuses: out.phase_completion_statuses,
        events: out.events,
    }
}

/// Step 1 of the processor state machine for every processor in scope: its own state, its
/// judgement (gates, drift) when an attempt succeeded, and the overrides that changed either.
fn judge_all(
    run: &PipelineRun,
    catalog: &Catalog,
    scope: &Scope,
    views: &BTreeMap<String, ProcessorView>,
) -> (
    BTreeMap<String, Own>,
    BTreeMap<String, Judged>,
    Vec<Applied>,
) {
    let mut own = BTreeMap::new();
    let mut judged = BTreeMap::new();
    let mut applied = Vec::new();
    for name in scope.processors() {
        let Some(processor) = catalog.processor(name) else {
            continue;
        };
        let (state, judgement, overridden) =
            processor_state::judge(run, catalog, processor, views.get(name));
        applied.extend(overridden);
        if let Some(judgement) = judgement {
            judged.insert(name.to_owned(), judgement);
        }
        own.insert(name.to_owned(), state);
    }
    (own, judged, applied)
}

/// The Jobs to create: a processor with a rerun due gets the rerun (not a retry); a `Ready`
/// one gets its next attempt.
fn jobs_to_create(
    run: &PipelineRun,
    catalog: &Catalog,
    scope: &Scope,
    views: &BTreeMap<String, ProcessorView>,
    eval: &Evaluation,
    due: &BTreeMap<String, &tipoff_crds::Rerun>,
) -> Vec<JobIntent> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let run_label = children::run_label(run_name);
    let mut jobs = Vec::new();
    for name in scope.processors() {
        let Some(processor) = catalog.processor(name) else {
            continue;
        };
        let attempt = views.get(name).map_or(0, ProcessorView::attempt) + 1;
        if let Some(rerun) = due.get(name) {
            let mut intent = job_intent(run, run_name, &run_label, processor, attempt);
            intent.name = children::rerun_job_name(run_name, processor.phase, name, &rerun.name);
            intent
                .labels
                .insert(children::LABEL_RERUN.to_owned(), rerun.name.clone());
            intent.rerun = Some(rerun.name.clone());
            intent.game.clone_from(&rerun.game);
            jobs.push(intent);
        } else if eval.states.get(name) == Some(&State::Ready) {
            jobs.push(job_intent(run, run_name, &run_label, processor, attempt));
        }
    }
    jobs
}

/// A phase's PhaseCompletion is created when the phase has started (an attempt exists or is
/// about to) and it does not exist yet.
fn phase_completions_to_create(
    run: &PipelineRun,
    catalog: &Catalog,
    scope: &Scope,
    views: &BTreeMap<String, ProcessorView>,
    jobs: &[JobIntent],
    observed: &Observed,
) -> Vec<PhaseCompletionIntent> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let run_label = children::run_label(run_name);
    let mut phase_completions = Vec::new();
    for (number, processors) in &scope.phases {
        let started = processors
            .iter()
            .any(|p| views.get(p).is_some_and(|v| v.attempt() > 0))
            || jobs.iter().any(|j| j.phase == *number);
        let exists = observed
            .phase_completions
            .iter()
            .any(|pc| pc.spec.phase == *number && pc.spec.run == run_name);
        if started && !exists {
            phase_completions.push(phase_completion_intent(
                run, run_name, &run_label, catalog, *number, processors,
            ));
        }
    }
    phase_completions
}

/// Jobs to delete: live attempts past their own deadline, and every live attempt once the
/// run's deadline has passed.
fn jobs_to_delete(
    views: &BTreeMap<String, ProcessorView>,
    run_deadline_passed: bool,
) -> Vec<String> {
    let mut jobs: Vec<String> = views
        .values()
        .filter_map(|v| v.overdue_job.clone())
        .collect();
    if run_deadline_passed {
        jobs.extend(views.values().filter_map(|v| match &v.latest {
            Latest::Live { job, .. } => Some(job.clone()),
            _ => None,
        }));
    }
    jobs.sort();
    jobs.dedup();
    jobs
}

/// `at + by`, saturating at the end of time: spec values are validated by the API server, but
/// the planner must not panic on one that slipped through.
pub fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(Timestamp::MAX)
}

/// The run's phases and processors after its subset is applied.
pub fn scope_of(run: &PipelineRun, catalog: &Catalog) -> Scope {
    let subset = run.spec.subset.as_ref();
    let phases = catalog
        .phases
        .iter()
        .filter(|p| subset.is_none_or(|s| s.phases.is_empty() || s.phases.contains(&p.number)))
        .map(|p| {
            let processors = p
                .processors
                .iter()
                .filter(|c| {
                    subset.is_none_or(|s| s.processors.is_empty() || s.processors.contains(&c.name))
                })
                .map(|c| c.name.clone())
                .collect::<Vec<_>>();
            (p.number, processors)
        })
        .filter(|(_, ps)| !ps.is_empty())
        .collect();
    Scope { phases }
}

/// Why the run's spec names something the catalog does not have, if it does.
fn validate_spec(run: &PipelineRun, catalog: &Catalog) -> Option<String> {
    let spec = &run.spec;
    let mut problems = Vec::new();
    if let Some(subset) = &spec.subset {
        for phase in &subset.phases {
            if catalog.phase(*phase).is_none() {
                problems.push(format!("subset phase {phase} is not in the catalog"));
            }
        }
        for p in &subset.processors {
            if catalog.processor(p).is_none() {
                problems.push(format!("subset processor {p} is not in the catalog"));
            }
        }
    }
    for o in &spec.overrides {
        if let Some(p) = &o.processor {
            match catalog.processor(p) {
                None => problems.push(format!(
                    "override {:?} names unknown processor {p}",
                    o.type_
                )),
                Some(c) => {
                    if let Some(g) = &o.gate
                        && c.gate(g).is_none()
                    {
                        problems.push(format!("RelaxGate names gate {g}, which {p} does not have"));
                    }
                }
            }
        } else if let Some(g) = &o.gate
            && !catalog.gates.contains_key(g)
        {
            problems.push(format!("RelaxGate names unknown gate {g}"));
        }
    }
    for p in &spec.release.processors {
        if catalog.processor(&p.processor).is_none() {
            problems.push(format!("release names unknown processor {}", p.processor));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The run's pinned images that are outside the allowlist, described for the `Blocked`
/// condition; `None` when every image is allowed.
fn images_not_allowed(run: &PipelineRun, catalog: &Catalog) -> Option<String> {
    let release = &run.spec.release;
    let mut bad: Vec<&str> = std::iter::once(release.image.as_str())
        .chain(release.processors.iter().map(|p| p.image.as_str()))
        .filter(|image| !catalog.image_allowed(image))
        .collect();
    bad.dedup();
    (!bad.is_empty()).then(|| {
        format!(
            "{} not from an allowed image repository (the operator allows {}); pin an image from one of them",
            bad.join(", "),
            catalog.allowed_image_repositories.join(", ")
        )
    })
}

fn labels(run_label: &str, date: &str, phase: u8, component: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (children::LABEL_RUN.to_owned(), run_label.to_owned()),
        (children::LABEL_DATE.to_owned(), date.to_owned()),
        (children::LABEL_PHASE.to_owned(), phase.to_string()),
    ]);
    labels.extend(children::standard_labels(run_label, component));
    labels
}

fn job_intent(
    run: &PipelineRun,
    run_name: &str,
    run_label: &str,
    processor: &crate::catalog::Processor,
    attempt: u32,
) -> JobIntent {
    let spec = &run.spec;
    let (image, commit) = run.spec.release.for_processor(&processor.name);
    let mut labels = labels(
        run_label,
        &spec.date,
        processor.phase,
        children::COMPONENT_PROCESSOR,
    );
    labels.insert(children::LABEL_PROCESSOR.to_owned(), processor.name.clone());
    labels.insert(children::LABEL_ATTEMPT.to_owned(), attempt.to_string());
    labels.insert(children::LABEL_COMMIT.to_owned(), commit.to_owned());
    JobIntent {
        name: children::job_name(run_name, processor.phase, &processor.name, attempt),
        phase: processor.phase,
        processor: processor.name.clone(),
        attempt,
        labels,
        image: image.to_owned(),
        commit: commit.to_owned(),
        date: spec.date.clone(),
        mode: spec.mode,
        deadline_seconds: processor.deadline_seconds,
        parallelism: processor.parallelism,
        resources: processor.resources.clone(),
        flags: ProcessorFlags {
            player_source: if spec.mode == Mode::Backfill {
                PlayerSource::WhoPlayed
            } else {
                PlayerSource::Expected
            },
            skip_dependency_check: spec.overrides.iter().any(|o| {
                o.type_ == OverrideType::SkipDependencyCheck && applies(o, &processor.name)
            }),
            disabled_checks: processor
                .gates
                .iter()
                .filter(|g| g.policy.get(spec.mode) == Enforcement::Off)
                .map(|g| g.name.clone())
                .collect(),
        },
        rerun: None,
        game: None,
    }
}

fn phase_completion_intent(
    run: &PipelineRun,
    run_name: &str,
    run_label: &str,
    catalog: &Catalog,
    number: u8,
    processors: &[String],
) -> PhaseCompletionIntent {
    PhaseCompletionIntent {
        name: children::phase_completion_name(run_name, number),
        labels: labels(
            run_label,
            &run.spec.date,
            number,
            children::COMPONENT_PHASE_COMPLETION,
        ),
        spec: PhaseCompletionSpec {
            run: run_name.to_owned(),
            date: run.spec.date.clone(),
            phase: number,
            phase_name: catalog
                .phase(number)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            expected: processors.to_vec(),
        },
    }
}

/// The earliest moment something changes without any object changing: a backoff ends, a
/// Job becomes overdue, a result is declared missing, the run's deadline passes.
fn requeue_after(d: &Derived<'_>, status: &PipelineRunStatus) -> Option<Duration> {
    let terminal = status.state.is_some_and(|s| s.is_terminal());
    let mut times: Vec<Timestamp> = Vec::new();
    if d.waiting_for.is_some() {
        // The older run ending does not touch this run's children, so no watch event wakes it.
        times.push(later(
            d.now,
            SignedDuration::from_secs(WAIT_FOR_OLDER_RUN_SECS),
        ));
    }
    for state in d.eval.states.values() {
        if let State::BackingOff(at) = state {
            times.push(*at);
        }
    }
    for view in d.views.values() {
        match &view.latest {
            Latest::Live { overdue_at, .. } => times.push(*overdue_at),
            Latest::AwaitingResult { until, .. } => times.push(*until),
            _ => {}
        }
    }
    if !terminal
        && d.deadline_passed.is_none()
        && let (Some(secs), Some(created)) = (
            d.run.spec.deadline_seconds,
            d.run.metadata.creation_timestamp.as_ref(),
        )
    {
        times.push(later(created.0, SignedDuration::from_secs(secs)));
    }
    let next = times.into_iter().filter(|t| *t > d.now).min()?;
    let secs = (next - d.now).get_seconds().max(1);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(1)))
}
