//! The state machine of one processor in a run: the `State of a processor` diagram in
//! `docs/architecture.md`, one variant per box.
//!
//! A processor's state is derived in two steps, both pure:
//! 1. [`judge`] reads its own latest attempt ([`Latest`]) into [`Own`]: what it is regardless of
//!    anything else, with the gates and drift of a successful attempt judged for the run's
//!    mode (overrides `RelaxGate` and `AcceptDrift` applied).
//! 2. `dependencies::evaluate` turns [`Own`] into [`State`] by looking at its phase and its
//!    `dependsOn` entries (overrides `SkipDependencyCheck` applied).
//!
//! | Diagram | [`State`] | From [`Own`] |
//! |---|---|---|
//! | `Pending` | [`State::Pending`] | any, while an earlier phase has not succeeded |
//! | `Waiting` | [`State::Waiting`] | `NeedsAttempt`, a dependency still in progress |
//! | `DepBlocked` | [`State::DepBlocked`] | `NeedsAttempt`, a dependency ended without being accepted |
//! | `Ready` | [`State::Ready`] | `NeedsAttempt(None)` or its time passed, dependencies accepted |
//! | `BackingOff` | [`State::BackingOff`] | `NeedsAttempt(Some(at))` before `at` ([`retry`]) |
//! | `Live` | [`State::Live`] | `Live`: its Job runs, or its result is awaited |
//! | `Accepted` | [`State::Accepted`] | `Accepted`: succeeded, gates passed, no blocking drift |
//! | `Held` | [`State::Held`] | `Held`: succeeded, a blocking gate failed or drift blocks |
//! | `Exhausted` | [`State::Exhausted`] | `Exhausted`: permanent exit, last attempt failed, or a failed rerun |

use jiff::Timestamp;
use tipoff_crds::{OverrideType, PipelineRun};

use crate::catalog::{Catalog, Enforcement, Processor};

use super::observe::{Latest, ProcessorView};
use super::overrides::{Applied, applies};
use super::{Judged, drift, gates, retry, status};

/// A processor's own situation, before its dependencies are considered.
#[derive(Clone, Debug, PartialEq)]
pub enum Own {
    /// It succeeded and its blocking gates passed and drift does not block.
    Accepted,
    /// It succeeded but a blocking gate failed or drift blocks: the message says which.
    Held(String),
    /// It failed and will not be retried: the message says why.
    Exhausted(String),
    /// Its Job is live (or its result is awaited).
    Live,
    /// It needs an attempt, not before the given time (`None`: now).
    NeedsAttempt(Option<Timestamp>),
}

/// A processor's state in the run.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Succeeded; gates passed; drift does not block.
    Accepted,
    /// Succeeded but held by a blocking gate or by drift.
    Held(String),
    /// Failed with no attempt left.
    Exhausted(String),
    /// A Job is live.
    Live,
    /// Waiting for its retry backoff to pass.
    BackingOff(Timestamp),
    /// Its next attempt should be created now.
    Ready,
    /// Waiting for a dependency that is still in progress.
    Waiting(String),
    /// A dependency finished without succeeding; needs an override or a rerun.
    DepBlocked(String),
    /// Its phase has not been reached.
    Pending(String),
}

impl State {
    /// Finished, in whatever way: nothing more will happen without a change.
    pub fn settled(&self) -> bool {
        matches!(
            self,
            State::Accepted | State::Held(_) | State::Exhausted(_) | State::DepBlocked(_)
        )
    }

    /// Something is happening or about to happen.
    pub fn active(&self) -> bool {
        matches!(self, State::Live | State::BackingOff(_) | State::Ready)
    }

    /// The short word used in messages.
    pub fn describe(&self) -> String {
        match self {
            State::Accepted => "succeeded".into(),
            State::Held(why) => format!("is held ({why})"),
            State::Exhausted(why) => format!("failed ({why})"),
            State::Live => "is running".into(),
            State::BackingOff(_) => "is waiting to retry".into(),
            State::Ready => "is starting".into(),
            State::Waiting(why) => format!("is waiting ({why})"),
            State::DepBlocked(why) => format!("cannot start ({why})"),
            State::Pending(why) => format!("is pending ({why})"),
        }
    }
}

/// Step 1: what `processor`'s own latest attempt (`view`; `None` if it never ran) makes it,
/// the judgement of a successful attempt's gates and drift, and the overrides that changed it.
pub fn judge(
    run: &PipelineRun,
    catalog: &Catalog,
    processor: &Processor,
    view: Option<&ProcessorView>,
) -> (Own, Option<Judged>, Vec<Applied>) {
    let Some(view) = view else {
        return (Own::NeedsAttempt(None), None, Vec::new());
    };
    let spec = &run.spec;
    let name = processor.name.as_str();
    let mut applied = Vec::new();
    let mut judgement = None;
    let state = match &view.latest {
        Latest::NotStarted => Own::NeedsAttempt(None),
        Latest::Live { .. } | Latest::AwaitingResult { .. } => Own::Live,
        Latest::Failed(record) => {
            if let Some(rerun) = &record.rerun {
                // A rerun is one explicit attempt: a person adds another to try again.
                Own::Exhausted(format!(
                    "rerun {rerun} (attempt {}) failed ({}); reruns are not retried",
                    record.attempt,
                    record.reason.as_deref().unwrap_or("Failed")
                ))
            } else {
                let policy = retry::effective(processor.retry, spec.retry.as_ref());
                match retry::after_failure(policy, record) {
                    retry::Next::RetryAt(at) => Own::NeedsAttempt(Some(at)),
                    retry::Next::GiveUp(why) => Own::Exhausted(why),
                }
            }
        }
        Latest::Succeeded(success) => {
            let verdict = gates::judge(processor, spec.mode, &spec.overrides, &success.checks);
            let (image, commit) = run.spec.release.for_processor(name);
            let pin = drift::Pinned {
                processor: name,
                image,
                commit,
            };
            let findings = drift::findings(&pin, success.record.attempt, &success.evidence);
            let mut enforcement = catalog.drift.get(spec.mode);
            if !findings.is_empty()
                && enforcement == Enforcement::Blocking
                && let Some(index) = spec
                    .overrides
                    .iter()
                    .position(|o| o.type_ == OverrideType::AcceptDrift && applies(o, name))
            {
                enforcement = Enforcement::Warning;
                applied.push(Applied {
                    index,
                    effect: format!("drift of {name} accepted"),
                });
            }
            applied.extend(verdict.applied.iter().cloned());
            let drift_blocks = !findings.is_empty() && enforcement == Enforcement::Blocking;
            let mut holds: Vec<String> = verdict.blocking.clone();
            if drift_blocks {
                holds.extend(findings.iter().map(status::describe_drift));
            }
            let state = if holds.is_empty() {
                Own::Accepted
            } else {
                Own::Held(holds.join("; "))
            };
            judgement = Some(Judged {
                gates: verdict,
                drift: findings,
                drift_blocks,
            });
            state
        }
    };
    (state, judgement, applied)
}
