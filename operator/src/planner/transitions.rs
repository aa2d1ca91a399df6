//! The Events of a plan, all derived here by comparing the observed run status with the one
//! the planner just built (plus, for failed attempts, the observed ledger): Events are emitted
//! for transitions only.
//!
//! - a condition flipping to a notable status: `CodeDrift` (found, or resolved after it was
//!   found), `GateFailed` (GatesPassed became False), `AttemptLost`, `OverrideApplied`;
//! - the run's and its phases' state changes, as one Event per reconcile: a phase that ends and
//!   the next that starts are one step ("phase 1 is Succeeded; phase 2 is Running"), and the
//!   first phase starting or the last ending is part of the run's own transition. A run with P
//!   phases gets P + 1 of these, not 2P + 2;
//! - each failed attempt the ledger has not recorded yet (`AttemptFailed`);
//! - a rerun leaving `Pending` (`RerunStarted`, or `RerunRejected` if it can never run).

use tipoff_crds::conditions::find_condition;
use tipoff_crds::{
    Condition, ConditionStatus, PhaseState, PipelineRunSpec, PipelineRunStatus, RerunState,
    RunState,
};

use super::Derived;
use super::observe::Observed;
use super::status::{clip, conditions};

/// Whether an Event reports something normal or something to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Progress.
    Normal,
    /// Needs attention.
    Warning,
}

/// The fixed reason of an Event (also a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventReason {
    /// The run's state changed.
    RunStateChanged,
    /// A phase's state changed.
    PhaseStateChanged,
    /// A processor attempt failed.
    AttemptFailed,
    /// Code drift was found (or cleared).
    CodeDrift,
    /// A blocking gate failed.
    GateFailed,
    /// An attempt was lost (the `AttemptLost` condition became true).
    AttemptLost,
    /// An audited override changed a decision.
    OverrideApplied,
    /// A rerun of `spec.reruns` started.
    RerunStarted,
    /// A rerun of `spec.reruns` names a processor the run cannot run.
    RerunRejected,
}

impl EventReason {
    /// The CamelCase string used as the Event's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::RunStateChanged => "RunStateChanged",
            EventReason::PhaseStateChanged => "PhaseStateChanged",
            EventReason::AttemptFailed => "AttemptFailed",
            EventReason::CodeDrift => "CodeDrift",
            EventReason::GateFailed => "GateFailed",
            EventReason::AttemptLost => "AttemptLost",
            EventReason::OverrideApplied => "OverrideApplied",
            EventReason::RerunStarted => "RerunStarted",
            EventReason::RerunRejected => "RerunRejected",
        }
    }
}

/// An Event to emit on the PipelineRun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventIntent {
    /// Normal or Warning.
    pub type_: EventType,
    /// The fixed reason category.
    pub reason: EventReason,
    /// What happened, for people.
    pub message: String,
}

impl EventIntent {
    fn new(type_: EventType, reason: EventReason, message: String) -> Self {
        Self {
            type_,
            reason,
            message,
        }
    }
}

/// Every Event of going from the observed run status `old` to `new`: condition flips, then
/// the run's and phases' transition, then failed attempts the observed ledger lacks, then
/// reruns that left `Pending`. `blocked_reason` is why the new state is Blocked or Failed.
pub fn events(
    d: &Derived<'_>,
    observed: &Observed,
    old: &PipelineRunStatus,
    new: &PipelineRunStatus,
    blocked_reason: Option<&str>,
) -> Vec<EventIntent> {
    let mut out = condition_events(old, new);
    out.extend(state_event(old, new, blocked_reason));
    out.extend(attempt_events(d, observed));
    out.extend(rerun_events(old, new, &d.run.spec));
    out
}

fn status_of(conds: &[Condition], type_: &str) -> Option<ConditionStatus> {
    find_condition(conds, type_).map(|c| c.status)
}

fn message_of(conds: &[Condition], type_: &str) -> String {
    find_condition(conds, type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// `type_` is `to` now and was not before (absent counts as not).
fn flipped_to(
    old: &PipelineRunStatus,
    new: &PipelineRunStatus,
    type_: &str,
    to: ConditionStatus,
) -> bool {
    status_of(&new.conditions, type_) == Some(to) && status_of(&old.conditions, type_) != Some(to)
}

fn condition_events(old: &PipelineRunStatus, new: &PipelineRunStatus) -> Vec<EventIntent> {
    use ConditionStatus::{False, True};
    let mut out = Vec::new();
    // A run that never drifted gets no "no drift" Event; one whose drift went away does.
    let drift_was = status_of(&old.conditions, conditions::CODE_DRIFT);
    let drift_is = status_of(&new.conditions, conditions::CODE_DRIFT);
    if drift_was != drift_is && (drift_was == Some(True) || drift_is == Some(True)) {
        out.push(if drift_is == Some(True) {
            EventIntent::new(
                EventType::Warning,
                EventReason::CodeDrift,
                message_of(&new.conditions, conditions::CODE_DRIFT),
            )
        } else {
            EventIntent::new(
                EventType::Normal,
                EventReason::CodeDrift,
                "code drift resolved: the code that ran matches the pinned release".to_owned(),
            )
        });
    }
    for (type_, to, reason) in [
        (conditions::GATES_PASSED, False, EventReason::GateFailed),
        (conditions::ATTEMPT_LOST, True, EventReason::AttemptLost),
        (
            conditions::OVERRIDES_APPLIED,
            True,
            EventReason::OverrideApplied,
        ),
    ] {
        if flipped_to(old, new, type_, to) {
            out.push(EventIntent::new(
                EventType::Warning,
                reason,
                message_of(&new.conditions, type_),
            ));
        }
    }
    out
}

/// The run's and its phases' transitions of this reconcile, as one Event.
fn state_event(
    old: &PipelineRunStatus,
    new: &PipelineRunStatus,
    blocked_reason: Option<&str>,
) -> Option<EventIntent> {
    let mut phase_warning = false;
    let mut phases: Vec<String> = Vec::new();
    for summary in &new.phases {
        let was = old
            .phases
            .iter()
            .find(|p| p.phase == summary.phase)
            .map(|p| p.state);
        let is = summary.state;
        let appeared_quietly =
            was.is_none() && matches!(is, PhaseState::Pending | PhaseState::Skipped);
        if was.unwrap_or(PhaseState::Pending) == is || appeared_quietly {
            continue;
        }
        phase_warning |= matches!(is, PhaseState::Failed | PhaseState::Blocked);
        phases.push(format!(
            "phase {} ({}) is {is:?}: {}/{} processors succeeded",
            summary.phase, summary.name, summary.done, summary.expected
        ));
    }
    let phases = phases.join("; ");
    let warning_if = |warn: bool| {
        if warn {
            EventType::Warning
        } else {
            EventType::Normal
        }
    };
    let state = new.state?;
    if old.state != Some(state) {
        let progress = new.progress.as_deref().unwrap_or_default();
        let run = match blocked_reason {
            Some(why) => format!("run is {}: {why}", state.as_str()),
            None => format!("run is {}: {progress} processors succeeded", state.as_str()),
        };
        Some(EventIntent::new(
            warning_if(matches!(state, RunState::Failed | RunState::Blocked) || phase_warning),
            EventReason::RunStateChanged,
            clip(&if phases.is_empty() {
                run
            } else {
                format!("{run}; {phases}")
            }),
        ))
    } else if !phases.is_empty() {
        Some(EventIntent::new(
            warning_if(phase_warning),
            EventReason::PhaseStateChanged,
            clip(&phases),
        ))
    } else {
        None
    }
}

/// One Event per failed attempt not yet recorded in the observed PhaseCompletions.
fn attempt_events(d: &Derived<'_>, observed: &Observed) -> Vec<EventIntent> {
    let mut events = Vec::new();
    for p in d.scope.processors() {
        let Some(f) = d.views.get(p).and_then(|v| v.last_failure.as_ref()) else {
            continue;
        };
        let known = observed
            .phase_completions
            .iter()
            .filter(|pc| Some(&pc.spec.run) == d.run.metadata.name.as_ref())
            .filter_map(|pc| pc.status.as_ref())
            .any(|s| {
                s.failed
                    .iter()
                    .any(|r| r.processor == p && r.attempt == f.attempt)
            });
        if !known {
            events.push(EventIntent::new(
                EventType::Warning,
                EventReason::AttemptFailed,
                clip(&format!(
                    "{p} attempt {} failed ({}): {}",
                    f.attempt,
                    f.reason.as_deref().unwrap_or("Failed"),
                    f.message.as_deref().unwrap_or_default()
                )),
            ));
        }
    }
    events
}

/// Reruns that left `Pending` since the observed status.
fn rerun_events(
    old: &PipelineRunStatus,
    new: &PipelineRunStatus,
    spec: &PipelineRunSpec,
) -> Vec<EventIntent> {
    let mut events = Vec::new();
    for r in &new.reruns {
        let was_pending = old
            .reruns
            .iter()
            .find(|o| o.name == r.name)
            .is_none_or(|o| o.state == RerunState::Pending);
        if !was_pending || r.state == RerunState::Pending {
            continue;
        }
        let game = r
            .game
            .as_ref()
            .map(|g| format!(" for game {g}"))
            .unwrap_or_default();
        let reason = spec
            .reruns
            .iter()
            .find(|s| s.name == r.name)
            .map(|s| s.reason.as_str())
            .unwrap_or_default();
        match r.attempt {
            Some(attempt) => events.push(EventIntent::new(
                EventType::Normal,
                EventReason::RerunStarted,
                clip(&format!(
                    "rerun {} of {}{game} started as attempt {attempt}: {reason}",
                    r.name, r.processor
                )),
            )),
            // Never started: it names a processor the run cannot run.
            None if r.state == RerunState::Failed => events.push(EventIntent::new(
                EventType::Warning,
                EventReason::RerunRejected,
                clip(&format!(
                    "rerun {} cannot run: {}",
                    r.name,
                    r.message.as_deref().unwrap_or_default()
                )),
            )),
            None => {}
        }
    }
    events
}
