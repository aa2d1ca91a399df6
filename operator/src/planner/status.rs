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
    /// An attempt was lost: its Job vanished, overran its deadline, or left no result.
    pub const STALLED: &str = "Stalled";
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

/// Builds every status and the Events.
pub fn build(d: &Derived<'_>, observed: &Observed) -> Output {
    let old = d.run.status.clone().unwrap_or_default();
    let generation = d.run.metadata.generation;

    // Per-phase summaries and PhaseCompletion statuses.
    let mut summaries: Vec<PhaseSummary> = Vec::new();
    let mut pc_statuses: Vec<PhaseCompletionStatusWrite> = Vec::new();
    for phase in &d.catalog.phases {
        let processors: &[String] = d
            .scope
            .phases
            .iter()
            .find(|(n, _)| *n == phase.number)
            .map(|(_, ps)| ps.as_slice())
            .unwrap_or(&[]);
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
        summaries.push(PhaseSummary {
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
        });
    }
    let run_name = d.run.metadata.name.clone().unwrap_or_default();
    for pc in &observed.phase_completions {
        if pc.spec.run != run_name {
            continue;
        }
        let Some(name) = pc.metadata.name.clone() else {
            continue;
        };
        let status = phase_completion_status(d, pc.spec.phase, pc.status.as_ref());
        let changed = pc.status.as_ref() != Some(&status);
        pc_statuses.push(PhaseCompletionStatusWrite {
            name,
            status,
            changed,
        });
    }

    // The run's state and why.
    let (state, blocked_reason) = run_state(d);
    let in_scope = d.scope.processors().count();
    let accepted = d
        .scope
        .processors()
        .filter(|p| d.eval.states.get(*p) == Some(&State::Accepted))
        .count();
    let mut drift: Vec<DriftFinding> = d
        .scope
        .processors()
        .filter_map(|p| d.judged.get(p))
        .flat_map(|j| j.drift.iter().cloned())
        .collect();
    drift.truncate(MAX_DRIFT);

    let mut conditions = old.conditions.clone();
    let mut set = |c: Condition| set_condition(&mut conditions, with_generation(c, generation));
    let now = d.now;

    // Succeeded.
    let (status, reason, message) = match state {
        RunState::Succeeded => (
            ConditionStatus::True,
            if d.applied.is_empty() {
                "Succeeded"
            } else {
                "SucceededWithOverrides"
            },
            format!("{accepted}/{in_scope} processors succeeded"),
        ),
        RunState::Failed => (
            ConditionStatus::False,
            if d.deadline_passed.is_some() {
                "DeadlineExceeded"
            } else {
                "ProcessorFailed"
            },
            blocked_reason.clone().unwrap_or_default(),
        ),
        other => (
            ConditionStatus::Unknown,
            other.as_str(),
            format!("{accepted}/{in_scope} processors succeeded"),
        ),
    };
    set(Condition::new(
        conditions::SUCCEEDED,
        status,
        reason,
        clip(&message),
        now,
    ));

    // CodeDrift.
    if let Some(first) = drift.first() {
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
        set(Condition::new(
            conditions::CODE_DRIFT,
            ConditionStatus::True,
            reason,
            clip(&format!("{}{suffix}", text.join("; "))),
            now,
        ));
    } else {
        set(Condition::new(
            conditions::CODE_DRIFT,
            ConditionStatus::False,
            "NoDrift",
            "",
            now,
        ));
    }

    // GatesPassed.
    let blocking: Vec<String> = d
        .scope
        .processors()
        .filter_map(|p| d.judged.get(p))
        .flat_map(|j| j.gates.blocking.iter().cloned())
        .collect();
    let warnings: Vec<String> = d
        .scope
        .processors()
        .filter_map(|p| d.judged.get(p))
        .flat_map(|j| j.gates.warnings.iter().cloned())
        .collect();
    if blocking.is_empty() {
        let (reason, msg) = if warnings.is_empty() {
            ("Passed", String::new())
        } else {
            ("PassedWithWarnings", warnings.join("; "))
        };
        set(Condition::new(
            conditions::GATES_PASSED,
            ConditionStatus::True,
            reason,
            clip(&msg),
            now,
        ));
    } else {
        set(Condition::new(
            conditions::GATES_PASSED,
            ConditionStatus::False,
            "BlockingGateFailed",
            clip(&blocking.join("; ")),
            now,
        ));
    }

    // Stalled.
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
        set(Condition::new(
            conditions::STALLED,
            ConditionStatus::False,
            "Progressing",
            "",
            now,
        ));
    } else {
        set(Condition::new(
            conditions::STALLED,
            ConditionStatus::True,
            "AttemptLost",
            clip(&lost.join("; ")),
            now,
        ));
    }

    // Blocked.
    if state == RunState::Blocked {
        let reason = blocked_category(d);
        set(Condition::new(
            conditions::BLOCKED,
            ConditionStatus::True,
            reason,
            clip(blocked_reason.as_deref().unwrap_or_default()),
            now,
        ));
    } else {
        set(Condition::new(
            conditions::BLOCKED,
            ConditionStatus::False,
            "NotBlocked",
            "",
            now,
        ));
    }

    // OverridesApplied (only when the spec declares overrides).
    if !d.run.spec.overrides.is_empty() {
        if d.applied.is_empty() {
            set(Condition::new(
                conditions::OVERRIDES_APPLIED,
                ConditionStatus::False,
                "NoEffect",
                "no override has changed a decision",
                now,
            ));
        } else {
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
            set(Condition::new(
                conditions::OVERRIDES_APPLIED,
                ConditionStatus::True,
                "OverrideInEffect",
                clip(&text.join("; ")),
                now,
            ));
        }
    } else {
        conditions.retain(|c| c.type_ != conditions::OVERRIDES_APPLIED);
    }

    let mut rows_written: BTreeMap<String, i64> = BTreeMap::new();
    let mut retries = 0u32;
    let mut start: Option<Timestamp> = None;
    let mut finish: Option<Timestamp> = None;
    for p in d.scope.processors() {
        let Some(view) = d.views.get(p) else { continue };
        retries += view.attempt().saturating_sub(1);
        if let Latest::Succeeded(s) = &view.latest {
            for (table, n) in &s.record.rows {
                *rows_written.entry(table.clone()).or_default() += n;
            }
        }
        let (s, f) = processor_times(view);
        start = min_opt(start, s);
        finish = max_opt(finish, f);
    }
    // The CRD bounds the summary at 64 tables.
    while rows_written.len() > 64 {
        rows_written.pop_last();
    }
    let completion_time = match state {
        RunState::Succeeded => finish,
        RunState::Failed => d.deadline_passed.or(finish),
        _ => None,
    };
    let current_phase = d
        .scope
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
        .map(|(n, _)| *n);

    let mut run_status = PipelineRunStatus {
        observed_generation: generation,
        state: Some(state),
        current_phase,
        progress: Some(format!("{accepted}/{in_scope}")),
        start_time: start.map(Time),
        completion_time: completion_time.map(Time),
        phases: summaries,
        drift,
        conditions,
        summary: Some(RunSummary {
            rows_written,
            retries,
            message: Some(clip(&match &blocked_reason {
                Some(why) => format!("{accepted}/{in_scope} processors succeeded; {why}"),
                None => format!("{accepted}/{in_scope} processors succeeded"),
            })),
        }),
        reruns: Vec::new(),
    };
    run_status.reruns = super::reruns::statuses(d.run, d.views, d.reruns_started, d.reruns_invalid);
    let events =
        super::transitions::events(d, observed, &old, &run_status, blocked_reason.as_deref());
    Output {
        run_status,
        phase_completion_statuses: pc_statuses,
        events,
    }
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
    old: Option<&PhaseCompletionStatus>,
) -> PhaseCompletionStatus {
    let processors: &[String] = d
        .scope
        .phases
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, ps)| ps.as_slice())
        .unwrap_or(&[]);
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
