//! Builds the PipelineRun and PhaseCompletion statuses from what the planner derived, and the
//! Events for what changed since the observed statuses.
//!
//! Every field is a function of the children that exist; only conditions' `lastTransitionTime`
//! is carried over from the observed status (it moves only when a condition's status flips).
//! The Events are derived from the observed and the new status in [`super::transitions`].

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tipoff_crds::conditions::set_condition;
use tipoff_crds::{
    Condition, ConditionStatus, DriftField, DriftFinding, PhaseCompletionStatus, PhaseState,
    PhaseSummary, PipelineRunStatus, RunState, RunSummary, RunningAttempt,
};

use super::dependencies::State;
use super::observe::{Latest, Observed, truncate};
use super::{Derived, PhaseCompletionStatusWrite};

/// Condition types on a PipelineRun.
pub mod conditions {
    /// The run finished successfully (`Unknown` while it has not finished).
    pub const SUCCEEDED: &str = "Succeeded";
    /// The code that ran is not the code the run is pinned to.
    pub const CODE_DRIFT: &str = "CodeDrift";
    /// Every blocking gate passed.
    pub const GATES_PASSED: &str = "GatesPassed";
    /// An attempt was lost: its Job vanished, overran its deadline, or left no result (the
    /// processor is retried; see `Stalled` for a run that cannot go on by itself).
    pub const ATTEMPT_LOST: &str = "AttemptLost";
    /// The run (or phase) reached what its spec asks for: it succeeded.
    pub const READY: &str = tipoff_crds::conditions::READY;
    /// kstatus's `Stalled`: the run cannot make progress without a change (it failed, or it is
    /// blocked by something other than another run for its date).
    pub const STALLED: &str = tipoff_crds::conditions::STALLED;
    /// The run cannot proceed without a change.
    pub const BLOCKED: &str = "Blocked";
    /// An audited override changed a decision.
    pub const OVERRIDES_APPLIED: &str = "OverridesApplied";
    /// On a PhaseCompletion: the phase succeeded.
    pub const COMPLETE: &str = "Complete";
}

pub use super::transitions::{EventIntent, EventReason, EventType};

/// The statuses and Events of one plan.
pub struct Output {
    /// The run's status.
    pub run_status: PipelineRunStatus,
    /// The statuses of the PhaseCompletions that exist.
    pub phase_completion_statuses: Vec<PhaseCompletionStatusWrite>,
    /// Events for transitions.
    pub events: Vec<EventIntent>,
}

const MAX_MESSAGE: usize = 1024;
const MAX_DRIFT: usize = 32;

/// A drift finding in words.
pub fn describe_drift(f: &DriftFinding) -> String {
    let what = match f.field {
        DriftField::Image => "image",
        DriftField::Commit => "commit",
        DriftField::Processor => "processor",
    };
    format!(
        "CodeDrift in {}: {what} pinned {} but observed {}",
        f.processor, f.pinned, f.observed
    )
}

/// Builds every status and the Events, in the order a reader of `kubectl get` meets them:
/// the phases, the run's state, its conditions, its totals; then the Events for what changed
/// ([`super::transitions`]).
pub fn build(d: &Derived<'_>, observed: &Observed) -> Output {
    let old = d.run.status.clone().unwrap_or_default();
    let generation = d.run.metadata.generation;
    let (state, blocked_reason) = run_state(d);
    let progress = Progress::of(d);
    let drift = drift_findings(d);
    let conditions = conditions(d, &old, state, blocked_reason.as_deref(), progress, &drift);
    let totals = Totals::of(d);
    let completion_time = match state {
        RunState::Succeeded => totals.finish,
        RunState::Failed => d.deadline_passed.or(totals.finish),
        _ => None,
    };
    let run_status = PipelineRunStatus {
        observed_generation: generation,
        state: Some(state),
        current_phase: current_phase(d),
        progress: Some(progress.to_string()),
        start_time: totals.start.map(Time),
        completion_time: completion_time.map(Time),
        phases: phase_summaries(d),
        drift,
        conditions,
        summary: Some(RunSummary {
            rows_written: totals.rows_written,
            retries: totals.retries,
            message: Some(clip(&match &blocked_reason {
                Some(why) => format!("{progress} processors succeeded; {why}"),
                None => format!("{progress} processors succeeded"),
            })),
        }),
        reruns: super::reruns::statuses(d.run, d.views, d.reruns_started, d.reruns_invalid),
    };
    let events =
        super::transitions::events(d, observed, &old, &run_status, blocked_reason.as_deref());
    Output {
        run_status,
        phase_completion_statuses: phase_completion_writes(d, observed),
        events,
    }
}

/// Accepted processors out of those in scope.
#[derive(Clone, Copy)]
struct Progress {
    accepted: usize,
    in_scope: usize,
}

impl Progress {
    fn of(d: &Derived<'_>) -> Self {
        Self {
            accepted: d
                .scope
                .processors()
                .filter(|p| d.eval.states.get(*p) == Some(&State::Accepted))
                .count(),
            in_scope: d.scope.processors().count(),
        }
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.accepted, self.in_scope)
    }
}

/// One summary per phase of the catalog (a phase out of the run's subset is `Skipped`).
fn phase_summaries(d: &Derived<'_>) -> Vec<PhaseSummary> {
    d.catalog
        .phases
        .iter()
        .map(|phase| {
            let processors = d.scope.processors_of(phase.number);
            let (state, _) = d
                .eval
                .phases
                .get(&phase.number)
                .cloned()
                .unwrap_or((PhaseState::Skipped, None));
            let done = processors
                .iter()
                .filter(|p| d.eval.states.get(*p) == Some(&State::Accepted))
                .count();
            let (start, finish) = phase_times(d, processors);
            PhaseSummary {
                phase: phase.number,
                name: phase.name.clone(),
                state,
                done: count(done),
                expected: count(processors.len()),
                start_time: start.map(Time),
                completion_time: matches!(state, PhaseState::Succeeded | PhaseState::Failed)
                    .then_some(finish)
                    .flatten()
                    .map(Time),
            }
        })
        .collect()
}

/// The status of each of the run's PhaseCompletions that exists, and whether it changed.
fn phase_completion_writes(
    d: &Derived<'_>,
    observed: &Observed,
) -> Vec<PhaseCompletionStatusWrite> {
    let run_name = d.run.metadata.name.as_deref().unwrap_or_default();
    observed
        .phase_completions
        .iter()
        .filter(|pc| pc.spec.run == run_name)
        .filter_map(|pc| {
            let name = pc.metadata.name.clone()?;
            let status = phase_completion_status(
                d,
                pc.spec.phase,
                pc.metadata.generation,
                pc.status.as_ref(),
            );
            let changed = pc.status.as_ref() != Some(&status);
            Some(PhaseCompletionStatusWrite {
                name,
                status,
                changed,
            })
        })
        .collect()
}

/// Every drift finding of the processors in scope (at most [`MAX_DRIFT`]).
fn drift_findings(d: &Derived<'_>) -> Vec<DriftFinding> {
    let mut drift: Vec<DriftFinding> = d
        .scope
        .processors()
        .filter_map(|p| d.judged.get(p))
        .flat_map(|j| j.drift.iter().cloned())
        .collect();
    drift.truncate(MAX_DRIFT);
    drift
}

/// The run's conditions: the observed ones with each of ours set (a condition's
/// `lastTransitionTime` moves only when its status flips), and `OverridesApplied` only while
/// the spec declares overrides.
fn conditions(
    d: &Derived<'_>,
    old: &PipelineRunStatus,
    state: RunState,
    blocked_reason: Option<&str>,
    progress: Progress,
    drift: &[DriftFinding],
) -> Vec<Condition> {
    let mut conditions = old.conditions.clone();
    let generation = d.run.metadata.generation;
    let mut ours = vec![
        succeeded_condition(d, state, blocked_reason, progress),
        code_drift_condition(d, drift),
        gates_condition(d),
        attempt_lost_condition(d),
        blocked_condition(d, state, blocked_reason),
        ready_condition(d, state, blocked_reason, progress),
        stalled_condition(d, state, blocked_reason),
    ];
    match overrides_condition(d) {
        Some(c) => ours.push(c),
        None => conditions.retain(|c| c.type_ != conditions::OVERRIDES_APPLIED),
    }
    for c in ours {
        set_condition(&mut conditions, with_generation(c, generation));
    }
    conditions
}

fn succeeded_condition(
    d: &Derived<'_>,
    state: RunState,
    blocked_reason: Option<&str>,
    progress: Progress,
) -> Condition {
    let (status, reason, message) = match state {
        RunState::Succeeded => (
            ConditionStatus::True,
            if d.applied.is_empty() {
                "Succeeded"
            } else {
                "SucceededWithOverrides"
            },
            format!("{progress} processors succeeded"),
        ),
        RunState::Failed => (
            ConditionStatus::False,
            if d.deadline_passed.is_some() {
                "DeadlineExceeded"
            } else {
                "ProcessorFailed"
            },
            blocked_reason.unwrap_or_default().to_owned(),
        ),
        other => (
            ConditionStatus::Unknown,
            other.as_str(),
            format!("{progress} processors succeeded"),
        ),
    };
    Condition::new(conditions::SUCCEEDED, status, reason, clip(&message), d.now)
}

fn code_drift_condition(d: &Derived<'_>, drift: &[DriftFinding]) -> Condition {
    let Some(first) = drift.first() else {
        return Condition::new(
            conditions::CODE_DRIFT,
            ConditionStatus::False,
            "NoDrift",
            "",
            d.now,
        );
    };
    let blocks = d.judged.values().any(|j| j.drift_blocks);
    let reason = match first.field {
        DriftField::Image => "ImageMismatch",
        DriftField::Commit => "CommitMismatch",
        DriftField::Processor => "ProcessorMismatch",
    };
    let text: Vec<String> = drift.iter().map(describe_drift).collect();
    let suffix = if blocks {
        " (blocks the next phase)"
    } else {
        " (warning in this mode)"
    };
    Condition::new(
        conditions::CODE_DRIFT,
        ConditionStatus::True,
        reason,
        clip(&format!("{}{suffix}", text.join("; "))),
        d.now,
    )
}

fn gates_condition(d: &Derived<'_>) -> Condition {
    let judged = || d.scope.processors().filter_map(|p| d.judged.get(p));
    let blocking: Vec<&str> = judged()
        .flat_map(|j| j.gates.blocking.iter().map(String::as_str))
        .collect();
    let warnings: Vec<&str> = judged()
        .flat_map(|j| j.gates.warnings.iter().map(String::as_str))
        .collect();
    let (status, reason, message) = if !blocking.is_empty() {
        (
            ConditionStatus::False,
            "BlockingGateFailed",
            blocking.join("; "),
        )
    } else if !warnings.is_empty() {
        (
            ConditionStatus::True,
            "PassedWithWarnings",
            warnings.join("; "),
        )
    } else {
        (ConditionStatus::True, "Passed", String::new())
    };
    Condition::new(
        conditions::GATES_PASSED,
        status,
        reason,
        clip(&message),
        d.now,
    )
}

/// `Ready`: `True` once the run succeeded; otherwise `False` with the run's state as reason.
fn ready_condition(
    d: &Derived<'_>,
    state: RunState,
    blocked_reason: Option<&str>,
    progress: Progress,
) -> Condition {
    let message = match (state, blocked_reason) {
        (RunState::Failed | RunState::Blocked, Some(why)) => {
            format!("{progress} processors succeeded; {why}")
        }
        _ => format!("{progress} processors succeeded"),
    };
    Condition::new(
        conditions::READY,
        tipoff_crds::conditions::status_of(state == RunState::Succeeded),
        state.as_str(),
        clip(&message),
        d.now,
    )
}

/// `Stalled` in kstatus's sense: the run failed, or is blocked by something only a change can
/// lift (a blocking gate, drift, a dependency check, an invalid spec). A run waiting for
/// another run of its date is not stalled: it goes on when that one ends.
fn stalled_condition(d: &Derived<'_>, state: RunState, blocked_reason: Option<&str>) -> Condition {
    let stalled_by = match state {
        RunState::Failed => Some(if d.deadline_passed.is_some() {
            "DeadlineExceeded"
        } else {
            "ProcessorFailed"
        }),
        RunState::Blocked => Some(blocked_category(d)).filter(|c| *c != "ConcurrentRunForDate"),
        _ => None,
    };
    match stalled_by {
        Some(reason) => Condition::new(
            conditions::STALLED,
            ConditionStatus::True,
            reason,
            clip(&format!(
                "{}: {}",
                state.as_str(),
                blocked_reason.unwrap_or("no reason recorded")
            )),
            d.now,
        ),
        None => Condition::new(
            conditions::STALLED,
            ConditionStatus::False,
            state.as_str(),
            "",
            d.now,
        ),
    }
}

/// `AttemptLost`: an unaccepted processor's last attempt was lost (vanished, overran its
/// deadline, left no result); the processor is retried.
fn attempt_lost_condition(d: &Derived<'_>) -> Condition {
    let lost: Vec<String> = d
        .scope
        .processors()
        .filter(|p| d.eval.states.get(*p) != Some(&State::Accepted))
        .filter_map(|p| {
            let f = d.views.get(p)?.last_failure.as_ref()?;
            let reason = f.reason.as_deref()?;
            matches!(reason, "JobVanished" | "DeadlineExceeded" | "MissingResult")
                .then(|| format!("{p} attempt {}: {reason}", f.attempt))
        })
        .collect();
    if lost.is_empty() {
        Condition::new(
            conditions::ATTEMPT_LOST,
            ConditionStatus::False,
            "NoAttemptLost",
            "",
            d.now,
        )
    } else {
        Condition::new(
            conditions::ATTEMPT_LOST,
            ConditionStatus::True,
            "AttemptLost",
            clip(&lost.join("; ")),
            d.now,
        )
    }
}

fn blocked_condition(d: &Derived<'_>, state: RunState, blocked_reason: Option<&str>) -> Condition {
    if state == RunState::Blocked {
        Condition::new(
            conditions::BLOCKED,
            ConditionStatus::True,
            blocked_category(d),
            clip(blocked_reason.unwrap_or_default()),
            d.now,
        )
    } else {
        Condition::new(
            conditions::BLOCKED,
            ConditionStatus::False,
            "NotBlocked",
            "",
            d.now,
        )
    }
}

/// `OverridesApplied`, only when the spec declares overrides.
fn overrides_condition(d: &Derived<'_>) -> Option<Condition> {
    if d.run.spec.overrides.is_empty() {
        return None;
    }
    if d.applied.is_empty() {
        return Some(Condition::new(
            conditions::OVERRIDES_APPLIED,
            ConditionStatus::False,
            "NoEffect",
            "no override has changed a decision",
            d.now,
        ));
    }
    let text: Vec<String> = d
        .applied
        .iter()
        .filter_map(|a| {
            let o = d.run.spec.overrides.get(a.index)?;
            Some(format!(
                "{:?}: {} (reason: {})",
                o.type_, a.effect, o.reason
            ))
        })
        .collect();
    Some(Condition::new(
        conditions::OVERRIDES_APPLIED,
        ConditionStatus::True,
        "OverrideInEffect",
        clip(&text.join("; ")),
        d.now,
    ))
}

/// Rows written, retries, and the first start and last finish over the processors in scope.
struct Totals {
    rows_written: BTreeMap<String, i64>,
    retries: u32,
    start: Option<Timestamp>,
    finish: Option<Timestamp>,
}

impl Totals {
    fn of(d: &Derived<'_>) -> Self {
        let mut t = Totals {
            rows_written: BTreeMap::new(),
            retries: 0,
            start: None,
            finish: None,
        };
        for p in d.scope.processors() {
            let Some(view) = d.views.get(p) else { continue };
            t.retries += view.attempt().saturating_sub(1);
            if let Latest::Succeeded(s) = &view.latest {
                for (table, n) in &s.record.rows {
                    *t.rows_written.entry(table.clone()).or_default() += n;
                }
            }
            let (s, f) = processor_times(view);
            t.start = min_opt(t.start, s);
            t.finish = max_opt(t.finish, f);
        }
        // The CRD bounds the summary at 64 tables.
        while t.rows_written.len() > 64 {
            t.rows_written.pop_last();
        }
        t
    }
}

/// The last phase in scope that has started, else the first.
fn current_phase(d: &Derived<'_>) -> Option<u8> {
    d.scope
        .phases
        .iter()
        .rev()
        .find(|(n, _)| {
            !matches!(
                d.eval.phases.get(n).map(|(s, _)| *s),
                Some(PhaseState::Pending) | None
            )
        })
        .or(d.scope.phases.first())
        .map(|(n, _)| *n)
}

/// The run's state, with the reason when it is blocked or failed.
fn run_state(d: &Derived<'_>) -> (RunState, Option<String>) {
    if let Some(why) = &d.invalid {
        return (
            RunState::Blocked,
            Some(format!("the spec does not match the catalog: {why}")),
        );
    }
    if let Some(why) = &d.image_not_allowed {
        return (RunState::Blocked, Some(format!("never run: {why}")));
    }
    if let Some(older) = &d.waiting_for {
        return (
            RunState::Blocked,
            Some(format!(
                "another run for {} is unfinished: {older}",
                d.run.spec.date
            )),
        );
    }
    if d.scope.phases.is_empty() {
        return (
            RunState::Blocked,
            Some("nothing to run: the catalog has no processors in this run's scope".to_owned()),
        );
    }
    let phase = |n: &u8| {
        d.eval
            .phases
            .get(n)
            .cloned()
            .unwrap_or((PhaseState::Pending, None))
    };
    let all_succeeded = d
        .scope
        .phases
        .iter()
        .all(|(n, _)| phase(n).0 == PhaseState::Succeeded);
    if all_succeeded {
        return (RunState::Succeeded, None);
    }
    if d.deadline_passed.is_some() {
        return (
            RunState::Failed,
            Some("the run's deadline passed before it finished".to_owned()),
        );
    }
    let states = || d.scope.processors().filter_map(|p| d.eval.states.get(p));
    let live = states().any(|s| *s == State::Live);
    let progressing = states().any(|s| s.active() || matches!(s, State::Waiting(_)));
    if live {
        return (RunState::Running, None);
    }
    if progressing {
        if d.run.spec.suspend {
            return (RunState::Suspended, None);
        }
        let ever_started = d.views.values().any(|v| v.attempt() > 0);
        return (
            if ever_started {
                RunState::Running
            } else {
                RunState::Pending
            },
            None,
        );
    }
    // Nothing can happen without a change.
    if let Some((_, last)) = d.scope.phases.last()
        && !last.is_empty()
        && d.scope
            .phases
            .last()
            .is_some_and(|(n, _)| phase(n).0 == PhaseState::Succeeded)
    {
        return (RunState::Succeeded, None);
    }
    let first_bad = d
        .scope
        .phases
        .iter()
        .map(|(n, _)| (*n, phase(n)))
        .find(|(_, (s, _))| matches!(s, PhaseState::Failed | PhaseState::Blocked));
    match first_bad {
        Some((n, (PhaseState::Failed, why))) => (
            RunState::Failed,
            Some(format!("phase {n} failed: {}", why.unwrap_or_default())),
        ),
        Some((n, (_, why))) => (
            RunState::Blocked,
            Some(format!("phase {n} is blocked: {}", why.unwrap_or_default())),
        ),
        None => (
            RunState::Blocked,
            Some("no processor can make progress".to_owned()),
        ),
    }
}

/// The `Blocked` condition's reason category.
fn blocked_category(d: &Derived<'_>) -> &'static str {
    if d.invalid.is_some() {
        return "InvalidSpec";
    }
    if d.image_not_allowed.is_some() {
        return "ImageNotAllowed";
    }
    if d.waiting_for.is_some() {
        return "ConcurrentRunForDate";
    }
    if d.scope.phases.is_empty() {
        return "NothingToRun";
    }
    let held_by_drift = d.judged.values().any(|j| j.drift_blocks);
    let held_by_gate = d.judged.values().any(|j| !j.gates.blocking.is_empty());
    let dep_blocked = d
        .eval
        .states
        .values()
        .any(|s| matches!(s, State::DepBlocked(_)));
    if held_by_drift {
        "CodeDrift"
    } else if held_by_gate {
        "GateFailed"
    } else if dep_blocked {
        "DependencyFailed"
    } else {
        "NoProgress"
    }
}

fn phase_completion_status(
    d: &Derived<'_>,
    number: u8,
    generation: Option<i64>,
    old: Option<&PhaseCompletionStatus>,
) -> PhaseCompletionStatus {
    let processors = d.scope.processors_of(number);
    let (state, why) = d
        .eval
        .phases
        .get(&number)
        .cloned()
        .unwrap_or((PhaseState::Skipped, None));
    let mut completed = Vec::new();
    let mut failed = Vec::new();
    let mut running = Vec::new();
    for p in processors {
        let Some(view) = d.views.get(p) else { continue };
        match &view.latest {
            Latest::Succeeded(s) => {
                let mut record = s.record.clone();
                record.gates = d
                    .judged
                    .get(p)
                    .map(|j| j.gates.outcomes.clone())
                    .unwrap_or_default();
                completed.push(record);
            }
            Latest::Live {
                attempt,
                job,
                started,
                rerun,
                ..
            } => running.push(RunningAttempt {
                processor: p.clone(),
                attempt: *attempt,
                job: job.clone(),
                start_time: started.map(Time),
                rerun: rerun.clone(),
            }),
            Latest::AwaitingResult {
                attempt,
                job,
                rerun,
                ..
            } => running.push(RunningAttempt {
                processor: p.clone(),
                attempt: *attempt,
                job: job.clone(),
                start_time: None,
                rerun: rerun.clone(),
            }),
            Latest::Failed(_) | Latest::NotStarted => {}
        }
        if !matches!(view.latest, Latest::Succeeded(_))
            && let Some(f) = &view.last_failure
        {
            failed.push(f.clone());
        }
    }
    let done = processors
        .iter()
        .filter(|p| d.eval.states.get(*p) == Some(&State::Accepted))
        .count();
    // The next in-scope phase was triggered once any of its attempts was observed.
    let next_phase_triggered = d
        .scope
        .phases
        .iter()
        .find(|(n, _)| *n > number)
        .is_some_and(|(_, ps)| {
            ps.iter()
                .any(|p| d.views.get(p).is_some_and(|v| v.attempt() > 0))
        });

    let mut conditions = old.map(|o| o.conditions.clone()).unwrap_or_default();
    let (status, reason) = match state {
        PhaseState::Succeeded => (ConditionStatus::True, "Succeeded"),
        PhaseState::Failed => (ConditionStatus::False, "Failed"),
        PhaseState::Blocked => (ConditionStatus::False, "Blocked"),
        _ => (ConditionStatus::Unknown, "InProgress"),
    };
    set_condition(
        &mut conditions,
        Condition::new(
            conditions::COMPLETE,
            status,
            reason,
            clip(why.as_deref().unwrap_or_default()),
            d.now,
        ),
    );
    // `Ready` and kstatus's `Stalled`, stamped with the generation they were computed from so
    // a reader can tell a stale status (the spec is immutable: the generation stays 1).
    let progress = format!("{done}/{} processors succeeded", processors.len());
    let stalled = matches!(state, PhaseState::Failed | PhaseState::Blocked);
    for mut c in [
        Condition::new(
            conditions::READY,
            tipoff_crds::conditions::status_of(state == PhaseState::Succeeded),
            state.as_str(),
            clip(&match (&why, stalled) {
                (Some(why), true) => format!("{progress}; {why}"),
                _ => progress.clone(),
            }),
            d.now,
        ),
        Condition::new(
            conditions::STALLED,
            tipoff_crds::conditions::status_of(stalled),
            state.as_str(),
            if stalled {
                clip(&format!(
                    "phase {number} is {}: {}",
                    state.as_str(),
                    why.as_deref().unwrap_or("no reason recorded")
                ))
            } else {
                String::new()
            },
            d.now,
        ),
    ] {
        c.observed_generation = generation;
        set_condition(&mut conditions, c);
    }
    let blocking: Vec<String> = processors
        .iter()
        .filter_map(|p| d.judged.get(p))
        .flat_map(|j| j.gates.blocking.iter().cloned())
        .collect();
    set_condition(
        &mut conditions,
        if blocking.is_empty() {
            Condition::new(
                conditions::GATES_PASSED,
                ConditionStatus::True,
                "Passed",
                "",
                d.now,
            )
        } else {
            Condition::new(
                conditions::GATES_PASSED,
                ConditionStatus::False,
                "BlockingGateFailed",
                clip(&blocking.join("; ")),
                d.now,
            )
        },
    );
    PhaseCompletionStatus {
        state: Some(state),
        done: count(done),
        expected: count(processors.len()),
        progress: Some(format!("{done}/{}", processors.len())),
        completed,
        failed,
        running,
        next_phase_triggered,
        conditions,
    }
}

fn processor_times(view: &super::observe::ProcessorView) -> (Option<Timestamp>, Option<Timestamp>) {
    let first_start = view
        .last_failure
        .as_ref()
        .and_then(|f| f.start_time.as_ref().map(|t| t.0));
    match &view.latest {
        Latest::NotStarted => (None, None),
        Latest::Live { started, .. } => (min_opt(first_start, *started), None),
        Latest::AwaitingResult { .. } => (first_start, None),
        Latest::Succeeded(s) => (
            min_opt(first_start, s.record.start_time.as_ref().map(|t| t.0)),
            s.record.finish_time.as_ref().map(|t| t.0),
        ),
        Latest::Failed(r) => (
            min_opt(first_start, r.start_time.as_ref().map(|t| t.0)),
            r.finish_time.as_ref().map(|t| t.0),
        ),
    }
}

fn phase_times(d: &Derived<'_>, processors: &[String]) -> (Option<Timestamp>, Option<Timestamp>) {
    let mut start = None;
    let mut finish = None;
    for p in processors {
        if let Some(view) = d.views.get(p) {
            let (s, f) = processor_times(view);
            start = min_opt(start, s);
            finish = max_opt(finish, f);
        }
    }
    (start, finish)
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn with_generation(mut c: Condition, generation: Option<i64>) -> Condition {
    c.observed_generation = generation;
    c
}

pub(super) fn clip(text: &str) -> String {
    truncate(text, MAX_MESSAGE).to_owned()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
