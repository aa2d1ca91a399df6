//! How long a run and each of its phases should take, from the catalog: the instants the
//! `TipoffRunLate` and `TipoffPhaseStalled` alerts compare with (exported as
//! `tipoff_runs_expected_finish_timestamp_seconds` and `tipoff_phases_stall_timestamp_seconds`).
//! Also when a failed run failed (`tipoff_runs_last_failure_timestamp_seconds`,
//! `TipoffRunFailed`). Pure: the status and the catalog in, instants out.
//!
//! - A phase's **expected** duration is its longest dependency chain (in the run's mode) of
//!   processors' `deadlineSeconds`, one attempt each: a phase whose processors each end within
//!   their Job's deadline on the first attempt has ended by then.
//! - A phase's **limit** is the same chain with every processor using all its attempts, each to
//!   its deadline, and every backoff between them (the run's `spec.retry` over the catalog's).
//!   A phase still running past it is not slow: nothing the operator does can make it take that
//!   long, so something is stuck (the operator, or a Job that never ends).
//! - A run's **expected finish** is its start plus the expected durations of its phases.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use tipoff_crds::{Mode, PhaseState, PipelineRun, PipelineRunStatus, RetryPolicy, RunState};

use crate::catalog::{Catalog, Phase, Processor};

use super::retry::{backoff, effective};

/// What one phase should take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseBudget {
    /// Every processor of the longest chain ends within its deadline on its first attempt.
    pub expected: SignedDuration,
    /// Every processor of the longest chain uses every attempt to its deadline, with backoffs.
    pub limit: SignedDuration,
}

/// The instants a run in flight is measured against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTiming {
    /// The run's mode.
    pub mode: Option<Mode>,
    /// When the run should have finished; `None` once it ended, or while it is suspended.
    pub expected_finish: Option<Timestamp>,
    /// Per running phase (phase number, instant): when it counts as stalled. A `Vec`, not a
    /// map: it holds one entry or none, and the metrics keep one per run in flight.
    pub stall_at: Vec<(u8, Timestamp)>,
    /// For a `Failed` run: when it failed (`status.completionTime`).
    pub failed_at: Option<Timestamp>,
}

impl RunTiming {
    /// Whether it holds no instant at all (nothing for the metrics to keep).
    pub fn is_empty(&self) -> bool {
        self.expected_finish.is_none() && self.stall_at.is_empty() && self.failed_at.is_none()
    }
}

/// The budget of `phase` in `mode` under the run's retry policy.
pub fn phase_budget(phase: &Phase, mode: Mode, retry: Option<&RetryPolicy>) -> PhaseBudget {
    let one = |p: &Processor| SignedDuration::from_secs(p.deadline_seconds.max(0));
    let all = |p: &Processor| {
        let policy = effective(p.retry, retry);
        let attempts = policy.max_attempts.max(1);
        let runs = one(p)
            .checked_mul(i32::try_from(attempts).unwrap_or(i32::MAX))
            .unwrap_or(SignedDuration::MAX);
        (1..attempts).fold(runs, |total, n| total.saturating_add(backoff(policy, n)))
    };
    PhaseBudget {
        expected: longest_chain(phase, mode, &one),
        limit: longest_chain(phase, mode, &all),
    }
}

/// The largest sum of `cost` along a dependency chain inside `phase` (dependencies on earlier
/// phases are already done when the phase starts). The catalog has no cycles (validated).
fn longest_chain(
    phase: &Phase,
    mode: Mode,
    cost: &dyn Fn(&Processor) -> SignedDuration,
) -> SignedDuration {
    fn ends_at(
        p: &Processor,
        phase: &Phase,
        mode: Mode,
        cost: &dyn Fn(&Processor) -> SignedDuration,
        memo: &mut BTreeMap<String, SignedDuration>,
        depth: usize,
    ) -> SignedDuration {
        if let Some(d) = memo.get(&p.name) {
            return *d;
        }
        let start = if depth > phase.processors.len() {
            SignedDuration::ZERO // unreachable on a validated catalog: no cycles
        } else {
            p.dependencies(mode)
                .filter_map(|dep| phase.processors.iter().find(|q| q.name == dep))
                .map(|q| ends_at(q, phase, mode, cost, memo, depth + 1))
                .max()
                .unwrap_or(SignedDuration::ZERO)
        };
        let end = start.saturating_add(cost(p));
        memo.insert(p.name.clone(), end);
        end
    }
    let mut memo = BTreeMap::new();
    phase
        .processors
        .iter()
        .map(|p| ends_at(p, phase, mode, cost, &mut memo, 0))
        .max()
        .unwrap_or(SignedDuration::ZERO)
}

/// The instants `run`, with the status just planned, is measured against.
pub fn run_timing(catalog: &Catalog, run: &PipelineRun, status: &PipelineRunStatus) -> RunTiming {
    let mode = run.spec.mode;
    let retry = run.spec.retry.as_ref();
    let mut timing = RunTiming {
        mode: Some(mode),
        ..RunTiming::default()
    };
    let in_flight = matches!(
        status.state,
        None | Some(RunState::Pending | RunState::Running | RunState::Blocked)
    );
    if status.state == Some(RunState::Failed) {
        timing.failed_at = status.completion_time.as_ref().map(|t| t.0);
    }
    if !in_flight {
        return timing;
    }
    let Some(started) = status
        .start_time
        .as_ref()
        .or(run.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
    else {
        return timing;
    };
    let budget = |number: u8| {
        catalog
            .phase(number)
            .map(|phase| phase_budget(phase, mode, retry))
    };
    let expected = status
        .phases
        .iter()
        .filter(|p| p.state != PhaseState::Skipped)
        .filter_map(|p| budget(p.phase))
        .fold(SignedDuration::ZERO, |sum, b| {
            sum.saturating_add(b.expected)
        });
    timing.expected_finish = started.checked_add(expected).ok();
    let mut previous_end = started;
    for p in &status.phases {
        if p.state == PhaseState::Running {
            let since = p.start_time.as_ref().map_or(previous_end, |t| t.0);
            if let Some(at) = budget(p.phase).and_then(|b| since.checked_add(b.limit).ok()) {
                timing.stall_at.push((p.phase, at));
            }
        }
        if let Some(end) = &p.completion_time {
            previous_end = end.0;
        }
    }
    timing
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tipoff_crds::{PhaseSummary, PipelineRunSpec, Release};

    /// Phase 1: `a` (600 s) and `b` (300 s) after it; `c` (900 s) alone. Two attempts each,
    /// 10 s backoff doubling to a 15 s cap.
    const CATALOG: &str = "
defaults: {deadlineSeconds: 600, retry: {maxAttempts: 2, backoffSeconds: 10, maxBackoffSeconds: 15}}
gates: [{name: rows-written, description: rows, policy: warning}]
phases:
  - number: 1
    name: one
    processors:
      - {name: a}
      - {name: b, deadlineSeconds: 300, dependsOn: [a]}
      - {name: c, deadlineSeconds: 900}
  - number: 2
    name: two
    processors:
      - {name: d, deadlineSeconds: 60, retry: {maxAttempts: 3}}
";

    fn catalog() -> Catalog {
        Catalog::from_yaml(CATALOG).unwrap()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn run(retry: Option<RetryPolicy>) -> PipelineRun {
        let mut spec = PipelineRunSpec::new(
            "2026-01-29",
            Mode::Production,
            Release::pinned(format!("r/p@sha256:{}", "0".repeat(64)), "abc"),
        );
        spec.retry = retry;
        let mut run = PipelineRun::new("r", spec);
        run.metadata.creation_timestamp = Some(Time(at(-5)));
        run
    }

    fn phase(n: u8, state: PhaseState, start: Option<i64>, end: Option<i64>) -> PhaseSummary {
        PhaseSummary {
            phase: n,
            name: format!("p{n}"),
            state,
            done: 0,
            expected: 1,
            start_time: start.map(|s| Time(at(s))),
            completion_time: end.map(|s| Time(at(s))),
        }
    }

    fn status(state: RunState, phases: Vec<PhaseSummary>) -> PipelineRunStatus {
        PipelineRunStatus {
            state: Some(state),
            start_time: Some(Time(at(0))),
            phases,
            ..PipelineRunStatus::default()
        }
    }

    #[test]
    fn a_phase_takes_its_longest_dependency_chain() {
        let catalog = catalog();
        let b = phase_budget(catalog.phase(1).unwrap(), Mode::Production, None);
        // a then b: 600 + 300 = 900, as long as c alone.
        assert_eq!(b.expected, SignedDuration::from_secs(900));
        // Every attempt to its deadline plus the backoff: a 2*600+10, b 2*300+10 = 1820;
        // c 2*900+10 = 1810.
        assert_eq!(b.limit, SignedDuration::from_secs(1820));
        // Three attempts of d: 3*60 + 10 + 15 (capped from 20).
        let d = phase_budget(catalog.phase(2).unwrap(), Mode::Production, None);
        assert_eq!(d.limit, SignedDuration::from_secs(205));
    }

    #[test]
    fn the_runs_retry_policy_widens_the_limit() {
        let catalog = catalog();
        let retry = RetryPolicy {
            max_attempts: Some(4),
            ..RetryPolicy::default()
        };
        let b = phase_budget(catalog.phase(2).unwrap(), Mode::Production, Some(&retry));
        assert_eq!(b.expected, SignedDuration::from_secs(60));
        assert_eq!(b.limit, SignedDuration::from_secs(4 * 60 + 10 + 15 + 15));
    }

    #[test]
    fn a_running_run_is_expected_by_its_start_plus_every_phase() {
        let timing = run_timing(
            &catalog(),
            &run(None),
            &status(
                RunState::Running,
                vec![
                    phase(1, PhaseState::Succeeded, Some(0), Some(100)),
                    phase(2, PhaseState::Running, Some(130), None),
                ],
            ),
        );
        assert_eq!(timing.expected_finish, Some(at(900 + 60)));
        assert_eq!(timing.stall_at, vec![(2, at(130 + 205))]);
        assert_eq!(timing.mode, Some(Mode::Production));
    }

    #[test]
    fn a_running_phase_not_started_yet_is_measured_from_the_previous_phases_end() {
        let timing = run_timing(
            &catalog(),
            &run(None),
            &status(
                RunState::Running,
                vec![
                    phase(1, PhaseState::Succeeded, Some(0), Some(100)),
                    phase(2, PhaseState::Running, None, None),
                ],
            ),
        );
        assert_eq!(timing.stall_at, vec![(2, at(100 + 205))]);
    }

    #[test]
    fn skipped_phases_take_no_time_and_ended_or_suspended_runs_none() {
        let catalog = catalog();
        let skipped = run_timing(
            &catalog,
            &run(None),
            &status(
                RunState::Pending,
                vec![
                    phase(1, PhaseState::Skipped, None, None),
                    phase(2, PhaseState::Pending, None, None),
                ],
            ),
        );
        assert_eq!(skipped.expected_finish, Some(at(60)));
        assert!(skipped.stall_at.is_empty());
        for state in [RunState::Succeeded, RunState::Failed, RunState::Suspended] {
            let t = run_timing(
                &catalog,
                &run(None),
                &status(state, vec![phase(2, PhaseState::Running, Some(0), None)]),
            );
            assert_eq!(t.expected_finish, None, "{state:?}");
            assert!(t.stall_at.is_empty(), "{state:?}");
            assert_eq!(t.failed_at, None, "{state:?}");
            assert!(t.is_empty(), "{state:?}");
        }
    }

    #[test]
    fn a_failed_run_is_remembered_by_when_it_failed() {
        let mut s = status(
            RunState::Failed,
            vec![phase(1, PhaseState::Failed, Some(0), Some(700))],
        );
        s.completion_time = Some(Time(at(700)));
        let t = run_timing(&catalog(), &run(None), &s);
        assert_eq!(t.failed_at, Some(at(700)));
        assert_eq!(t.expected_finish, None);
        assert!(!t.is_empty());
    }

    #[test]
    fn a_run_without_a_start_is_measured_from_its_creation() {
        let mut s = status(
            RunState::Pending,
            vec![phase(2, PhaseState::Pending, None, None)],
        );
        s.start_time = None;
        let t = run_timing(&catalog(), &run(None), &s);
        assert_eq!(t.expected_finish, Some(at(-5 + 60)));
    }
}
