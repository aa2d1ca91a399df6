use serde_json::json;

use super::*;

fn expectation() -> Expectation {
    Expectation {
        expected_by: Time::constant(9, 0, 0, 0),
        tz: TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC),
    }
}

fn run(
    name: &str,
    date: &str,
    mode: &str,
    labels: serde_json::Value,
    status: serde_json::Value,
) -> PipelineRun {
    serde_json::from_value(json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "labels": labels, "creationTimestamp": format!("{date}T12:00:00Z")},
        "spec": {"date": date, "mode": mode, "release": {"image": "r@sha256:00", "commit": "c0ffee0"}},
        "status": status,
    }))
    .unwrap()
}

fn phases(states: &[&str]) -> serde_json::Value {
    json!(states
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"phase": i + 1, "name": format!("p{}", i + 1), "state": s, "done": 1, "expected": 1}))
        .collect::<Vec<_>>())
}

fn pc(run: &str, phase: u8, expected: &[&str], status: serde_json::Value) -> PhaseCompletion {
    serde_json::from_value(json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PhaseCompletion",
        "metadata": {"name": format!("{run}-p{phase}")},
        "spec": {"run": run, "date": "2026-01-14", "phase": phase, "phaseName": "x", "expected": expected},
        "status": status,
    }))
    .unwrap()
}

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

fn listed(dates: &[&str], through: &str) -> GameDays {
    GameDays::Listed {
        dates: dates.iter().map(|s| d(s)).collect(),
        through: d(through),
    }
}

fn states(col: &DateColumn) -> Vec<CellState> {
    col.cells.iter().map(|c| c.state).collect()
}

const LATER: &str = "2026-03-01T00:00:00Z";

#[test]
fn game_days_without_runs_are_no_run_and_days_without_games_are_distinct() {
    let gd = listed(&["2026-01-12", "2026-01-13", "2026-01-15"], "2026-01-16");
    let runs = [run(
        "nba-2026-01-12",
        "2026-01-12",
        "Production",
        json!({}),
        json!({"state": "Succeeded", "phases": phases(&["Succeeded"; 6])}),
    )];
    let m = build(
        "ns",
        &runs,
        &[],
        Some(&gd),
        Some(&expectation()),
        LATER.parse().unwrap(),
    );
    let by: BTreeMap<&str, &DateColumn> = m.dates.iter().map(|c| (c.date.as_str(), c)).collect();
    assert_eq!(
        m.dates.iter().map(|c| c.date.as_str()).collect::<Vec<_>>(),
        ["2026-01-12", "2026-01-13", "2026-01-14", "2026-01-15"],
        "every calendar day from the first to the last date"
    );
    assert_eq!(states(by["2026-01-12"]), vec![CellState::Succeeded; 7]);
    assert_eq!(states(by["2026-01-13"]), vec![CellState::NoRun; 7]);
    assert_eq!(by["2026-01-14"].day, DayKind::NoGames);
    assert_eq!(states(by["2026-01-14"]), vec![CellState::NoGames; 7]);
    assert_eq!(states(by["2026-01-15"]), vec![CellState::NoRun; 7]);
    assert_eq!(m.phases[0].name, "p1");
}

#[test]
fn without_a_list_a_day_without_a_run_is_unlisted_and_the_note_says_why() {
    let runs = [
        run(
            "a",
            "2026-01-12",
            "Production",
            json!({}),
            json!({"state": "Succeeded"}),
        ),
        run(
            "b",
            "2026-01-14",
            "Production",
            json!({}),
            json!({"state": "Succeeded"}),
        ),
    ];
    let m = build(
        "ns",
        &runs,
        &[],
        None,
        Some(&expectation()),
        LATER.parse().unwrap(),
    );
    assert_eq!(m.dates[1].cells[0].state, CellState::Unlisted);
    assert!(!m.game_days.listed);
    assert!(
        m.game_days
            .message
            .as_deref()
            .unwrap_or("")
            .contains("tipoff.dev/game-days")
    );
}

#[test]
fn phase_states_map_one_to_one_and_a_terminal_run_without_a_phase_skips_it() {
    let runs = [run(
        "r",
        "2026-01-14",
        "Production",
        json!({}),
        json!({"state": "Failed", "phases": phases(&["Succeeded", "Failed", "Blocked", "Skipped", "Pending"])}),
    )];
    let m = build(
        "ns",
        &runs,
        &[],
        None,
        Some(&expectation()),
        "2026-01-14T20:00:00Z".parse().unwrap(),
    );
    assert_eq!(
        states(&m.dates[0]),
        [
            CellState::Failed,
            CellState::Succeeded,
            CellState::Failed,
            CellState::Blocked,
            CellState::Skipped,
            CellState::Pending,
            CellState::Skipped,
        ]
    );
}

#[test]
fn drift_marks_the_phase_of_the_processor_that_ran_other_code() {
    let runs = [run(
        "r",
        "2026-01-14",
        "Production",
        json!({}),
        json!({
            "state": "Succeeded",
            "phases": phases(&["Succeeded"; 6]),
            "drift": [{"processor": "scrape", "attempt": 1, "field": "Commit", "pinned": "c0ffee0", "observed": "bad"}],
        }),
    )];
    let pcs = [
        pc("r", 1, &["scrape"], json!({})),
        pc("r", 2, &["other"], json!({})),
    ];
    let m = build(
        "ns",
        &runs,
        &pcs,
        None,
        Some(&expectation()),
        LATER.parse().unwrap(),
    );
    let s = states(&m.dates[0]);
    assert_eq!(s[0], CellState::Drifted, "the run row");
    assert_eq!(s[1], CellState::Drifted, "phase 1 ran scrape");
    assert_eq!(s[2], CellState::Succeeded, "phase 2 did not");
    assert!(m.dates[0].cells[1].note.contains("scrape"));
}

#[test]
fn unfinished_past_the_expected_time_is_late_and_before_it_is_not() {
    let runs = [run(
        "r",
        "2026-01-14",
        "Production",
        json!({}),
        json!({"state": "Running", "phases": phases(&["Succeeded", "Running", "Pending"])}),
    )];
    // 09:00 New York on the 15th is 14:00 UTC.
    let before = build(
        "ns",
        &runs,
        &[],
        None,
        Some(&expectation()),
        "2026-01-15T13:59:00Z".parse().unwrap(),
    );
    assert_eq!(
        &states(&before.dates[0])[..4],
        [
            CellState::Running,
            CellState::Succeeded,
            CellState::Running,
            CellState::Pending
        ]
    );
    let after = build(
        "ns",
        &runs,
        &[],
        None,
        Some(&expectation()),
        "2026-01-15T14:01:00Z".parse().unwrap(),
    );
    assert_eq!(
        &states(&after.dates[0])[..4],
        [
            CellState::Late,
            CellState::Succeeded,
            CellState::Late,
            CellState::Late
        ]
    );
    // Without an expectation (the demo's replays) nothing is Late.
    let none = build(
        "ns",
        &runs,
        &[],
        None,
        None,
        "2026-03-01T00:00:00Z".parse().unwrap(),
    );
    assert_eq!(none.dates[0].cells[0].state, CellState::Running);
}

#[test]
fn a_retry_that_succeeded_and_a_backfill_run_are_marked() {
    let runs = [run(
        "bf-2026-01-14",
        "2026-01-14",
        "Backfill",
        json!({"tipoff.dev/backfill": "bf"}),
        json!({"state": "Succeeded", "phases": phases(&["Succeeded"; 6]), "summary": {"retries": 1}}),
    )];
    let pcs = [pc(
        "bf-2026-01-14",
        2,
        &["p"],
        json!({"completed": [{"processor": "p", "attempt": 2, "job": "j"}]}),
    )];
    let m = build(
        "ns",
        &runs,
        &pcs,
        None,
        Some(&expectation()),
        LATER.parse().unwrap(),
    );
    let col = &m.dates[0];
    let run = col.run.as_ref().unwrap();
    assert!(run.backfill);
    assert_eq!(run.created_by.as_deref(), Some("backfill/bf"));
    assert_eq!(col.cells[0].flags, [Flag::Retried]);
    assert_eq!(col.cells[2].state, CellState::Succeeded);
    assert_eq!(col.cells[2].flags, [Flag::Retried]);
    assert!(col.cells[1].flags.is_empty());
}

#[test]
fn the_production_run_is_shown_and_the_others_listed() {
    let runs = [
        run(
            "nba-2026-01-14",
            "2026-01-14",
            "Production",
            json!({}),
            json!({"state": "Failed"}),
        ),
        run(
            "nba-2026-01-14-backfill",
            "2026-01-14",
            "Backfill",
            json!({}),
            json!({"state": "Succeeded"}),
        ),
    ];
    let m = build(
        "ns",
        &runs,
        &[],
        None,
        Some(&expectation()),
        LATER.parse().unwrap(),
    );
    let col = &m.dates[0];
    assert_eq!(col.run.as_ref().unwrap().name, "nba-2026-01-14");
    assert_eq!(col.other_runs, ["nba-2026-01-14-backfill"]);
    assert_eq!(col.cells[0].state, CellState::Failed);
}
