//! Table tests of the backfill planner: concurrency, order, suspend, overlap, the ledger,
//! conditions, the ETA, Events, and a status rebuilt from scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tipoff_crds::{
    BackfillState, DateReason, DateState, Order, PipelineBackfill, PipelineBackfillSpec, Release,
    Reprocess, RunState,
};

use super::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

const T0: i64 = 1000;

fn release() -> Release {
    Release::pinned("ghcr.io/tipoff/processor@sha256:aa", "abc1234")
}

fn backfill(
    name: &str,
    from: &str,
    to: &str,
    edit: impl FnOnce(&mut PipelineBackfillSpec),
) -> PipelineBackfill {
    let mut spec: PipelineBackfillSpec = serde_json::from_value(serde_json::json!({
        "from": from, "to": to,
        "release": {"image": "ghcr.io/tipoff/processor@sha256:aa", "commit": "abc1234"}
    }))
    .unwrap();
    edit(&mut spec);
    let mut b = PipelineBackfill::new(name, spec);
    b.metadata.namespace = Some("ns".into());
    b.metadata.uid = Some(format!("uid-{name}"));
    b.metadata.generation = Some(1);
    b.metadata.creation_timestamp = Some(Time(at(T0)));
    b
}

fn own(
    bf: &str,
    date: &str,
    created: i64,
    state: Option<RunState>,
    completed: Option<i64>,
) -> RunFacts {
    RunFacts {
        name: names::run_name(bf, date),
        date: date.into(),
        created: at(created),
        own: true,
        state,
        started: Some(at(created)),
        completed: completed.map(at),
        drift: false,
        release: release(),
    }
}

fn other(
    name: &str,
    date: &str,
    created: i64,
    state: Option<RunState>,
    completed: Option<i64>,
) -> RunFacts {
    RunFacts {
        own: false,
        name: name.into(),
        ..own("x", date, created, state, completed)
    }
}

fn january(n: u32) -> Vec<String> {
    (1..=n).map(|d| format!("2026-01-{d:02}")).collect()
}

fn created_dates(p: &BackfillPlan) -> Vec<&str> {
    p.runs.iter().map(|r| r.date.as_str()).collect()
}

/// Applies a plan as the cluster would: its status is written and its runs exist.
fn applied(
    mut b: PipelineBackfill,
    p: &BackfillPlan,
    observed: &mut Observed,
    now: i64,
) -> PipelineBackfill {
    for r in &p.runs {
        observed.runs.push(RunFacts {
            name: r.name.clone(),
            date: r.date.clone(),
            created: at(now),
            own: true,
            state: None,
            started: None,
            completed: None,
            drift: false,
            release: r.spec.release.clone(),
        });
    }
    // Through JSON, as the API server stores it (times in whole seconds).
    b.status = Some(serde_json::from_value(serde_json::to_value(&p.status).unwrap()).unwrap());
    b
}

#[test]
fn a_range_starts_max_concurrent_runs_oldest_first_and_counts_the_rest_pending() {
    let b = backfill("bf", "2026-01-01", "2026-01-20", |s| s.max_concurrent = 3);
    let p = plan(&b, &Observed::default(), at(T0 + 1));
    assert_eq!(
        created_dates(&p),
        ["2026-01-01", "2026-01-02", "2026-01-03"]
    );
    let c = p.status.counts;
    assert_eq!(
        (c.targeted, c.running, c.pending, c.skipped),
        (20, 3, 17, 0)
    );
    assert_eq!(p.status.state, Some(BackfillState::Running));
    assert_eq!(p.status.progress.as_deref(), Some("0/20"));
    assert_eq!(p.status.dates.len(), 20);
    let first = &p.runs[0];
    assert_eq!(first.name, "bf-2026-01-01");
    assert_eq!(first.spec.mode, tipoff_crds::Mode::Backfill);
    assert_eq!(first.labels[LABEL_BACKFILL], "bf");
    assert_eq!(first.labels[LABEL_DATE], "2026-01-01");
    assert!(first.annotations.is_empty(), "replaces nothing");
    assert_eq!(p.status.start_time, Some(Time(at(T0 + 1))));
}

#[test]
fn newest_first_starts_at_the_end_of_the_range() {
    let b = backfill("bf", "2026-01-01", "2026-01-10", |s| {
        s.max_concurrent = 2;
        s.order = Order::NewestFirst;
    });
    let p = plan(&b, &Observed::default(), at(T0 + 1));
    assert_eq!(created_dates(&p), ["2026-01-10", "2026-01-09"]);
}

#[test]
fn a_full_set_of_runs_in_flight_creates_nothing_until_one_ends() {
    let b = backfill("bf", "2026-01-01", "2026-01-05", |s| s.max_concurrent = 2);
    let mut observed = Observed {
        runs: vec![
            own("bf", "2026-01-01", T0 + 1, Some(RunState::Running), None),
            own("bf", "2026-01-02", T0 + 1, Some(RunState::Blocked), None),
        ],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 10));
    assert!(p.runs.is_empty(), "{:?}", p.runs);
    assert_eq!(p.status.counts.running, 2);
    observed.runs[0].state = Some(RunState::Succeeded);
    observed.runs[0].completed = Some(at(T0 + 20));
    let p = plan(&b, &observed, at(T0 + 21));
    assert_eq!(created_dates(&p), ["2026-01-03"]);
}

#[test]
fn max_concurrent_is_never_exceeded_over_a_whole_backfill() {
    // Drive a 20-date backfill to its end: runs end one per step, oldest first.
    let mut b = backfill("bf", "2026-01-01", "2026-01-20", |s| s.max_concurrent = 3);
    let mut observed = Observed::default();
    let mut now = T0 + 1;
    for _ in 0..40 {
        let p = plan(&b, &observed, at(now));
        let in_flight = observed.runs.iter().filter(|r| !r.ended()).count() + p.runs.len();
        assert!(in_flight <= 3, "{in_flight} in flight at {now}");
        b = applied(b, &p, &mut observed, now);
        now += 10;
        if let Some(r) = observed.runs.iter_mut().find(|r| !r.ended()) {
            r.state = Some(RunState::Succeeded);
            r.completed = Some(at(now));
        }
    }
    let p = plan(&b, &observed, at(now));
    assert_eq!(p.status.state, Some(BackfillState::Succeeded));
    assert_eq!(observed.runs.len(), 20, "one run per date");
    assert_eq!(p.status.progress.as_deref(), Some("20/20"));
    assert!(p.status.estimated_completion_time.is_none());
    assert!(p.status.completion_time.is_some());
}

#[test]
fn suspend_creates_nothing_and_says_so() {
    let b = backfill("bf", "2026-01-01", "2026-01-05", |s| s.suspend = true);
    let p = plan(&b, &Observed::default(), at(T0 + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.state, Some(BackfillState::Suspended));
    let progressing = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.is_true(), progressing.reason.as_str()),
        (false, "Suspended")
    );
}

#[test]
fn an_overlap_with_an_older_active_backfill_is_refused_with_a_condition() {
    let b = backfill("second", "2026-01-05", "2026-01-15", |_| {});
    let older = OtherBackfill {
        name: "first".into(),
        created: at(T0 - 100),
        from: "2026-01-01".into(),
        to: "2026-01-07".into(),
        ended: false,
    };
    let observed = Observed {
        other_backfills: vec![older.clone()],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.state, Some(BackfillState::Blocked));
    let blocked = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Blocked")
        .unwrap();
    assert!(blocked.is_true());
    assert_eq!(blocked.reason, "OverlapsBackfill");
    assert!(
        blocked.message.contains("first (2026-01-01 to 2026-01-07)"),
        "{}",
        blocked.message
    );
    assert!(
        p.events
            .iter()
            .any(|e| e.warning && e.reason == "BackfillStateChanged")
    );
    assert_eq!(p.requeue_after, Duration::from_secs(WAIT_SECS));

    // The older one is not held back by the newer one.
    let first = backfill("first", "2026-01-01", "2026-01-07", |_| {});
    let mut first = first;
    first.metadata.creation_timestamp = Some(Time(at(T0 - 100)));
    let newer = OtherBackfill {
        name: "second".into(),
        created: at(T0),
        from: "2026-01-05".into(),
        to: "2026-01-15".into(),
        ended: false,
    };
    let p = plan(
        &first,
        &Observed {
            other_backfills: vec![newer],
            ..Observed::default()
        },
        at(T0 + 1),
    );
    assert_eq!(p.runs.len(), 3);

    // Once the older one ended, the newer one runs; disjoint ranges never block.
    for o in [
        OtherBackfill {
            ended: true,
            ..older.clone()
        },
        OtherBackfill {
            to: "2026-01-04".into(),
            ..older
        },
    ] {
        let p = plan(
            &b,
            &Observed {
                other_backfills: vec![o.clone()],
                ..Observed::default()
            },
            at(T0 + 1),
        );
        assert_eq!(p.runs.len(), 3, "{o:?}");
    }
}

#[test]
fn reprocess_failed_targets_failed_dates_and_names_every_skip() {
    let b = backfill("bf", "2026-01-01", "2026-01-04", |s| {
        s.reprocess = Reprocess::Failed
    });
    let observed = Observed {
        runs: vec![
            other(
                "nba-2026-01-01",
                "2026-01-01",
                10,
                Some(RunState::Failed),
                Some(20),
            ),
            other(
                "nba-2026-01-02",
                "2026-01-02",
                10,
                Some(RunState::Succeeded),
                Some(20),
            ),
            other(
                "nba-2026-01-03",
                "2026-01-03",
                10,
                Some(RunState::Running),
                None,
            ),
        ],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 1));
    assert_eq!(created_dates(&p), ["2026-01-01"]);
    assert_eq!(p.runs[0].annotations[ANNOTATION_REPLACES], "nba-2026-01-01");
    let reasons: Vec<(DateState, Option<DateReason>)> =
        p.status.dates.iter().map(|d| (d.state, d.reason)).collect();
    assert_eq!(
        reasons,
        [
            (DateState::Running, None),
            (DateState::Skipped, Some(DateReason::AlreadySucceeded)),
            (DateState::Skipped, Some(DateReason::InFlight)),
            (DateState::Skipped, Some(DateReason::NoRun)),
        ]
    );
    assert_eq!(p.status.dates[2].run.as_deref(), Some("nba-2026-01-03"));
    let c = p.status.counts;
    assert_eq!((c.targeted, c.skipped), (1, 3));
    let skipped = p
        .events
        .iter()
        .find(|e| e.reason == "DatesSkipped")
        .unwrap();
    assert!(
        skipped.message.contains("InFlight: 2026-01-03"),
        "{}",
        skipped.message
    );
}

#[test]
fn a_date_held_by_a_later_run_waits_and_the_others_go_ahead() {
    let b = backfill("bf", "2026-01-01", "2026-01-03", |_| {});
    let observed = Observed {
        runs: vec![other(
            "nba-2026-01-01",
            "2026-01-01",
            T0 + 5,
            Some(RunState::Running),
            None,
        )],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 6));
    assert_eq!(created_dates(&p), ["2026-01-02", "2026-01-03"]);
    let first = &p.status.dates[0];
    assert_eq!(
        (first.state, first.reason),
        (DateState::Pending, Some(DateReason::WaitingForRun))
    );
    assert_eq!(p.requeue_after, Duration::from_secs(WAIT_SECS));
    let progressing = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert!(
        progressing
            .message
            .contains("2026-01-01 (run nba-2026-01-01)"),
        "{}",
        progressing.message
    );
}

#[test]
fn the_eta_follows_the_pace_of_the_dates_ended_so_far() {
    let b = backfill("bf", "2026-01-01", "2026-01-10", |s| s.max_concurrent = 2);
    // Started at T0+0; two dates ended by T0+100: 50 s a date, 8 left -> T0+500.
    let observed = Observed {
        runs: vec![
            own(
                "bf",
                "2026-01-01",
                T0,
                Some(RunState::Succeeded),
                Some(T0 + 60),
            ),
            own(
                "bf",
                "2026-01-02",
                T0,
                Some(RunState::Failed),
                Some(T0 + 100),
            ),
            own("bf", "2026-01-03", T0 + 60, Some(RunState::Running), None),
            own("bf", "2026-01-04", T0 + 100, Some(RunState::Running), None),
        ],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 120));
    assert_eq!(p.status.estimated_completion_time, Some(Time(at(T0 + 500))));
    // The ETA does not move with the clock: only an ending date moves it.
    assert_eq!(
        plan(&b, &observed, at(T0 + 400))
            .status
            .estimated_completion_time,
        p.status.estimated_completion_time
    );
    let failed = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert!(
        failed.is_true() && failed.message.contains("2026-01-02"),
        "{failed:?}"
    );
    assert_eq!(p.status.state, Some(BackfillState::Running));
}

#[test]
fn a_backfill_ends_failed_when_any_targeted_run_failed() {
    let b = backfill("bf", "2026-01-01", "2026-01-02", |_| {});
    let observed = Observed {
        runs: vec![
            own(
                "bf",
                "2026-01-01",
                T0,
                Some(RunState::Succeeded),
                Some(T0 + 60),
            ),
            own(
                "bf",
                "2026-01-02",
                T0,
                Some(RunState::Failed),
                Some(T0 + 90),
            ),
        ],
        ..Observed::default()
    };
    let p = plan(&b, &observed, at(T0 + 120));
    assert_eq!(p.status.state, Some(BackfillState::Failed));
    assert_eq!(p.status.completion_time, Some(Time(at(T0 + 90))));
    let complete = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .unwrap();
    assert_eq!(
        (complete.is_true(), complete.reason.as_str()),
        (true, "EndedWithFailures")
    );
}

#[test]
fn nothing_to_run_succeeds_at_once() {
    let b = backfill("bf", "2026-01-01", "2026-01-02", |s| {
        s.reprocess = Reprocess::Drifted
    });
    let p = plan(&b, &Observed::default(), at(T0 + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.state, Some(BackfillState::Succeeded));
    assert_eq!(p.status.counts.skipped, 2);
}

#[test]
fn planning_again_from_the_written_status_changes_nothing_and_emits_nothing() {
    let b = backfill("bf", "2026-01-01", "2026-01-05", |_| {});
    let mut observed = Observed::default();
    let p = plan(&b, &observed, at(T0 + 1));
    assert!(!p.events.is_empty());
    let b = applied(b, &p, &mut observed, T0 + 1);
    let again = plan(&b, &observed, at(T0 + 2));
    assert!(again.runs.is_empty());
    assert!(!again.status_changed, "{:#?}", again.status);
    assert!(again.events.is_empty(), "{:?}", again.events);
}

#[test]
fn a_status_rebuilt_from_scratch_equals_the_maintained_one() {
    let mut b = backfill("bf", "2026-01-01", "2026-01-08", |s| s.max_concurrent = 2);
    let mut observed = Observed {
        runs: vec![other(
            "nba-2026-01-04",
            "2026-01-04",
            10,
            Some(RunState::Succeeded),
            Some(20),
        )],
        ..Observed::default()
    };
    let mut now = T0 + 1;
    for step in 0..6 {
        let p = plan(&b, &observed, at(now));
        b = applied(b, &p, &mut observed, now);
        now += 7;
        if step % 2 == 1
            && let Some(r) = observed.runs.iter_mut().find(|r| r.own && !r.ended())
        {
            r.state = Some(if step == 3 {
                RunState::Failed
            } else {
                RunState::Succeeded
            });
            r.completed = Some(at(now));
        }
        let maintained = plan(&b, &observed, at(now)).status;
        let mut fresh = b.clone();
        fresh.status = None;
        let rebuilt = plan(&fresh, &observed, at(now)).status;
        let strip = |mut s: PipelineBackfillStatus| {
            for c in &mut s.conditions {
                c.last_transition_time = Time(at(0));
            }
            s
        };
        assert_eq!(strip(rebuilt), strip(maintained), "step {step}");
    }
}

#[test]
fn dates_cover_the_range_inclusively_and_refuse_bad_ranges() {
    assert_eq!(dates("2024-02-28", "2024-03-01").unwrap().len(), 3);
    assert_eq!(dates("2026-01-29", "2026-01-29").unwrap().len(), 1);
    assert!(dates("2026-01-02", "2026-01-01").is_err());
    assert!(dates("2026-01-01", "2027-01-02").is_err());
    assert!(dates("2026-02-30", "2026-03-01").is_err());
    assert_eq!(january(3).len(), 3);
}

#[test]
fn times_are_whole_seconds_so_a_status_read_back_is_not_written_again() {
    // Times are stored in whole seconds: a status with a sub-second ETA or transition time
    // would differ from itself read back, and be written on every reconcile.
    let b = backfill("bf", "2026-01-01", "2026-01-07", |s| s.max_concurrent = 2);
    let mut observed = Observed {
        runs: vec![
            // Two dates ended in 7 s: 3.5 s a date, 5 left: an ETA 17.5 s after the last end.
            own(
                "bf",
                "2026-01-01",
                T0,
                Some(RunState::Succeeded),
                Some(T0 + 5),
            ),
            own(
                "bf",
                "2026-01-02",
                T0,
                Some(RunState::Succeeded),
                Some(T0 + 7),
            ),
            own("bf", "2026-01-03", T0 + 5, Some(RunState::Running), None),
            own("bf", "2026-01-04", T0 + 7, Some(RunState::Running), None),
        ],
        ..Observed::default()
    };
    let odd = |s: i64| at(s) + jiff::SignedDuration::from_millis(337);
    let p = plan(&b, &observed, odd(T0 + 8));
    assert!(p.status.estimated_completion_time.is_some());
    let b = applied(b, &p, &mut observed, T0 + 8);
    let again = plan(&b, &observed, odd(T0 + 9));
    assert!(!again.status_changed, "{:#?}", again.status);
}

/// The watch cache can lag: a run that failed just before the backfill was created can still
/// read as Running. Its skip is then provisional for a grace period: the backfill does not end,
/// looks again in `WAIT_SECS`, and once the run reads as ended its completion time decides.
#[test]
fn a_date_skipped_for_a_run_not_yet_seen_ended_is_judged_again_when_it_ends() {
    let b = backfill("bf", "2026-01-01", "2026-01-01", |s| {
        s.reprocess = Reprocess::Failed
    });
    let lagging = Observed {
        runs: vec![other(
            "nba-2026-01-01",
            "2026-01-01",
            10,
            Some(RunState::Running),
            None,
        )],
        ..Observed::default()
    };
    let p = plan(&b, &lagging, at(T0 + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.dates[0].reason, Some(DateReason::InFlight));
    assert_ne!(p.status.state, Some(BackfillState::Succeeded));
    assert_eq!(p.requeue_after, Duration::from_secs(WAIT_SECS));
    let progressing = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert!(
        progressing
            .message
            .contains("until those runs end: 2026-01-01 (run nba-2026-01-01)"),
        "{}",
        progressing.message
    );

    // The cache catches up: the run had failed before the backfill was created.
    let b = applied(b, &p, &mut Observed::default(), T0 + 1);
    let caught_up = Observed {
        runs: vec![other(
            "nba-2026-01-01",
            "2026-01-01",
            10,
            Some(RunState::Failed),
            Some(T0 - 1),
        )],
        ..Observed::default()
    };
    let p = plan(&b, &caught_up, at(T0 + 12));
    assert_eq!(created_dates(&p), ["2026-01-01"]);

    // Still read as in flight once the grace period is over: it really is, the skip stands
    // and the backfill ends (a suspended run must not hold a backfill for days).
    let b = backfill("bf", "2026-01-01", "2026-01-01", |s| {
        s.reprocess = Reprocess::Failed
    });
    let p = plan(&b, &lagging, at(T0 + CACHE_LAG_GRACE_SECS + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.dates[0].reason, Some(DateReason::InFlight));
    assert_eq!(p.status.state, Some(BackfillState::Succeeded));

    // Had it really been in flight (it ended after the backfill was created), the skip stands
    // and the backfill ends.
    let b = backfill("bf", "2026-01-01", "2026-01-01", |s| {
        s.reprocess = Reprocess::Failed
    });
    let really_in_flight = Observed {
        runs: vec![other(
            "nba-2026-01-01",
            "2026-01-01",
            10,
            Some(RunState::Failed),
            Some(T0 + 5),
        )],
        ..Observed::default()
    };
    let p = plan(&b, &really_in_flight, at(T0 + 12));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.dates[0].reason, Some(DateReason::InFlight));
    assert_eq!(p.status.state, Some(BackfillState::Succeeded));
}

/// `spec.gameDays`: a date the list covers without listing has no games and is skipped; a date
/// after the list's `through` is not known to have none and is run; a list that cannot be read
/// blocks the backfill with the list's reason rather than run dates without games.
#[test]
fn dates_without_games_are_skipped_and_an_unreadable_list_blocks() {
    use crate::schedule::GameDays;
    use jiff::civil::date;
    let b = backfill("bf", "2026-01-01", "2026-01-04", |s| s.max_concurrent = 4);
    let listed = Observed {
        game_days: Some(GameDays::Listed {
            dates: [date(2026, 1, 1), date(2026, 1, 3)].into(),
            through: date(2026, 1, 3),
        }),
        ..Observed::default()
    };
    let p = plan(&b, &listed, at(T0 + 1));
    assert_eq!(
        created_dates(&p),
        ["2026-01-01", "2026-01-03", "2026-01-04"]
    );
    let d2 = &p.status.dates[1];
    assert_eq!(
        (d2.state, d2.reason),
        (DateState::Skipped, Some(DateReason::NoGames))
    );
    let skipped = p
        .events
        .iter()
        .find(|e| e.reason == "DatesSkipped")
        .unwrap();
    assert!(
        skipped.message.contains("NoGames: 2026-01-02"),
        "{}",
        skipped.message
    );

    let unreadable = Observed {
        game_days: Some(GameDays::Unavailable {
            reason: "GameDaysMissing",
            message: "ConfigMap nba/nba-game-days does not exist".into(),
        }),
        ..Observed::default()
    };
    let p = plan(&b, &unreadable, at(T0 + 1));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.state, Some(BackfillState::Blocked));
    let blocked = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Blocked")
        .unwrap();
    assert_eq!(blocked.reason, "GameDaysMissing");
    assert!(
        blocked.message.contains("nba-game-days does not exist"),
        "{}",
        blocked.message
    );
}
