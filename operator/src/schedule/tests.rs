//! Table tests of the schedule planner, with an injected clock.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, date};
use tipoff_crds::{
    ConcurrencyPolicy, MissReason, Mode, PipelineSchedule, PipelineScheduleSpec, Release, RunState,
    SkipReason,
};

use super::*;

fn schedule(edit: impl FnOnce(&mut PipelineScheduleSpec)) -> PipelineSchedule {
    let mut spec: PipelineScheduleSpec = serde_json::from_value(serde_json::json!({
        "gameDays": {"configMap": "games"},
        "release": Release::pinned("ghcr.io/tipoff/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "c4f8f339"),
        "startDate": "2026-01-01",
    }))
    .unwrap();
    edit(&mut spec);
    let mut s = PipelineSchedule::new("nba", spec);
    s.metadata.namespace = Some("default".into());
    s.metadata.generation = Some(1);
    s
}

fn listed(dates: &[Date], through: Date) -> GameDays {
    GameDays::Listed {
        dates: dates.iter().copied().collect::<BTreeSet<_>>(),
        through,
    }
}

/// Every day of January and early February 2026 is a game day except the 3rd and the 10th.
fn season() -> GameDays {
    let mut dates = Vec::new();
    let mut d = date(2026, 1, 1);
    while d <= date(2026, 2, 10) {
        if d != date(2026, 1, 3) && d != date(2026, 1, 10) {
            dates.push(d);
        }
        d = d.tomorrow().unwrap();
    }
    listed(&dates, date(2026, 2, 10))
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn own(date: &str, state: Option<RunState>) -> RunFacts {
    RunFacts {
        name: run_name("nba", date, Mode::Production),
        date: date.into(),
        mode: Mode::Production,
        own: true,
        state,
    }
}

/// A succeeded own run for every game day of [`season`] up to `last`.
fn history(last: &str) -> Vec<RunFacts> {
    let GameDays::Listed { dates, .. } = season() else {
        unreachable!()
    };
    dates
        .iter()
        .map(ToString::to_string)
        .filter(|d| d.as_str() <= last)
        .map(|d| own(&d, Some(RunState::Succeeded)))
        .collect()
}

fn observed(game_days: GameDays, runs: Vec<RunFacts>) -> Observed {
    Observed { game_days, runs }
}

fn created(plan: &SchedulePlan) -> Vec<(String, Mode)> {
    plan.runs
        .iter()
        .map(|r| (r.date.clone(), r.spec.mode))
        .collect()
}

/// Applies a plan's runs (as Succeeded at once when `finish`), as the controller would.
fn apply(runs: &mut Vec<RunFacts>, plan: &SchedulePlan, finish: bool) {
    for r in &plan.runs {
        runs.push(RunFacts {
            name: r.name.clone(),
            date: r.date.clone(),
            mode: r.spec.mode,
            own: true,
            state: finish.then_some(RunState::Succeeded),
        });
    }
}

#[test]
fn the_production_run_of_a_game_date_is_due_the_next_morning_in_new_york() {
    let s = schedule(|_| {});
    // 2026-01-29 06:00 America/New_York (EST) is 11:00 UTC on the 30th.
    let before = plan(
        &s,
        &observed(season(), history("2026-01-28")),
        at("2026-01-30T10:59:59Z"),
    );
    assert!(before.runs.is_empty());
    let st = &before.status;
    assert_eq!(st.next_scheduled_date.as_deref(), Some("2026-01-29"));
    assert_eq!(
        st.next_schedule_time.as_ref().unwrap().0,
        at("2026-01-30T11:00:00Z")
    );
    assert_eq!(
        before.requeue_after,
        Duration::from_secs(1),
        "requeued at the instant"
    );

    let after = plan(
        &s,
        &observed(season(), history("2026-01-28")),
        at("2026-01-30T11:00:00Z"),
    );
    assert_eq!(created(&after), [("2026-01-29".into(), Mode::Production)]);
    let run = &after.runs[0];
    assert_eq!(run.name, "nba-2026-01-29");
    assert_eq!(run.labels[LABEL_SCHEDULE], "nba");
    assert_eq!(run.labels[LABEL_DATE], "2026-01-29");
    assert_eq!(
        after.status.last_scheduled_date.as_deref(),
        Some("2026-01-29")
    );
    assert!(after.events.iter().any(|e| e.reason == "RunCreated"));
}

#[test]
fn the_requeue_is_the_next_due_instant_capped_by_the_resync() {
    let s = schedule(|_| {});
    let runs = history("2026-01-28");
    for (now, want) in [
        ("2026-01-30T10:59:59.5Z", Duration::from_millis(500)),
        ("2026-01-30T10:58:00Z", Duration::from_secs(120)),
        ("2026-01-30T09:00:00Z", Duration::from_secs(RESYNC_SECS)),
    ] {
        let p = plan(&s, &observed(season(), runs.clone()), at(now));
        assert_eq!(p.requeue_after, want, "at {now}");
        assert_eq!(p.next_due, Some(at("2026-01-30T11:00:00Z")));
    }
}

#[test]
fn a_day_without_games_gets_no_run_and_is_listed_as_skipped() {
    let s = schedule(|_| {});
    // The 3rd has no games: its Production slot (the 4th, 06:00 EST) passes with no run.
    let runs = history("2026-01-02");
    let p = plan(&s, &observed(season(), runs), at("2026-01-04T12:00:00Z"));
    assert!(p.runs.is_empty(), "{:?}", created(&p));
    let skipped: Vec<_> = p
        .status
        .skipped
        .iter()
        .map(|k| (k.date.as_str(), k.reason))
        .collect();
    assert_eq!(skipped, [("2026-01-03", SkipReason::NoGames)]);
    assert!(p.events.iter().any(|e| e.reason == "DateSkipped"));
    assert_eq!(p.status.next_scheduled_date.as_deref(), Some("2026-01-04"));
}

#[test]
fn catch_up_creates_every_missed_game_day_in_the_window_oldest_first_and_lists_older_ones() {
    // Seed 003: the operator was down from the morning of Jan 27 until Jan 30 at 12:00 UTC.
    // Due while it was down: 26th (27th 11:00Z), 27th, 28th, 29th (30th 11:00Z).
    let s = schedule(|s| s.concurrency_policy = ConcurrencyPolicy::Allow);
    let runs = history("2026-01-25");
    let p = plan(&s, &observed(season(), runs), at("2026-01-30T12:00:00Z"));
    // The window is 72h: the 27th 11:00Z is outside it, the 28th 11:00Z inside.
    assert_eq!(
        created(&p),
        [
            ("2026-01-27".into(), Mode::Production),
            ("2026-01-28".into(), Mode::Production),
            ("2026-01-29".into(), Mode::Production),
        ]
    );
    let missed: Vec<_> = p
        .status
        .missed
        .iter()
        .map(|m| (m.date.as_str(), m.reason))
        .collect();
    assert_eq!(missed, [("2026-01-26", MissReason::OutsideCatchUpWindow)]);
    assert_eq!(p.status.missed_count, 1);
    let warning = p.events.iter().find(|e| e.reason == "RunMissed").unwrap();
    assert!(warning.warning && warning.message.contains("2026-01-26"));
}

#[test]
fn under_forbid_catch_up_runs_one_date_at_a_time_oldest_first_and_never_twice() {
    let s = schedule(|_| {});
    let mut runs = history("2026-01-25");
    let now = at("2026-01-30T12:00:00Z");
    let mut order = Vec::new();
    for _ in 0..6 {
        let p = plan(&s, &observed(season(), runs.clone()), now);
        assert!(p.runs.len() <= 1);
        // A run just created is in flight: the next plan waits for it.
        apply(&mut runs, &p, false);
        let waiting = plan(&s, &observed(season(), runs.clone()), now);
        assert!(waiting.runs.is_empty(), "waits for the run in flight");
        if let Some(r) = p.runs.first() {
            order.push(r.date.clone());
            assert!(waiting.status.overdue > 0 || order.len() == 3);
        }
        for r in &mut runs {
            r.state = Some(RunState::Succeeded);
        }
    }
    assert_eq!(order, ["2026-01-27", "2026-01-28", "2026-01-29"]);
}

#[test]
fn max_catch_up_keeps_the_latest_due_game_days() {
    let s = schedule(|s| {
        s.concurrency_policy = ConcurrencyPolicy::Allow;
        s.catch_up_window = "240h".into();
        s.max_catch_up = 2;
    });
    let runs = history("2026-01-25");
    let p = plan(&s, &observed(season(), runs), at("2026-01-30T12:00:00Z"));
    assert_eq!(
        created(&p),
        [
            ("2026-01-28".into(), Mode::Production),
            ("2026-01-29".into(), Mode::Production),
        ]
    );
    let missed: Vec<_> = p
        .status
        .missed
        .iter()
        .map(|m| (m.date.as_str(), m.reason))
        .collect();
    assert_eq!(
        missed,
        [
            ("2026-01-27", MissReason::BeyondMaxCatchUp),
            ("2026-01-26", MissReason::BeyondMaxCatchUp),
        ]
    );
}

#[test]
fn suspended_creates_nothing_counts_overdue_then_catches_up_when_resumed() {
    let suspended = schedule(|s| s.suspend = true);
    let runs = history("2026-01-28");
    let p = plan(
        &suspended,
        &observed(season(), runs.clone()),
        at("2026-01-31T12:00:00Z"),
    );
    assert!(p.runs.is_empty());
    assert_eq!(p.status.overdue, 2, "the 29th and the 30th are due");
    let ready = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "Suspended");
    let resumed = schedule(|s| s.concurrency_policy = ConcurrencyPolicy::Allow);
    let p = plan(
        &resumed,
        &observed(season(), runs),
        at("2026-01-31T12:00:00Z"),
    );
    assert_eq!(p.runs.len(), 2);
    assert_eq!(p.status.overdue, 0);
}

#[test]
fn a_date_with_a_run_from_anyone_is_covered_and_already_existing_is_done() {
    let s = schedule(|_| {});
    let mut runs = history("2026-01-28");
    // Someone applied the 29th by hand (tipoff run): the schedule leaves the date alone.
    runs.push(RunFacts {
        name: "nba-manual-2026-01-29".into(),
        date: "2026-01-29".into(),
        mode: Mode::Production,
        own: false,
        state: Some(RunState::Running),
    });
    let p = plan(&s, &observed(season(), runs), at("2026-01-30T12:00:00Z"));
    assert!(p.runs.is_empty());
    assert_eq!(p.status.next_scheduled_date.as_deref(), Some("2026-01-30"));
}

#[test]
fn a_same_day_run_is_due_on_its_day_and_missed_once_the_day_is_over() {
    let s = schedule(|s| {
        s.same_day_time = Some("10:00".into());
        s.concurrency_policy = ConcurrencyPolicy::Allow;
    });
    let runs = history("2026-01-28");
    // Jan 29 15:00Z is 10:00 EST on the 29th.
    let p = plan(
        &s,
        &observed(season(), runs.clone()),
        at("2026-01-29T15:00:00Z"),
    );
    assert_eq!(created(&p), [("2026-01-29".into(), Mode::SameDay)]);
    assert_eq!(p.runs[0].name, "nba-2026-01-29-sameday");
    // Down all of the 29th: on the 30th the SameDay run is missed, the Production run created.
    let p = plan(&s, &observed(season(), runs), at("2026-01-30T12:00:00Z"));
    assert_eq!(created(&p), [("2026-01-29".into(), Mode::Production)]);
    assert!(p.status.missed.iter().any(|m| m.date == "2026-01-29"
        && m.mode == Mode::SameDay
        && m.reason == MissReason::DayOver));
}

/// Walks `now` across `[from, to)` in steps, applying each plan, and returns each date's runs.
fn walk(s: &PipelineSchedule, games: &GameDays, from: &str, to: &str, step: i64) -> Vec<String> {
    let mut runs = Vec::new();
    let mut now = at(from);
    let end = at(to);
    while now < end {
        let p = plan(s, &observed(games.clone(), runs.clone()), now);
        apply(&mut runs, &p, true);
        now = now
            .checked_add(jiff::SignedDuration::from_mins(step))
            .unwrap();
    }
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a run planned twice: {names:?}");
    runs.into_iter().map(|r| r.date).collect()
}

#[test]
fn dst_spring_forward_neither_skips_nor_doubles_a_date() {
    // 2026-03-08 02:00 EST jumps to 03:00 EDT in New York: 02:30 does not exist that day.
    let s = schedule(|s| {
        s.production_time = "02:30".into();
        s.start_date = Some("2026-03-05".into());
    });
    assert_eq!(
        due(
            date(2026, 3, 7),
            Mode::Production,
            &parse_times(&s).unwrap()
        ),
        Some(at("2026-03-08T07:30:00Z")),
        "03:30 EDT, just after the jump"
    );
    let games = listed(
        &[
            date(2026, 3, 5),
            date(2026, 3, 6),
            date(2026, 3, 7),
            date(2026, 3, 8),
            date(2026, 3, 9),
        ],
        date(2026, 3, 12),
    );
    let dates = walk(
        &s,
        &games,
        "2026-03-06T00:00:00Z",
        "2026-03-11T00:00:00Z",
        10,
    );
    assert_eq!(
        dates,
        [
            "2026-03-05",
            "2026-03-06",
            "2026-03-07",
            "2026-03-08",
            "2026-03-09"
        ]
    );
}

#[test]
fn dst_fall_back_neither_skips_nor_doubles_a_date() {
    // 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice that day.
    let s = schedule(|s| {
        s.production_time = "01:30".into();
        s.start_date = Some("2026-10-29".into());
    });
    let times = parse_times(&s).unwrap();
    assert_eq!(
        due(date(2026, 10, 31), Mode::Production, &times),
        Some(at("2026-11-01T05:30:00Z")),
        "the first 01:30 (EDT)"
    );
    assert_eq!(
        due(date(2026, 11, 1), Mode::Production, &times),
        Some(at("2026-11-02T06:30:00Z")),
        "EST the day after"
    );
    let games = listed(
        &[
            date(2026, 10, 29),
            date(2026, 10, 30),
            date(2026, 10, 31),
            date(2026, 11, 1),
            date(2026, 11, 2),
        ],
        date(2026, 11, 5),
    );
    // Steps of 7 minutes cross both 01:30s.
    let dates = walk(
        &s,
        &games,
        "2026-10-30T00:00:00Z",
        "2026-11-04T00:00:00Z",
        7,
    );
    assert_eq!(
        dates,
        [
            "2026-10-29",
            "2026-10-30",
            "2026-10-31",
            "2026-11-01",
            "2026-11-02"
        ]
    );
}

#[test]
fn a_clock_that_jumps_back_does_not_create_a_date_again() {
    let s = schedule(|_| {});
    let mut runs = history("2026-01-28");
    let p = plan(
        &s,
        &observed(season(), runs.clone()),
        at("2026-01-30T12:00:00Z"),
    );
    apply(&mut runs, &p, true);
    assert_eq!(p.runs.len(), 1);
    // The clock goes back an hour, then forward again: nothing new.
    for now in [
        "2026-01-30T11:00:00Z",
        "2026-01-30T12:00:00Z",
        "2026-01-30T10:00:00Z",
    ] {
        assert!(
            plan(&s, &observed(season(), runs.clone()), at(now))
                .runs
                .is_empty(),
            "{now}"
        );
    }
}

#[test]
fn an_unknown_time_zone_or_a_missing_list_is_not_ready_and_creates_nothing() {
    let s = schedule(|s| s.time_zone = "America/Gotham".into());
    let p = plan(&s, &observed(season(), vec![]), at("2026-01-30T12:00:00Z"));
    assert!(p.runs.is_empty());
    let ready = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.is_true(), ready.reason.as_str()),
        (false, "InvalidTimeZone")
    );
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == "ReadyChanged" && e.warning)
    );

    let s = schedule(|_| {});
    let missing = GameDays::Unavailable {
        reason: "GameDaysMissing",
        message: "no ConfigMap games".into(),
    };
    let p = plan(&s, &observed(missing, vec![]), at("2026-01-30T12:00:00Z"));
    assert!(p.runs.is_empty());
    let ready = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "GameDaysMissing");
}

#[test]
fn dates_after_the_list_are_not_run_and_make_the_schedule_not_ready() {
    let s = schedule(|_| {});
    let games = listed(&[date(2026, 1, 28), date(2026, 1, 29)], date(2026, 1, 29));
    let runs = vec![
        own("2026-01-28", Some(RunState::Succeeded)),
        own("2026-01-29", Some(RunState::Succeeded)),
    ];
    let p = plan(&s, &observed(games, runs), at("2026-01-31T12:00:00Z"));
    assert!(p.runs.is_empty());
    assert!(
        p.status
            .skipped
            .iter()
            .any(|k| k.date == "2026-01-30" && k.reason == SkipReason::NotInGameDays)
    );
    let ready = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "GameDaysStale");
    assert_eq!(p.status.next_scheduled_date, None);
    assert_eq!(p.requeue_after, Duration::from_secs(RESYNC_SECS));
}

#[test]
fn old_ended_runs_beyond_the_history_limit_are_deleted_and_not_reported_missed() {
    let s = schedule(|s| s.successful_runs_history_limit = 3);
    let mut runs: Vec<RunFacts> = (11..=29)
        .filter(|d| *d != 3 && *d != 10)
        .map(|d| own(&format!("2026-01-{d:02}"), Some(RunState::Succeeded)))
        .collect();
    let now = at("2026-01-30T12:00:00Z");
    let p = plan(&s, &observed(season(), runs.clone()), now);
    // The 27th-29th are kept by the limit; older ones go (all outside the 72h window).
    assert_eq!(p.delete.len(), runs.len() - 3);
    assert!(!p.delete.contains(&"nba-2026-01-27".to_owned()));
    runs.retain(|r| !p.delete.contains(&r.name));
    let mut after = s.clone();
    after.status = Some(p.status.clone());
    let p = plan(&after, &observed(season(), runs), now);
    assert!(p.delete.is_empty());
    assert!(p.runs.is_empty());
    assert!(p.status.missed.is_empty(), "{:?}", p.status.missed);
}

#[test]
fn a_new_schedule_starts_the_day_before_its_creation() {
    let mut s = schedule(|s| s.start_date = None);
    s.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
        "2026-01-29T20:00:00Z",
    )));
    // Created on the 29th (local): the 28th is run (due the 29th 11:00Z), nothing earlier.
    let p = plan(&s, &observed(season(), vec![]), at("2026-01-29T20:00:00Z"));
    assert_eq!(created(&p), [("2026-01-28".into(), Mode::Production)]);
    assert!(p.status.missed.is_empty());
}

#[test]
fn an_unchanged_plan_writes_no_status_and_publishes_no_event() {
    let s = schedule(|_| {});
    let mut runs = history("2026-01-29");
    let now = at("2026-01-30T12:00:00Z");
    let first = plan(&s, &observed(season(), runs.clone()), now);
    runs.retain(|r| !first.delete.contains(&r.name));
    let mut again = s.clone();
    again.status = Some(first.status.clone());
    let second = plan(
        &again,
        &observed(season(), runs),
        at("2026-01-30T12:01:00Z"),
    );
    assert!(!second.status_changed, "{:#?}", second.status);
    assert!(second.events.is_empty(), "{:?}", second.events);
}

#[test]
fn times_and_windows_parse_strictly() {
    assert!(parse_time_of_day("06:00").is_ok());
    assert!(parse_time_of_day("6:00").is_err());
    assert!(parse_time_of_day("24:00").is_err());
    assert_eq!(
        parse_window("72h").unwrap(),
        jiff::SignedDuration::from_hours(72)
    );
    assert_eq!(
        parse_window("36h30m").unwrap(),
        jiff::SignedDuration::from_mins(36 * 60 + 30)
    );
    assert_eq!(
        parse_window("90m").unwrap(),
        jiff::SignedDuration::from_mins(90)
    );
    assert!(parse_window("0h").is_err());
    assert!(parse_window("3d").is_err());
}
