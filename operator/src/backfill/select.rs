//! Where each date of a backfill stands: its own run's state once it has one; before that,
//! whether the reprocess policy targets it, judged against the date's other runs *as they
//! were when the backfill was created*.
//!
//! Judging against the creation time rather than the present keeps every decision derivable
//! and stable: a run that was in flight then stays a reason to skip the date after it ended
//! (its `creationTimestamp` and `completionTime` say it was in flight), and runs created
//! later (the nightly Production run, another backfill) never change which dates are targeted.
//! They only make a targeted date wait while they are in flight, so two runs of one date never
//! write at once.

use jiff::Timestamp;
use tipoff_crds::{DateReason, DateState, Release, Reprocess, RunState};

/// What the planner reads of one PipelineRun of a date in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFacts {
    /// Its name.
    pub name: String,
    /// Its `spec.date`.
    pub date: String,
    /// Its `creationTimestamp`.
    pub created: Timestamp,
    /// Whether this backfill created it (owner reference to the backfill's uid).
    pub own: bool,
    /// Its state as last reconciled (`None` before its first status).
    pub state: Option<RunState>,
    /// When it was first observed running (`status.startTime`).
    pub started: Option<Timestamp>,
    /// When it reached Succeeded or Failed (`status.completionTime`).
    pub completed: Option<Timestamp>,
    /// Whether its `CodeDrift` condition is True.
    pub drift: bool,
    /// The release it pinned.
    pub release: Release,
}

impl RunFacts {
    /// Whether it has ended (Succeeded or Failed).
    pub fn ended(&self) -> bool {
        self.state.is_some_and(RunState::is_terminal)
    }

    /// Whether it was in flight at `t`: created by then, and not ended by then. A run that has
    /// ended but has no completion time is taken to have ended before `t`.
    pub fn in_flight_at(&self, t: Timestamp) -> bool {
        self.created <= t && (!self.ended() || self.completed.is_some_and(|c| c > t))
    }

    /// Whether it ran other code than `release` pins: CodeDrift, or another image, commit or
    /// per-processor exception (the version label is informational and not compared).
    pub fn drifted_from(&self, release: &Release) -> bool {
        self.drift
            || self.release.image != release.image
            || self.release.commit != release.commit
            || self.release.processors != release.processors
    }
}

/// Where one date stands, before concurrency is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateVerdict {
    /// The date's state.
    pub state: DateState,
    /// The run it is about: its own, or the other run a skip or wait names.
    pub run: Option<String>,
    /// Why it is skipped or waits.
    pub reason: Option<DateReason>,
    /// For a targeted date without its own run: the run its own would replace (the date's
    /// newest earlier run), so the new run can name it.
    pub replaces: Option<String>,
    /// Skipped `InFlight` for a run that, as observed, has not ended yet. Right after the
    /// backfill's creation the verdict is provisional: the observation may lag (a watch cache
    /// seconds behind a run that just ended), so the planner looks again until the grace
    /// period has passed ([`super::CACHE_LAG_GRACE_SECS`]) or the run reads as ended, when its
    /// `completionTime` decides.
    pub awaiting_end: bool,
}

impl DateVerdict {
    /// A skipped date, naming the run the reason is about.
    pub fn skipped(reason: DateReason, run: Option<&RunFacts>) -> Self {
        Self {
            state: DateState::Skipped,
            run: run.map(|r| r.name.clone()),
            reason: Some(reason),
            replaces: None,
            awaiting_end: false,
        }
    }
}

/// The newest of `runs` by creation time (then name, so the choice is stable).
fn newest<'a>(runs: impl Iterator<Item = &'a RunFacts>) -> Option<&'a RunFacts> {
    runs.max_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)))
}

/// Judges one date: `runs` are every run of the date (own and others), `created` is when the
/// backfill was created.
pub fn judge(
    runs: &[&RunFacts],
    reprocess: Reprocess,
    release: &Release,
    created: Timestamp,
) -> DateVerdict {
    if let Some(own) = newest(runs.iter().copied().filter(|r| r.own)) {
        let state = match own.state {
            Some(RunState::Succeeded) => DateState::Succeeded,
            Some(RunState::Failed) => DateState::Failed,
            _ => DateState::Running,
        };
        return DateVerdict {
            state,
            run: Some(own.name.clone()),
            reason: None,
            replaces: None,
            awaiting_end: false,
        };
    }
    // Creation times have a resolution of one second: a run created in the backfill's second
    // counts as there before it.
    let before: Vec<&RunFacts> = runs
        .iter()
        .copied()
        .filter(|r| !r.own && r.created <= created)
        .collect();
    if let Some(busy) = newest(before.iter().copied().filter(|r| r.in_flight_at(created))) {
        return DateVerdict {
            awaiting_end: !busy.ended(),
            ..DateVerdict::skipped(DateReason::InFlight, Some(busy))
        };
    }
    let latest = newest(before.iter().copied());
    let succeeded = newest(
        before
            .iter()
            .copied()
            .filter(|r| r.state == Some(RunState::Succeeded)),
    );
    let targeted = match reprocess {
        Reprocess::All => Ok(()),
        Reprocess::Missing => match succeeded {
            Some(s) => Err(DateVerdict::skipped(DateReason::AlreadySucceeded, Some(s))),
            None => Ok(()),
        },
        Reprocess::Failed => match latest {
            None => Err(DateVerdict::skipped(DateReason::NoRun, None)),
            Some(l) if l.state == Some(RunState::Failed) => Ok(()),
            Some(l) => Err(DateVerdict::skipped(DateReason::AlreadySucceeded, Some(l))),
        },
        Reprocess::Drifted => match latest {
            None => Err(DateVerdict::skipped(DateReason::NoRun, None)),
            Some(l) if l.drifted_from(release) => Ok(()),
            Some(l) => Err(DateVerdict::skipped(DateReason::NotDrifted, Some(l))),
        },
    };
    if let Err(skip) = targeted {
        return skip;
    }
    // Targeted. A run of the date created since (not this backfill's) that is in flight now
    // holds the date: two runs of one date never write at once.
    let holder = newest(
        runs.iter()
            .copied()
            .filter(|r| !r.own && r.created > created && !r.ended()),
    );
    DateVerdict {
        state: DateState::Pending,
        run: holder.map(|h| h.name.clone()),
        reason: holder.map(|_| DateReason::WaitingForRun),
        replaces: latest.map(|l| l.name.clone()),
        awaiting_end: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn release(commit: &str) -> Release {
        Release::pinned("img@sha256:aa", commit)
    }

    fn run(name: &str, created: i64, state: Option<RunState>, completed: Option<i64>) -> RunFacts {
        RunFacts {
            name: name.into(),
            date: "2026-01-10".into(),
            created: at(created),
            own: false,
            state,
            started: Some(at(created)),
            completed: completed.map(at),
            drift: false,
            release: release("abc1234"),
        }
    }

    const T0: i64 = 1000;

    fn judge_all(runs: &[RunFacts], reprocess: Reprocess) -> DateVerdict {
        let refs: Vec<&RunFacts> = runs.iter().collect();
        judge(&refs, reprocess, &release("abc1234"), at(T0))
    }

    #[test]
    fn a_date_without_runs_is_targeted_by_missing_and_all_only() {
        for (policy, want) in [
            (Reprocess::Missing, DateState::Pending),
            (Reprocess::All, DateState::Pending),
            (Reprocess::Failed, DateState::Skipped),
            (Reprocess::Drifted, DateState::Skipped),
        ] {
            let v = judge_all(&[], policy);
            assert_eq!(v.state, want, "{policy:?}");
            if want == DateState::Skipped {
                assert_eq!(v.reason, Some(DateReason::NoRun));
            }
        }
    }

    #[test]
    fn failed_targets_only_a_date_whose_latest_run_failed() {
        let failed = [run("a", 10, Some(RunState::Failed), Some(20))];
        assert_eq!(
            judge_all(&failed, Reprocess::Failed).state,
            DateState::Pending
        );
        assert_eq!(
            judge_all(&failed, Reprocess::Failed).replaces.as_deref(),
            Some("a")
        );
        // Failed, then succeeded on a later run: nothing to reprocess.
        let fixed = [
            run("a", 10, Some(RunState::Failed), Some(20)),
            run("b", 30, Some(RunState::Succeeded), Some(40)),
        ];
        let v = judge_all(&fixed, Reprocess::Failed);
        assert_eq!(
            (v.state, v.reason, v.run.as_deref()),
            (
                DateState::Skipped,
                Some(DateReason::AlreadySucceeded),
                Some("b")
            )
        );
    }

    #[test]
    fn missing_skips_a_date_with_any_successful_run() {
        let runs = [
            run("a", 10, Some(RunState::Succeeded), Some(20)),
            run("b", 30, Some(RunState::Failed), Some(40)),
        ];
        let v = judge_all(&runs, Reprocess::Missing);
        assert_eq!(v.reason, Some(DateReason::AlreadySucceeded));
        assert_eq!(v.run.as_deref(), Some("a"));
        let failed_only = [run("b", 30, Some(RunState::Failed), Some(40))];
        assert_eq!(
            judge_all(&failed_only, Reprocess::Missing).state,
            DateState::Pending
        );
    }

    #[test]
    fn drifted_targets_code_drift_and_another_pin() {
        let mut drifted = run("a", 10, Some(RunState::Succeeded), Some(20));
        drifted.drift = true;
        assert_eq!(
            judge_all(&[drifted], Reprocess::Drifted).state,
            DateState::Pending
        );
        let mut other_commit = run("a", 10, Some(RunState::Succeeded), Some(20));
        other_commit.release = release("def5678");
        assert_eq!(
            judge_all(&[other_commit], Reprocess::Drifted).state,
            DateState::Pending
        );
        let mut other_version = run("a", 10, Some(RunState::Succeeded), Some(20));
        other_version.release.version = Some("v9".into());
        let v = judge_all(&[other_version], Reprocess::Drifted);
        assert_eq!(
            (v.state, v.reason),
            (DateState::Skipped, Some(DateReason::NotDrifted))
        );
    }

    #[test]
    fn a_run_in_flight_at_creation_skips_the_date_even_after_it_ended() {
        let running = [run("a", 10, Some(RunState::Running), None)];
        let v = judge_all(&running, Reprocess::All);
        assert_eq!(
            (v.state, v.reason, v.run.as_deref()),
            (DateState::Skipped, Some(DateReason::InFlight), Some("a"))
        );
        // It ended after the backfill was created: still skipped, the decision is stable.
        let ended = [run("a", 10, Some(RunState::Failed), Some(T0 + 50))];
        assert_eq!(
            judge_all(&ended, Reprocess::All).reason,
            Some(DateReason::InFlight)
        );
        // A Blocked run holds the date too.
        let blocked = [run("a", 10, Some(RunState::Blocked), None)];
        assert_eq!(
            judge_all(&blocked, Reprocess::Missing).reason,
            Some(DateReason::InFlight)
        );
    }

    #[test]
    fn a_run_created_in_the_backfills_second_counts_as_there_before_it() {
        let same_second = [run("a", T0, Some(RunState::Suspended), None)];
        let v = judge_all(&same_second, Reprocess::Missing);
        assert_eq!(
            (v.state, v.reason),
            (DateState::Skipped, Some(DateReason::InFlight))
        );
    }

    #[test]
    fn a_run_created_after_the_backfill_makes_a_targeted_date_wait_not_skip() {
        let later = [run("nightly", T0 + 5, Some(RunState::Running), None)];
        let v = judge_all(&later, Reprocess::Missing);
        assert_eq!(
            (v.state, v.reason, v.run.as_deref()),
            (
                DateState::Pending,
                Some(DateReason::WaitingForRun),
                Some("nightly")
            )
        );
        // Once it ended the date is free; it does not change what was targeted.
        let ended = [run(
            "nightly",
            T0 + 5,
            Some(RunState::Succeeded),
            Some(T0 + 9),
        )];
        let v = judge_all(&ended, Reprocess::Missing);
        assert_eq!((v.state, v.reason), (DateState::Pending, None));
    }

    #[test]
    fn the_backfills_own_run_decides_once_it_exists() {
        let mut own = run("bf-2026-01-10", T0 + 1, Some(RunState::Blocked), None);
        own.own = true;
        let others = run("a", 10, Some(RunState::Succeeded), Some(20));
        let v = judge_all(&[others.clone(), own.clone()], Reprocess::All);
        assert_eq!(
            (v.state, v.run.as_deref()),
            (DateState::Running, Some("bf-2026-01-10"))
        );
        own.state = Some(RunState::Failed);
        assert_eq!(
            judge_all(&[others, own], Reprocess::All).state,
            DateState::Failed
        );
    }
}
