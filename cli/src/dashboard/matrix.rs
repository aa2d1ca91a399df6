//! The season matrix `tipoff dashboard` draws: one column per calendar day, one row for the run
//! and one per phase, each cell a state with the flags that qualify it.
//!
//! Pure: a function of the runs, their PhaseCompletions, the game-day list and `now`, so every
//! state is tested with hand-built objects. The server only gathers the inputs.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use kube::ResourceExt;
use serde::Serialize;
use tipoff_crds::game_days::GameDays;
use tipoff_crds::pipeline_backfill::LABEL_BACKFILL;
use tipoff_crds::{Mode, PhaseCompletion, PhaseState, PipelineRun, RunState, children};

/// The phases a run has (rows of the matrix after the run row).
pub const PHASES: u8 = 6;

/// What one cell shows. Every state has its own colour and symbol on the page
/// (`docs/dashboard.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CellState {
    /// Waiting for an earlier phase (or no Job yet).
    Pending,
    /// A processor is live or waiting for its retry.
    Running,
    /// Done.
    Succeeded,
    /// A required processor failed for good, or the deadline passed.
    Failed,
    /// Cannot go on without a change (dependency check, blocking gate, drift, suspended).
    Blocked,
    /// Not part of the run (its subset).
    Skipped,
    /// A processor ran other code than the run pinned.
    Drifted,
    /// Still Pending or Running after the date's expected finish.
    Late,
    /// A game day without any PipelineRun.
    NoRun,
    /// A day without games (in the game-day list's range, not listed).
    NoGames,
    /// No game-day list covers this day: whether it had games is unknown.
    Unlisted,
}

/// A flag that qualifies a cell's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Flag {
    /// It took more than one attempt (or an earlier run of the date failed): a mixed result.
    Retried,
    /// Finished, or still blocked, after the expected time.
    Late,
    /// Drift was found, though another state is shown (e.g. Failed).
    Drift,
}

/// One cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// The state.
    pub state: CellState,
    /// Flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// One line for people (tooltip and screen readers).
    pub note: String,
}

impl Cell {
    fn new(state: CellState, note: impl Into<String>) -> Self {
        Self {
            state,
            flags: Vec::new(),
            note: note.into(),
        }
    }
}

/// Whether a day had games.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DayKind {
    /// Listed as a game day.
    Game,
    /// Within the list's range and not listed.
    NoGames,
    /// No list covers it.
    Unlisted,
}

/// The run shown for a date.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    /// Its name.
    pub name: String,
    /// Its mode (`production`, `same-day`, `backfill`).
    pub mode: String,
    /// Its state.
    pub state: String,
    /// `processors succeeded/expected`.
    pub progress: String,
    /// `schedule/<name>` or `backfill/<name>`, if an object created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Created by a PipelineBackfill (or a run in backfill mode).
    pub backfill: bool,
    /// Rows written per table.
    pub rows_written: BTreeMap<String, i64>,
    /// Retries used.
    pub retries: u32,
    /// The run's one-line account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DateColumn {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Whether it had games.
    pub day: DayKind,
    /// The run shown (Production, else the newest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRef>,
    /// The date's other runs, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_runs: Vec<String>,
    /// The run row, then phases 1 to 6.
    pub cells: Vec<Cell>,
}

/// A phase row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseRow {
    /// 1-6.
    pub number: u8,
    /// Its name from the runs' status (`phase N` when no run has it).
    pub name: String,
}

/// What the game-day list says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GameDaysNote {
    /// Whether a list was read.
    pub listed: bool,
    /// How far it is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    /// Why there is none, or what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The whole page's data.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    /// The namespace shown.
    pub namespace: String,
    /// When it was computed (RFC 3339).
    pub now: String,
    /// The phase rows.
    pub phases: Vec<PhaseRow>,
    /// The columns, oldest first.
    pub dates: Vec<DateColumn>,
    /// The game-day list.
    pub game_days: GameDaysNote,
}

/// When a date's run is expected to have finished: the day after the game date at
/// `expected_by` in `tz` (Production runs the next morning).
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Local time on the day after the game date.
    pub expected_by: Time,
    /// The time zone of game dates.
    pub tz: TimeZone,
}

impl Expectation {
    /// The instant `date`'s run should be finished by.
    pub fn deadline(&self, date: Date) -> Option<Timestamp> {
        let next = date.tomorrow().ok()?;
        next.to_datetime(self.expected_by)
            .to_zoned(self.tz.clone())
            .ok()
            .map(|z| z.timestamp())
    }
}

/// The run shown for a date among its runs: the Production run, else the newest.
fn pick<'a>(runs: &[&'a PipelineRun]) -> Option<&'a PipelineRun> {
    runs.iter()
        .find(|r| r.spec.mode == Mode::Production)
        .or(runs.last())
        .copied()
}

fn is_backfill(run: &PipelineRun) -> bool {
    run.labels().contains_key(LABEL_BACKFILL) || run.spec.mode == Mode::Backfill
}

/// Builds the matrix. Without an expectation nothing is Late (the demo replays past dates).
pub fn build(
    namespace: &str,
    runs: &[PipelineRun],
    phase_completions: &[PhaseCompletion],
    game_days: Option<&GameDays>,
    expectation: Option<&Expectation>,
    now: Timestamp,
) -> Matrix {
    let mut by_date: BTreeMap<Date, Vec<&PipelineRun>> = BTreeMap::new();
    let mut sorted: Vec<&PipelineRun> = runs.iter().collect();
    sorted.sort_by_key(|r| {
        (
            r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            r.name_any(),
        )
    });
    for run in sorted {
        if let Ok(d) = run.spec.date.parse::<Date>() {
            by_date.entry(d).or_default().push(run);
        }
    }
    let (listed, through, note) = match game_days {
        Some(GameDays::Listed { dates, through }) => (
            dates.clone(),
            Some(*through),
            GameDaysNote {
                listed: true,
                through: Some(through.to_string()),
                message: None,
            },
        ),
        Some(GameDays::Unavailable { message, .. }) => (
            BTreeSet::new(),
            None,
            GameDaysNote {
                listed: false,
                through: None,
                message: Some(message.clone()),
            },
        ),
        None => (
            BTreeSet::new(),
            None,
            GameDaysNote {
                listed: false,
                through: None,
                message: Some(format!(
                    "no ConfigMap labelled {} in namespace {namespace}: days without a run cannot be told from days without games (docs/schedule.md)",
                    tipoff_crds::game_days::LABEL_GAME_DAYS
                )),
            },
        ),
    };
    let first = [listed.first(), by_date.keys().next()]
        .into_iter()
        .flatten()
        .min()
        .copied();
    let last = [listed.last(), by_date.keys().next_back()]
        .into_iter()
        .flatten()
        .max()
        .copied();
    let phases = phase_rows(runs);
    let mut dates = Vec::new();
    if let (Some(first), Some(last)) = (first, last) {
        for day in first.series(jiff::Span::new().days(1)) {
            if day > last {
                break;
            }
            let kind = if listed.contains(&day) {
                DayKind::Game
            } else if through.is_some_and(|t| day <= t) && listed.first().is_some_and(|f| day >= *f)
            {
                DayKind::NoGames
            } else {
                DayKind::Unlisted
            };
            let runs_of_day = by_date.get(&day).map(Vec::as_slice).unwrap_or_default();
            dates.push(column(
                day,
                kind,
                runs_of_day,
                phase_completions,
                expectation,
                now,
            ));
        }
    }
    Matrix {
        namespace: namespace.to_owned(),
        now: now.to_string(),
        phases,
        dates,
        game_days: note,
    }
}

fn phase_rows(runs: &[PipelineRun]) -> Vec<PhaseRow> {
    (1..=PHASES)
        .map(|n| PhaseRow {
            number: n,
            name: runs
                .iter()
                .filter_map(|r| r.status.as_ref())
                .flat_map(|s| s.phases.iter())
                .find(|p| p.phase == n)
                .map_or_else(|| format!("phase {n}"), |p| p.name.clone()),
        })
        .collect()
}

fn column(
    day: Date,
    kind: DayKind,
    runs: &[&PipelineRun],
    pcs: &[PhaseCompletion],
    expectation: Option<&Expectation>,
    now: Timestamp,
) -> DateColumn {
    let date = day.to_string();
    let Some(run) = pick(runs) else {
        let cell = match kind {
            DayKind::Game => Cell::new(CellState::NoRun, format!("{date}: game day, no run")),
            DayKind::NoGames => Cell::new(CellState::NoGames, format!("{date}: no games")),
            DayKind::Unlisted => Cell::new(
                CellState::Unlisted,
                format!("{date}: no run; not in a game-day list"),
            ),
        };
        return DateColumn {
            date,
            day: kind,
            run: None,
            other_runs: Vec::new(),
            cells: vec![cell; usize::from(PHASES) + 1],
        };
    };
    let name = run.name_any();
    let status = run.status.clone().unwrap_or_default();
    let run_state = status.state.unwrap_or(RunState::Pending);
    let deadline = expectation.and_then(|e| e.deadline(day));
    // An ended run's unreached phases are not late: they will not run.
    let past_due = !run_state.is_terminal() && deadline.is_some_and(|d| now > d);
    let finished_late = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| matches!((t, deadline), (Some(t), Some(d)) if t.0 > d);
    let run_pcs: Vec<&PhaseCompletion> = pcs.iter().filter(|pc| pc.spec.run == name).collect();
    let drifted: BTreeSet<&str> = status.drift.iter().map(|d| d.processor.as_str()).collect();
    let earlier_failed = runs.iter().any(|r| {
        r.name_any() != name
            && r.status
                .as_ref()
                .and_then(|s| s.state)
                .is_some_and(|s| s == RunState::Failed)
    });

    // The run row.
    let mut run_cell = {
        let note = format!(
            "{date}: run {name} {} ({} processors succeeded)",
            run_state.as_str(),
            status.progress.as_deref().unwrap_or("0/0")
        );
        let state = match run_state {
            RunState::Pending => CellState::Pending,
            RunState::Running => CellState::Running,
            RunState::Blocked | RunState::Suspended => CellState::Blocked,
            RunState::Succeeded => CellState::Succeeded,
            RunState::Failed => CellState::Failed,
        };
        Cell::new(state, note)
    };
    late(
        &mut run_cell,
        past_due,
        finished_late(status.completion_time.as_ref()),
    );
    if !drifted.is_empty() {
        mark_drift(&mut run_cell, &drifted);
    }
    if status.summary.as_ref().is_some_and(|s| s.retries > 0) || earlier_failed {
        run_cell.flags.push(Flag::Retried);
    }

    let mut cells = vec![run_cell];
    for n in 1..=PHASES {
        let summary = status.phases.iter().find(|p| p.phase == n);
        let pc = run_pcs.iter().find(|pc| pc.spec.phase == n);
        let phase_name = summary.map_or_else(|| format!("phase {n}"), |s| s.name.clone());
        let state = summary.map_or(
            if run_state.is_terminal() {
                PhaseState::Skipped
            } else {
                PhaseState::Pending
            },
            |s| s.state,
        );
        let progress = summary
            .map(|s| format!(" ({}/{})", s.done, s.expected))
            .unwrap_or_default();
        let mut cell = Cell::new(
            match state {
                PhaseState::Pending => CellState::Pending,
                PhaseState::Running => CellState::Running,
                PhaseState::Blocked => CellState::Blocked,
                PhaseState::Succeeded => CellState::Succeeded,
                PhaseState::Failed => CellState::Failed,
                PhaseState::Skipped => CellState::Skipped,
            },
            format!("{date}: phase {n} {phase_name} {state:?}{progress}"),
        );
        if state != PhaseState::Skipped {
            late(
                &mut cell,
                past_due,
                finished_late(summary.and_then(|s| s.completion_time.as_ref())),
            );
        }
        if let Some(pc) = pc {
            let pcs = pc.status.clone().unwrap_or_default();
            let in_phase: BTreeSet<&str> = drifted
                .iter()
                .copied()
                .filter(|p| pc.spec.expected.iter().any(|e| e == p))
                .collect();
            if !in_phase.is_empty() {
                mark_drift(&mut cell, &in_phase);
            }
            let retried = pcs.completed.iter().any(|r| r.attempt > 1)
                || pcs.running.iter().any(|r| r.attempt > 1)
                || (!pcs.failed.is_empty() && state != PhaseState::Failed);
            if retried {
                cell.flags.push(Flag::Retried);
            }
        }
        cells.push(cell);
    }
    for c in &mut cells {
        c.flags.sort();
        c.flags.dedup();
    }
    let summary = status.summary.clone().unwrap_or_default();
    DateColumn {
        date,
        day: kind,
        run: Some(RunRef {
            name: name.clone(),
            mode: run.spec.mode.as_arg().to_owned(),
            state: run_state.as_str().to_owned(),
            progress: status.progress.clone().unwrap_or_else(|| "0/0".to_owned()),
            created_by: children::created_by(run.labels()),
            backfill: is_backfill(run),
            rows_written: summary.rows_written,
            retries: summary.retries,
            message: summary.message,
        }),
        other_runs: runs
            .iter()
            .map(|r| r.name_any())
            .filter(|n| *n != name)
            .collect(),
        cells,
    }
}

/// Drifted replaces the states in which the code that ran is what matters (it ran, or is
/// held for it); a Failed or Pending cell keeps its state with the drift flag.
fn mark_drift(cell: &mut Cell, processors: &BTreeSet<&str>) {
    let list = processors.iter().copied().collect::<Vec<_>>().join(", ");
    match cell.state {
        CellState::Succeeded | CellState::Blocked | CellState::Running => {
            cell.note = format!("{}; drifted: {list}", cell.note);
            cell.state = CellState::Drifted;
        }
        _ => {
            cell.note = format!("{}; drift in {list}", cell.note);
            cell.flags.push(Flag::Drift);
        }
    }
}

/// Pending or Running past the expected time is Late; a cell that finished after it, or is
/// Blocked past it, keeps its state with the late flag. (Applied before drift.)
fn late(cell: &mut Cell, past_due: bool, finished_late: bool) {
    match cell.state {
        CellState::Pending | CellState::Running if past_due => {
            cell.note = format!("{}; late: not finished by the expected time", cell.note);
            cell.state = CellState::Late;
        }
        CellState::Blocked if past_due => cell.flags.push(Flag::Late),
        CellState::Succeeded | CellState::Failed if finished_late => {
            cell.flags.push(Flag::Late);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
