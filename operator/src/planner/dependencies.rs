//! Decides, for every processor in the run's scope, whether it is done, running, waiting, or
//! cannot proceed, from its own latest attempt and the states of what it depends on.
//!
//! A processor depends on (1) every earlier phase of the run, which must have succeeded (the
//! phase barrier), and (2) its `dependsOn` entries for the run's mode, which must have
//! succeeded. An audited `SkipDependencyCheck` override relaxes both to "has finished, in
//! any way": the processor still runs after its inputs, but no longer needs them to have
//! succeeded. Dependencies outside the run's subset are taken as satisfied (their data is
//! assumed to exist, which is what re-running one phase means).

use std::collections::BTreeMap;

use jiff::Timestamp;
use tipoff_crds::{Mode, Override, OverrideType, PhaseState};

use crate::catalog::Catalog;

use super::overrides::{Applied, applies};

pub use super::processor_state::{Own, State};

/// The processors and phases a run covers.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// In-scope phase numbers in order, each with its in-scope processors in catalog order.
    pub phases: Vec<(u8, Vec<String>)>,
}

impl Scope {
    /// Whether `processor` is in scope.
    pub fn contains(&self, processor: &str) -> bool {
        self.phases
            .iter()
            .any(|(_, ps)| ps.iter().any(|p| p == processor))
    }

    /// Every in-scope processor.
    pub fn processors(&self) -> impl Iterator<Item = &str> {
        self.phases
            .iter()
            .flat_map(|(_, ps)| ps.iter().map(String::as_str))
    }

    /// The in-scope processors of `phase` (none when the phase is out of scope).
    pub fn processors_of(&self, phase: u8) -> &[String] {
        self.phases
            .iter()
            .find(|(n, _)| *n == phase)
            .map(|(_, ps)| ps.as_slice())
            .unwrap_or(&[])
    }
}

/// The result of [`evaluate`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Every in-scope processor's state.
    pub states: BTreeMap<String, State>,
    /// Every in-scope phase's state, with a reason when it is blocked or failed.
    pub phases: BTreeMap<u8, (PhaseState, Option<String>)>,
    /// Decisions `SkipDependencyCheck` overrides changed.
    pub applied: Vec<Applied>,
}

/// Evaluates every in-scope processor and phase, phase by phase.
pub fn evaluate(
    catalog: &Catalog,
    scope: &Scope,
    mode: Mode,
    overrides: &[Override],
    own: &BTreeMap<String, Own>,
    now: Timestamp,
) -> Evaluation {
    let mut eval = Evaluation::default();
    for (number, processors) in &scope.phases {
        for name in processors {
            resolve(catalog, scope, mode, overrides, own, now, name, &mut eval);
        }
        let state = phase_state(catalog, mode, processors, &eval.states);
        eval.phases.insert(*number, state);
    }
    eval.applied.sort();
    eval.applied.dedup();
    eval
}

#[allow(clippy::too_many_arguments)]
fn resolve(
    catalog: &Catalog,
    scope: &Scope,
    mode: Mode,
    overrides: &[Override],
    own: &BTreeMap<String, Own>,
    now: Timestamp,
    name: &str,
    eval: &mut Evaluation,
) -> State {
    if let Some(state) = eval.states.get(name) {
        return state.clone();
    }
    let Some(processor) = catalog.processor(name) else {
        return State::Pending(format!("{name} is not in the catalog"));
    };
    let skip = overrides
        .iter()
        .position(|o| o.type_ == OverrideType::SkipDependencyCheck && applies(o, name));
    let ran = match own.get(name).cloned().unwrap_or(Own::NeedsAttempt(None)) {
        Own::Accepted => State::Accepted,
        Own::Held(why) => State::Held(why),
        Own::Exhausted(why) => State::Exhausted(why),
        Own::Live => State::Live,
        Own::NeedsAttempt(_) => State::Ready,
    };
    if ran != State::Ready {
        // The processor already has an attempt. If it started only thanks to the override, that
        // stays true after it ran: keep reporting the effect, so the audit trail does not
        // vanish the moment the processor finishes.
        if let Some(index) = skip {
            let skipped =
                skipped_inputs(catalog, scope, mode, overrides, own, now, processor, eval);
            if !skipped.is_empty() {
                eval.applied.push(Applied {
                    index,
                    effect: format!("{name} started although {}", skipped.join("; ")),
                });
            }
        }
        return remember(eval, name, ran);
    }
    let not_before = match own.get(name) {
        Some(Own::NeedsAttempt(at)) => *at,
        _ => None,
    };
    let mut skipped: Vec<String> = Vec::new();

    // (1) The phase barrier: every earlier in-scope phase.
    for (earlier, _) in scope
        .phases
        .iter()
        .take_while(|(n, _)| *n < processor.phase)
    {
        let (state, why) = eval
            .phases
            .get(earlier)
            .cloned()
            .unwrap_or((PhaseState::Pending, None));
        match state {
            PhaseState::Succeeded | PhaseState::Skipped => {}
            PhaseState::Blocked | PhaseState::Failed if skip.is_some() => {
                skipped.push(format!("phase {earlier} did not succeed"));
            }
            PhaseState::Blocked | PhaseState::Failed => {
                let why = why.unwrap_or_else(|| format!("{state:?}").to_lowercase());
                return remember(
                    eval,
                    name,
                    State::Pending(format!("phase {earlier}: {why}")),
                );
            }
            PhaseState::Pending | PhaseState::Running => {
                return remember(
                    eval,
                    name,
                    State::Pending(format!("phase {earlier} has not finished")),
                );
            }
        }
    }

    // (2) Explicit dependencies for the mode.
    let mut waiting: Option<String> = None;
    for dep in processor.dependencies(mode) {
        if !scope.contains(dep) {
            continue;
        }
        let dep_state = resolve(catalog, scope, mode, overrides, own, now, dep, eval);
        match dep_state {
            State::Accepted => {}
            ref s if s.settled() && skip.is_some() => {
                skipped.push(format!("{dep} {}", s.describe()));
            }
            ref s if s.settled() => {
                return remember(
                    eval,
                    name,
                    State::DepBlocked(format!("{dep} {}", s.describe())),
                );
            }
            ref s => {
                waiting.get_or_insert_with(|| format!("{dep} {}", s.describe()));
            }
        }
    }
    if let Some(why) = waiting {
        return remember(eval, name, State::Waiting(why));
    }
    if let (Some(index), false) = (skip, skipped.is_empty()) {
        eval.applied.push(Applied {
            index,
            effect: format!("{name} started although {}", skipped.join("; ")),
        });
    }
    match not_before {
        Some(at) if at > now => remember(eval, name, State::BackingOff(at)),
        _ => remember(eval, name, State::Ready),
    }
}

/// The inputs of `processor` that ended without success: earlier phases that did not succeed
/// and dependencies that settled without being accepted.
#[allow(clippy::too_many_arguments)]
fn skipped_inputs(
    catalog: &Catalog,
    scope: &Scope,
    mode: Mode,
    overrides: &[Override],
    own: &BTreeMap<String, Own>,
    now: Timestamp,
    processor: &crate::catalog::Processor,
    eval: &mut Evaluation,
) -> Vec<String> {
    let mut skipped: Vec<String> = scope
        .phases
        .iter()
        .take_while(|(n, _)| *n < processor.phase)
        .filter(|(n, _)| {
            matches!(
                eval.phases.get(n).map(|(state, _)| *state),
                Some(PhaseState::Blocked | PhaseState::Failed)
            )
        })
        .map(|(n, _)| format!("phase {n} did not succeed"))
        .collect();
    for dep in processor.dependencies(mode) {
        if !scope.contains(dep) {
            continue;
        }
        let dep_state = resolve(catalog, scope, mode, overrides, own, now, dep, eval);
        if dep_state != State::Accepted && dep_state.settled() {
            skipped.push(format!("{dep} {}", dep_state.describe()));
        }
    }
    skipped
}

fn remember(eval: &mut Evaluation, name: &str, state: State) -> State {
    eval.states.insert(name.to_owned(), state.clone());
    state
}

/// A phase's state from its processors' states.
fn phase_state(
    catalog: &Catalog,
    mode: Mode,
    processors: &[String],
    states: &BTreeMap<String, State>,
) -> (PhaseState, Option<String>) {
    let of = |p: &String| {
        states
            .get(p)
            .cloned()
            .unwrap_or(State::Pending(String::new()))
    };
    let required = |p: &String| catalog.processor(p).is_some_and(|c| c.required_in(mode));
    if processors.is_empty() {
        return (PhaseState::Skipped, None);
    }
    if processors
        .iter()
        .all(|p| matches!(of(p), State::Pending(_)))
    {
        return (PhaseState::Pending, None);
    }
    if processors
        .iter()
        .any(|p| of(p).active() || matches!(of(p), State::Waiting(_)))
    {
        return (PhaseState::Running, None);
    }
    let failed: Vec<String> = processors
        .iter()
        .filter(|p| required(p))
        .filter_map(|p| match of(p) {
            State::Exhausted(why) => Some(format!("{p} failed: {why}")),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return (PhaseState::Failed, Some(failed.join("; ")));
    }
    let blocked: Vec<String> = processors
        .iter()
        .filter(|p| required(p))
        .filter(|p| of(p) != State::Accepted)
        .map(|p| format!("{p} {}", of(p).describe()))
        .collect();
    if blocked.is_empty() {
        (PhaseState::Succeeded, None)
    } else {
        (PhaseState::Blocked, Some(blocked.join("; ")))
    }
}
