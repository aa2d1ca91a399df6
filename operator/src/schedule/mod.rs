//! The pure planner of `PipelineSchedule`: `plan(schedule, observed, now) -> SchedulePlan`.
//!
//! Given a schedule, the game-day list and the PipelineRuns of its namespace, it decides which
//! runs to create now, which old runs to delete, what status to write, which Events to emit
//! and when to look again. Like [`crate::planner`] it reads no clock and does no I/O.
//!
//! # Rules
//! - A *slot* is a game date and a mode. The Production slot of game date D is due at
//!   `productionTime` on D + 1 in `timeZone`; the SameDay slot (if `sameDayTime` is set) at
//!   `sameDayTime` on D. A local time that does not exist (DST spring-forward) is due just
//!   after the jump, one that occurs twice (fall-back) at its first occurrence (jiff's
//!   "compatible" rule), so each date has exactly one due instant: a DST change can neither
//!   skip nor double a date.
//! - A slot is *covered* when a run of its date exists in the namespace (for a Production
//!   slot, any run of the date that is not SameDay; for a SameDay slot, a SameDay run). Its
//!   run is named from the date ([`tipoff_crds::children::dated_run_name`]), so creating it
//!   twice is one run: restarts, two replicas and clock changes cannot double it.
//! - A due, uncovered Production slot is created when its due time is inside `catchUpWindow`
//!   and it is among the `maxCatchUp` latest due Production slots; otherwise it is *missed*.
//!   A SameDay slot is created only on its own day; after it, it is missed (`DayOver`).
//! - Slots are created oldest first. Under `Forbid` only while no run of the schedule is in
//!   flight, and one at a time; `suspend` creates none (they wait, counted as overdue).
//! - Dates before `startDate` (default: the day before the schedule's creation) are never
//!   scheduled. Missed dates are derived from the runs that exist, from `startDate` or the
//!   schedule's oldest run on, and remembered in status while they stay uncovered.
//! - Ended runs beyond the history limits are deleted once outside the catch-up window, so a
//!   deleted run's date can never be scheduled again.

/// The game-day list parser lives in `tipoff-crds`, shared with `tipoff dashboard`.
pub use tipoff_crds::game_days;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time as MetaTime;
use tipoff_crds::children::{LABEL_DATE, dated_run_name, owner_label};
use tipoff_crds::conditions::set_condition;
use tipoff_crds::pipeline_schedule::{LABEL_SCHEDULE, MAX_LISTED, SAME_DAY_SUFFIX};
use tipoff_crds::{
    ConcurrencyPolicy, Condition, ConditionStatus, MissReason, MissedRun, Mode, PipelineRunSpec,
    PipelineSchedule, PipelineScheduleStatus, RunState, ScheduledRun, SkipReason, SkippedDate,
};

pub use game_days::GameDays;

/// The longest the planner leaves a schedule unlooked-at (a clock that jumped, a game-day list
/// changed without its label).
pub const RESYNC_SECS: u64 = 300;
/// How many days back `status.skipped` looks.
const SKIPPED_DAYS: i64 = 14;
/// The most dates an Event names.
const NAMED: usize = 10;

/// A PipelineRun of the schedule's namespace, as the planner reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFacts {
    /// Its name.
    pub name: String,
    /// Its game date.
    pub date: String,
    /// Its mode.
    pub mode: Mode,
    /// Whether this schedule created it (owner reference).
    pub own: bool,
    /// Its state (`None` before its first status: in flight).
    pub state: Option<RunState>,
}

impl RunFacts {
    fn in_flight(&self) -> bool {
        !self.state.is_some_and(RunState::is_terminal)
    }
}

/// Everything that exists for one schedule.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The game-day list.
    pub game_days: GameDays,
    /// Every PipelineRun of the namespace (own and others).
    pub runs: Vec<RunFacts>,
}

/// A PipelineRun to create (creating one that exists is "done").
#[derive(Clone, Debug, PartialEq)]
pub struct RunIntent {
    /// Its deterministic name.
    pub name: String,
    /// Its game date.
    pub date: String,
    /// When it was due.
    pub due: Timestamp,
    /// Its spec.
    pub spec: PipelineRunSpec,
    /// Its labels (schedule, date).
    pub labels: BTreeMap<String, String>,
}

/// An Event to publish about the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleEvent {
    /// Warning rather than Normal.
    pub warning: bool,
    /// A fixed CamelCase category.
    pub reason: &'static str,
    /// The note.
    pub message: String,
}

/// Everything the operator should do for one schedule, now.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulePlan {
    /// Runs to create, oldest due first. The status already lists them.
    pub runs: Vec<RunIntent>,
    /// Its own ended runs to delete (history limits).
    pub delete: Vec<String>,
    /// The schedule's status.
    pub status: PipelineScheduleStatus,
    /// Whether it differs from the observed status (write only then).
    pub status_changed: bool,
    /// Events for transitions.
    pub events: Vec<ScheduleEvent>,
    /// The next due instant in the future, if the game-day list has one.
    pub next_due: Option<Timestamp>,
    /// When to plan again if nothing changes before: at the next due instant, at most
    /// [`RESYNC_SECS`] from now.
    pub requeue_after: Duration,
}

/// The spec's times, parsed.
#[derive(Clone, Debug)]
struct Times {
    tz: TimeZone,
    production: Time,
    same_day: Option<Time>,
    window: SignedDuration,
}

/// A date and mode with its due instant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    due: Timestamp,
    date: Date,
    mode: Mode,
}

/// `HH:MM` as a time of day.
pub fn parse_time_of_day(text: &str) -> Result<Time, String> {
    let bad = || format!("{text:?} is not a time of day written HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// A window written as hours and minutes (`72h`, `36h30m`, `90m`).
pub fn parse_window(text: &str) -> Result<SignedDuration, String> {
    let bad = || format!("{text:?} is not a duration written like 72h or 36h30m");
    let (hours, rest) = match text.split_once('h') {
        Some((h, rest)) => (h.parse::<i64>().map_err(|_| bad())?, rest),
        None => (0, text),
    };
    let minutes = match rest.strip_suffix('m') {
        Some(m) => m.parse::<i64>().map_err(|_| bad())?,
        None if rest.is_empty() => 0,
        None => return Err(bad()),
    };
    let total = hours.saturating_mul(60).saturating_add(minutes);
    if total <= 0 {
        return Err(format!("{text:?} is not more than zero"));
    }
    Ok(SignedDuration::from_mins(total))
}

/// The instant of local `time` on `date` in `tz` (spring-forward gaps resolve after the jump,
/// fall-back folds to the first occurrence).
pub fn local_instant(date: Date, time: Time, tz: &TimeZone) -> Option<Timestamp> {
    date.to_datetime(time)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// When the run of `date` in `mode` is due under `production` / `same_day` times.
fn due(date: Date, mode: Mode, times: &Times) -> Option<Timestamp> {
    match mode {
        Mode::SameDay => local_instant(date, times.same_day?, &times.tz),
        _ => local_instant(date.tomorrow().ok()?, times.production, &times.tz),
    }
}

fn parse_times(schedule: &PipelineSchedule) -> Result<Times, (&'static str, String)> {
    let spec = &schedule.spec;
    let tz = TimeZone::get(&spec.time_zone).map_err(|_| {
        (
            "InvalidTimeZone",
            format!(
                "timeZone {:?} is not a time zone the operator knows (IANA database); use a name such as America/New_York",
                spec.time_zone
            ),
        )
    })?;
    let invalid = |e: String| ("InvalidSpec", e);
    Ok(Times {
        tz,
        production: parse_time_of_day(&spec.production_time).map_err(invalid)?,
        same_day: spec
            .same_day_time
            .as_deref()
            .map(parse_time_of_day)
            .transpose()
            .map_err(invalid)?,
        window: parse_window(&spec.catch_up_window).map_err(invalid)?,
    })
}

/// The name of `schedule`'s run of `date` in `mode`.
pub fn run_name(schedule: &str, date: &str, mode: Mode) -> String {
    let suffix = if mode == Mode::SameDay {
        SAME_DAY_SUFFIX
    } else {
        ""
    };
    dated_run_name(schedule, date, suffix)
}

/// Plans one reconcile of `schedule` at `now`.
pub fn plan(schedule: &PipelineSchedule, observed: &Observed, now: Timestamp) -> SchedulePlan {
    let old = schedule.status.clone().unwrap_or_default();
    let name = schedule.metadata.name.clone().unwrap_or_default();
    let own: Vec<&RunFacts> = observed.runs.iter().filter(|r| r.own).collect();

    let mut status = PipelineScheduleStatus {
        observed_generation: schedule.metadata.generation,
        last_scheduled_date: own
            .iter()
            .filter(|r| r.mode != Mode::SameDay)
            .map(|r| r.date.clone())
            .max(),
        recent_runs: recent_runs(&own),
        conditions: old.conditions.clone(),
        ..PipelineScheduleStatus::default()
    };

    let mut runs = Vec::new();
    let mut delete = Vec::new();
    let mut next_due = None;
    let ready: (bool, &str, String) = match (parse_times(schedule), &observed.game_days) {
        (Err((reason, message)), _) => (false, reason, message),
        (Ok(_), GameDays::Unavailable { reason, message }) => (false, reason, message.clone()),
        (Ok(times), GameDays::Listed { dates, through }) => {
            let decided = decide(schedule, &times, dates, *through, observed, &old, now);
            status.next_scheduled_date = decided.next.as_ref().map(|s| s.date.to_string());
            status.next_scheduled_mode = decided.next.as_ref().map(|s| s.mode);
            status.next_schedule_time = decided.next.as_ref().map(|s| MetaTime(s.due));
            status.game_days_through = Some(through.to_string());
            status.overdue = decided.overdue;
            status.missed_count = u32::try_from(decided.missed.len()).unwrap_or(u32::MAX);
            status.missed = decided.missed.into_iter().take(MAX_LISTED).collect();
            status.skipped = decided.skipped;
            next_due = decided.next_future;
            delete = decided.delete;
            status.recent_runs.retain(|r| !delete.contains(&r.name));
            for slot in &decided.create {
                runs.push(run_intent(schedule, &name, slot));
            }
            // The runs created now are part of the schedule's history at once.
            for intent in &runs {
                if intent.spec.mode != Mode::SameDay
                    && status
                        .last_scheduled_date
                        .as_ref()
                        .is_none_or(|d| *d < intent.date)
                {
                    status.last_scheduled_date = Some(intent.date.clone());
                }
                status.recent_runs.push(ScheduledRun {
                    name: intent.name.clone(),
                    date: intent.date.clone(),
                    mode: intent.spec.mode,
                    state: None,
                });
            }
            sort_recent(&mut status.recent_runs);
            decided.ready
        }
    };
    let (is_ready, reason, message) = ready;
    let mut c = Condition::new(
        tipoff_crds::conditions::READY,
        tipoff_crds::conditions::status_of(is_ready),
        reason,
        message.clone(),
        now,
    );
    c.observed_generation = schedule.metadata.generation;
    set_condition(&mut status.conditions, c);
    // kstatus's `Stalled`: not scheduling, and only a change can fix it (bad times, a missing
    // or stale game-day list). A suspended schedule is paused on purpose, not stalled.
    let stalled = !is_ready && reason != "Suspended";
    let mut c = Condition::new(
        tipoff_crds::conditions::STALLED,
        tipoff_crds::conditions::status_of(stalled),
        if stalled { reason } else { "Scheduling" },
        if stalled { message } else { String::new() },
        now,
    );
    c.observed_generation = schedule.metadata.generation;
    set_condition(&mut status.conditions, c);

    let status_changed = schedule.status.as_ref() != Some(&status);
    let events = transitions(&old, &status, &runs, &delete);
    let requeue_after = next_due
        .and_then(|next| Duration::try_from(next.duration_since(now)).ok())
        .map_or(Duration::from_secs(RESYNC_SECS), |d| {
            d.min(Duration::from_secs(RESYNC_SECS))
        });
    SchedulePlan {
        runs,
        delete,
        status,
        status_changed,
        events,
        next_due,
        requeue_after,
    }
}

/// What [`decide`] found for a schedule whose spec and game-day list are readable.
struct Decided {
    create: Vec<Slot>,
    delete: Vec<String>,
    next: Option<Slot>,
    next_future: Option<Timestamp>,
    overdue: u32,
    missed: Vec<MissedRun>,
    skipped: Vec<SkippedDate>,
    ready: (bool, &'static str, String),
}

fn decide(
    schedule: &PipelineSchedule,
    times: &Times,
    game_dates: &BTreeSet<Date>,
    through: Date,
    observed: &Observed,
    old: &PipelineScheduleStatus,
    now: Timestamp,
) -> Decided {
    let spec = &schedule.spec;
    let today = now.to_zoned(times.tz.clone()).date();
    let start = spec
        .start_date
        .as_deref()
        .and_then(|d| d.parse::<Date>().ok())
        .unwrap_or_else(|| {
            let created = schedule
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(now, |t| t.0);
            let local = created.to_zoned(times.tz.clone()).date();
            local.yesterday().unwrap_or(local)
        });
    let own: Vec<&RunFacts> = observed.runs.iter().filter(|r| r.own).collect();
    // Missed dates are derived from the schedule's oldest run on: older runs may have been
    // deleted by the history limits.
    let missed_from = own
        .iter()
        .filter_map(|r| r.date.parse::<Date>().ok())
        .min()
        .map_or(start, |oldest| oldest.max(start));
    let covered = |date: Date, mode: Mode| {
        let d = date.to_string();
        observed
            .runs
            .iter()
            .any(|r| r.date == d && ((r.mode == Mode::SameDay) == (mode == Mode::SameDay)))
    };

    // Every slot of a listed game date from the start on.
    let mut modes = vec![Mode::Production];
    if times.same_day.is_some() {
        modes.push(Mode::SameDay);
    }
    let mut slots: Vec<Slot> = game_dates
        .range(start..=through)
        .flat_map(|&date| {
            modes
                .iter()
                .filter_map(move |&mode| due(date, mode, times).map(|due| Slot { due, date, mode }))
        })
        .collect();
    slots.sort();

    // The latest `maxCatchUp` due Production slots, uncovered or not, bound the catch-up.
    let due_production: Vec<&Slot> = slots
        .iter()
        .filter(|s| s.mode != Mode::SameDay && s.due <= now)
        .collect();
    let cap = spec.max_catch_up.max(1) as usize;
    let capped_before = due_production
        .len()
        .checked_sub(cap)
        .and_then(|i| due_production.get(i))
        .map(|s| s.due);
    let window_start = now.checked_sub(times.window).unwrap_or(Timestamp::MIN);

    let mut candidates = Vec::new();
    let mut missed = Vec::new();
    for slot in slots.iter().filter(|s| s.due <= now) {
        if covered(slot.date, slot.mode) {
            continue;
        }
        let reason = if slot.mode == Mode::SameDay {
            (slot.date != today).then_some(MissReason::DayOver)
        } else if slot.due <= window_start {
            Some(MissReason::OutsideCatchUpWindow)
        } else if capped_before.is_some_and(|first| slot.due < first) {
            Some(MissReason::BeyondMaxCatchUp)
        } else {
            None
        };
        match reason {
            None => candidates.push(slot.clone()),
            Some(reason) if slot.date >= missed_from => missed.push(MissedRun {
                date: slot.date.to_string(),
                mode: slot.mode,
                reason,
            }),
            Some(_) => {}
        }
    }
    // Remembered misses stay while no run covers them (deleted history cannot re-derive them).
    for m in &old.missed {
        let Ok(date) = m.date.parse::<Date>() else {
            continue;
        };
        let known = missed
            .iter()
            .any(|n: &MissedRun| n.date == m.date && n.mode == m.mode);
        let candidate = candidates
            .iter()
            .any(|c| c.date == date && c.mode == m.mode);
        if !known && !candidate && !covered(date, m.mode) && date >= start {
            missed.push(m.clone());
        }
    }
    missed.sort_by(|a, b| (&b.date, b.mode).cmp(&(&a.date, a.mode)));

    // Which candidates start now.
    let in_flight: Vec<&str> = own
        .iter()
        .filter(|r| r.in_flight())
        .map(|r| r.name.as_str())
        .collect();
    let create: Vec<Slot> = if spec.suspend {
        vec![]
    } else {
        match spec.concurrency_policy {
            ConcurrencyPolicy::Allow => candidates.clone(),
            ConcurrencyPolicy::Forbid if in_flight.is_empty() => {
                candidates.iter().take(1).cloned().collect()
            }
            ConcurrencyPolicy::Forbid => vec![],
        }
    };
    let waiting: Vec<&Slot> = candidates.iter().filter(|c| !create.contains(c)).collect();
    // The runs created now are in flight from now on: what waits, waits for them too.
    let schedule_name = schedule.metadata.name.as_deref().unwrap_or_default();
    let mut in_flight: Vec<String> = in_flight.iter().map(|n| (*n).to_owned()).collect();
    in_flight.extend(
        create
            .iter()
            .map(|c| run_name(schedule_name, &c.date.to_string(), c.mode)),
    );
    let future = slots
        .iter()
        .find(|s| s.due > now && !covered(s.date, s.mode));
    let next = waiting.first().copied().or(future).cloned();

    // Dates that got no run because they have no games, or are not listed yet.
    let mut skipped = Vec::new();
    let mut unlisted_due = None;
    let mut day = today;
    for _ in 0..=SKIPPED_DAYS {
        let Ok(before) = day.yesterday() else { break };
        day = before;
        if day < start {
            break;
        }
        let is_due = due(day, Mode::Production, times).is_some_and(|d| d <= now);
        if !is_due || game_dates.contains(&day) {
            continue;
        }
        let reason = if day <= through {
            SkipReason::NoGames
        } else {
            unlisted_due.get_or_insert(day);
            SkipReason::NotInGameDays
        };
        skipped.push(SkippedDate {
            date: day.to_string(),
            reason,
        });
    }

    let delete = history_to_delete(spec, &own, times, window_start);
    let overdue = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
    let source = format!(
        "ConfigMap {}/{}",
        spec.game_days.config_map, spec.game_days.key
    );
    let next_text = next.as_ref().map_or_else(
        || format!("no game day after the ones run in {source} (through {through})"),
        |s| format!("next: {} {} due {}", s.date, mode_name(s.mode), s.due),
    );
    let ready = if spec.suspend {
        (
            false,
            "Suspended",
            format!(
                "spec.suspend is true: no run is created; {} due meanwhile (caught up within {} once resumed); {next_text}",
                waiting.len(),
                spec.catch_up_window
            ),
        )
    } else if let Some(day) = unlisted_due {
        (
            false,
            "GameDaysStale",
            format!(
                "{source} covers game days through {through}, and {day} is due: add the dates after {through} (or a `through:` line) so they are scheduled or skipped"
            ),
        )
    } else if !waiting.is_empty() && !in_flight.is_empty() {
        (
            true,
            "WaitingForRun",
            format!(
                "concurrencyPolicy Forbid: {} due run(s) wait for {} to end; {next_text}",
                waiting.len(),
                in_flight.join(", ")
            ),
        )
    } else {
        (true, "Scheduled", next_text)
    };
    Decided {
        next_future: future.map(|s| s.due),
        create,
        delete,
        next,
        overdue,
        missed,
        skipped,
        ready,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Production => "Production",
        Mode::SameDay => "SameDay",
        Mode::Backfill => "Backfill",
    }
}

/// Own ended runs beyond the history limits whose due time is outside the catch-up window.
fn history_to_delete(
    spec: &tipoff_crds::PipelineScheduleSpec,
    own: &[&RunFacts],
    times: &Times,
    window_start: Timestamp,
) -> Vec<String> {
    let mut delete = Vec::new();
    for (state, limit) in [
        (RunState::Succeeded, spec.successful_runs_history_limit),
        (RunState::Failed, spec.failed_runs_history_limit),
    ] {
        let mut ended: Vec<&&RunFacts> = own.iter().filter(|r| r.state == Some(state)).collect();
        ended.sort_by(|a, b| (&b.date, &b.name).cmp(&(&a.date, &a.name)));
        for run in ended.into_iter().skip(limit.max(1) as usize) {
            let old_enough = run
                .date
                .parse::<Date>()
                .ok()
                .and_then(|d| due(d, run.mode, times))
                .is_some_and(|d| d <= window_start);
            if old_enough {
                delete.push(run.name.clone());
            }
        }
    }
    delete.sort();
    delete
}

fn run_intent(schedule: &PipelineSchedule, name: &str, slot: &Slot) -> RunIntent {
    let date = slot.date.to_string();
    let spec = PipelineRunSpec::new(&date, slot.mode, schedule.spec.release.clone());
    RunIntent {
        name: run_name(name, &date, slot.mode),
        labels: BTreeMap::from([
            (LABEL_SCHEDULE.to_owned(), owner_label(name)),
            (LABEL_DATE.to_owned(), date.clone()),
        ])
        .into_iter()
        .chain(tipoff_crds::children::standard_labels(
            &owner_label(name),
            tipoff_crds::children::COMPONENT_PIPELINE_RUN,
        ))
        .collect(),
        date,
        due: slot.due,
        spec,
    }
}

fn recent_runs(own: &[&RunFacts]) -> Vec<ScheduledRun> {
    let mut runs: Vec<ScheduledRun> = own
        .iter()
        .map(|r| ScheduledRun {
            name: r.name.clone(),
            date: r.date.clone(),
            mode: r.mode,
            state: r.state,
        })
        .collect();
    sort_recent(&mut runs);
    runs
}

fn sort_recent(runs: &mut Vec<ScheduledRun>) {
    runs.sort_by(|a, b| (&b.date, b.mode, &b.name).cmp(&(&a.date, a.mode, &a.name)));
    runs.dedup_by(|a, b| a.name == b.name);
    runs.truncate(MAX_LISTED);
}

/// At most [`NAMED`] items, then how many more.
fn named(items: &[String]) -> String {
    let shown = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match items.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The Events of the step from `old` to `new`: runs created (one each), dates newly skipped,
/// runs newly missed, runs deleted, and `Ready` flipping.
fn transitions(
    old: &PipelineScheduleStatus,
    new: &PipelineScheduleStatus,
    created: &[RunIntent],
    deleted: &[String],
) -> Vec<ScheduleEvent> {
    let mut events = Vec::new();
    for run in created {
        events.push(ScheduleEvent {
            warning: false,
            reason: "RunCreated",
            message: format!(
                "created {} for game date {} ({}), due at {}",
                run.name,
                run.date,
                mode_name(run.spec.mode),
                run.due
            ),
        });
    }
    let skipped: Vec<String> = new
        .skipped
        .iter()
        .filter(|s| {
            !old.skipped
                .iter()
                .any(|o| o.date == s.date && o.reason == s.reason)
        })
        .map(|s| format!("{} ({})", s.date, s.reason.as_str()))
        .collect();
    if !skipped.is_empty() {
        events.push(ScheduleEvent {
            warning: false,
            reason: "DateSkipped",
            message: format!("no run for {}: no games listed", named(&skipped)),
        });
    }
    let missed: Vec<String> = new
        .missed
        .iter()
        .filter(|m| {
            !old.missed
                .iter()
                .any(|o| o.date == m.date && o.mode == m.mode)
        })
        .map(|m| format!("{} {} ({})", m.date, mode_name(m.mode), m.reason.as_str()))
        .collect();
    if !missed.is_empty() {
        events.push(ScheduleEvent {
            warning: true,
            reason: "RunMissed",
            message: format!(
                "no run will be created for {}; a PipelineBackfill of those dates runs them (tipoff backfill FROM TO)",
                named(&missed)
            ),
        });
    }
    if !deleted.is_empty() {
        events.push(ScheduleEvent {
            warning: false,
            reason: "RunsDeleted",
            message: format!("history limits: deleted {}", named(deleted)),
        });
    }
    let ready = |s: &PipelineScheduleStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status, c.reason.clone(), c.message.clone()))
    };
    if let Some((status, reason, message)) = ready(new)
        && ready(old)
            .is_none_or(|(s, r, _)| s != status || (status != ConditionStatus::True && r != reason))
    {
        events.push(ScheduleEvent {
            warning: status != ConditionStatus::True,
            reason: "ReadyChanged",
            message: format!("Ready is {status:?} ({reason}): {message}"),
        });
    }
    events
}

#[cfg(test)]
mod tests;
