//! The pure planner of `PipelineBackfill`: `plan(backfill, observed, now) -> BackfillPlan`.
//!
//! Given a backfill, the PipelineRuns of its dates (its own and others) and the other
//! backfills of its namespace, it decides which runs to create now, what status to write, which
//! Events to emit and when to look again. Like [`crate::planner`] it reads no clock and does no
//! I/O, and everything it writes is derived from objects that exist: which dates are targeted
//! is judged against the runs as they were when the backfill was created ([`select`]), a date's
//! progress is its own run's state, and the concurrency in use is the number of its own runs in
//! flight. An operator restart, or a status lost, rebuilds the same status.
//!
//! # Rules
//! - A date is one of: `Skipped` (with a reason), `Pending` (targeted, no run yet), `Running`
//!   (its run in flight, Blocked and Suspended included), `Succeeded`, `Failed`.
//! - At most `maxConcurrent` of its runs are in flight; pending dates start in `order`.
//! - A pending date whose other run (created after the backfill) is in flight waits for it.
//! - A backfill whose range overlaps an older one that has not ended is `Blocked` (reason
//!   `OverlapsBackfill`) and creates no run until that one ends or is deleted.
//! - `suspend` stops new runs; runs in flight go on.
//! - The backfill is `Succeeded` once every targeted date's run succeeded, `Failed` once every
//!   one ended and any failed. Neither is absorbing: a deleted run makes its date pending again.

pub mod names;
pub mod select;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::schedule::GameDays;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tipoff_crds::conditions::set_condition;
use tipoff_crds::pipeline_backfill::{ANNOTATION_REPLACES, LABEL_BACKFILL, MAX_DATES};
use tipoff_crds::{
    BackfillCounts, BackfillState, Condition, ConditionStatus, DateReason, DateState, DateStatus,
    Order, PipelineBackfill, PipelineBackfillStatus, PipelineRunSpec,
};

pub use select::RunFacts;

/// Label on a backfill's runs: the run's date (the same label the run's children carry).
pub use tipoff_crds::children::LABEL_DATE;
/// How often a backfill that waits for something it does not watch (another run of a date,
/// another backfill) looks again.
pub const WAIT_SECS: u64 = 10;

/// How long after its creation a backfill distrusts an `InFlight` verdict read from the run
/// cache: far longer than the watch lag of a loaded machine (seconds), far shorter than any run.
pub const CACHE_LAG_GRACE_SECS: i64 = 30;
/// The longest the planner leaves a backfill unlooked-at.
pub const RESYNC_SECS: u64 = 300;
/// The most dates a condition message names.
const NAMED: usize = 10;

/// Another backfill of the namespace, as the overlap rule reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherBackfill {
    /// Its name.
    pub name: String,
    /// Its `creationTimestamp`.
    pub created: Timestamp,
    /// Its first date.
    pub from: String,
    /// Its last date.
    pub to: String,
    /// Whether it has ended (`Succeeded` or `Failed`).
    pub ended: bool,
}

/// Everything that exists for one backfill.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Every PipelineRun of the namespace whose date is in the range (own and others).
    pub runs: Vec<RunFacts>,
    /// The other backfills of the namespace.
    pub other_backfills: Vec<OtherBackfill>,
    /// The game-day list `spec.gameDays` names, read from the cluster (`None` without one).
    pub game_days: Option<GameDays>,
}

/// A PipelineRun to create (applying one that exists is adoption).
#[derive(Clone, Debug, PartialEq)]
pub struct RunIntent {
    /// Its deterministic name ([`names::run_name`]).
    pub name: String,
    /// Its date.
    pub date: String,
    /// Its spec.
    pub spec: PipelineRunSpec,
    /// Its labels (backfill, date).
    pub labels: BTreeMap<String, String>,
    /// Its annotations (the run it replaces).
    pub annotations: BTreeMap<String, String>,
}

/// An Event to publish about the backfill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillEvent {
    /// Warning rather than Normal.
    pub warning: bool,
    /// A fixed CamelCase category.
    pub reason: &'static str,
    /// The note.
    pub message: String,
}

/// Everything the operator should do for one backfill, now.
#[derive(Clone, Debug, PartialEq)]
pub struct BackfillPlan {
    /// Runs to create. The status already counts them as running, so it is written only after
    /// every one of them was applied.
    pub runs: Vec<RunIntent>,
    /// The backfill's status.
    pub status: PipelineBackfillStatus,
    /// Whether it differs from the observed status (write only then).
    pub status_changed: bool,
    /// Events for transitions.
    pub events: Vec<BackfillEvent>,
    /// When to plan again if nothing changes before.
    pub requeue_after: Duration,
}

/// The dates from `from` to `to` inclusive, or why there are none (the CRD's rules refuse
/// such specs; this guards objects stored before them).
pub fn dates(from: &str, to: &str) -> Result<Vec<Date>, String> {
    let parse = |s: &str| {
        s.parse::<Date>()
            .map_err(|_| format!("{s:?} is not a date written YYYY-MM-DD"))
    };
    let (first, last) = (parse(from)?, parse(to)?);
    if last < first {
        return Err(format!("to ({to}) is before from ({from})"));
    }
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        if out.len() >= MAX_DATES as usize {
            return Err(format!("the range covers more than {MAX_DATES} dates"));
        }
        out.push(d);
        d = match d.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    Ok(out)
}

/// Plans one reconcile of `backfill`.
pub fn plan(backfill: &PipelineBackfill, observed: &Observed, now: Timestamp) -> BackfillPlan {
    // The API server keeps times in whole seconds: a finer time here would make the status
    // differ from itself read back, and be written again on every reconcile.
    let now = whole_seconds(now);
    let spec = &backfill.spec;
    let name = backfill.metadata.name.clone().unwrap_or_default();
    let created = backfill
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let old = backfill.status.clone().unwrap_or_default();

    let range = dates(&spec.from, &spec.to);
    let range_dates = range.as_ref().map(Vec::as_slice).unwrap_or(&[]);
    let mut by_date: BTreeMap<String, Vec<&RunFacts>> = BTreeMap::new();
    for r in &observed.runs {
        by_date.entry(r.date.clone()).or_default().push(r);
    }

    // 1. Where each date stands. A date the game-day list covers without listing has no games
    // (unless this backfill already ran it).
    let no_games = |d: &Date| match &observed.game_days {
        Some(GameDays::Listed { dates, through }) => d <= through && !dates.contains(d),
        _ => false,
    };
    let mut verdicts: Vec<(String, select::DateVerdict)> = range_dates
        .iter()
        .map(|d| {
            let date = d.to_string();
            let runs = by_date.get(&date).map(Vec::as_slice).unwrap_or(&[]);
            let v = if no_games(d) && !runs.iter().any(|r| r.own) {
                select::DateVerdict::skipped(DateReason::NoGames, None)
            } else {
                select::judge(runs, spec.reprocess, &spec.release, created)
            };
            (date, v)
        })
        .collect();

    // 2. What holds every new run back: an invalid range or game-day list, an overlap.
    let overlap = overlapping(&name, created, &spec.from, &spec.to, observed);
    let invalid = match (&range, &observed.game_days) {
        (Err(why), _) => Some((
            "InvalidSpec",
            format!("the range cannot be run: {why}; create a PipelineBackfill with a valid range"),
        )),
        (Ok(_), Some(GameDays::Unavailable { reason, message })) => Some((
            *reason,
            format!("the game-day list cannot be read: {message}; no run is created until it can"),
        )),
        _ => None,
    };
    let in_flight = verdicts
        .iter()
        .filter(|(_, v)| v.state == DateState::Running)
        .count();
    let slots = (spec.max_concurrent.max(1) as usize).saturating_sub(in_flight);
    let may_start = !spec.suspend && overlap.is_none() && invalid.is_none();

    // 3. The runs to create: pending dates that wait for nothing, in order, up to the slots.
    let mut order: Vec<usize> = (0..verdicts.len()).collect();
    if spec.order == Order::NewestFirst {
        order.reverse();
    }
    let mut runs = Vec::new();
    if may_start {
        for i in order {
            if runs.len() >= slots {
                break;
            }
            let (date, v) = &mut verdicts[i];
            if v.state != DateState::Pending || v.reason.is_some() {
                continue;
            }
            let intent = run_intent(backfill, &name, date, v.replaces.as_deref());
            v.state = DateState::Running;
            v.run = Some(intent.name.clone());
            runs.push(intent);
        }
    }

    // 4. The status.
    let ledger: Vec<DateStatus> = verdicts
        .iter()
        .map(|(date, v)| DateStatus {
            date: date.clone(),
            state: v.state,
            run: v.run.clone(),
            reason: v.reason,
        })
        .collect();
    let counts = count(&ledger);
    let own: Vec<&RunFacts> = observed.runs.iter().filter(|r| r.own).collect();
    // Runs this very plan creates start the clock at `now`, until the controller plans again
    // with them as the API server created them.
    let start_time = own
        .iter()
        .map(|r| r.created)
        .min()
        .or_else(|| (!runs.is_empty()).then_some(now));
    let ended = counts.succeeded + counts.failed;
    // Dates skipped for a run in flight that has not ended as observed, while the backfill is
    // young enough for the run cache to lag behind that run's end: the backfill waits for them,
    // so a verdict read from a lagging cache is judged again.
    let lag_grace = now.duration_since(created) < SignedDuration::from_secs(CACHE_LAG_GRACE_SECS);
    let awaiting: Vec<(&str, &str)> = verdicts
        .iter()
        .filter(|(_, v)| v.awaiting_end && lag_grace)
        .map(|(d, v)| (d.as_str(), v.run.as_deref().unwrap_or("?")))
        .collect();
    let all_ended = counts.pending == 0 && counts.running == 0 && awaiting.is_empty();
    let last_end = own
        .iter()
        .filter(|r| r.ended())
        .filter_map(|r| r.completed)
        .max();
    let completion_time = if all_ended { last_end } else { None };
    let eta = match (start_time, last_end) {
        (Some(start), Some(end)) if !all_ended && ended > 0 && end > start => {
            let pace = end.duration_since(start).as_secs_f64() / f64::from(ended);
            let left = f64::from(counts.targeted - ended);
            SignedDuration::try_from_secs_f64(pace * left)
                .ok()
                .and_then(|d| end.checked_add(d).ok())
                .map(whole_seconds)
        }
        _ => None,
    };

    let state = if invalid.is_some() || (overlap.is_some() && !all_ended) {
        BackfillState::Blocked
    } else if all_ended {
        if counts.failed > 0 {
            BackfillState::Failed
        } else {
            BackfillState::Succeeded
        }
    } else if spec.suspend {
        BackfillState::Suspended
    } else if counts.running > 0 {
        BackfillState::Running
    } else {
        BackfillState::Pending
    };

    let mut conditions = old.conditions.clone();
    let generation = backfill.metadata.generation;
    let mut set = |type_: &str, status: bool, reason: &str, message: String| {
        let mut c = Condition::new(
            type_,
            if status {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason,
            message,
            now,
        );
        c.observed_generation = generation;
        set_condition(&mut conditions, c);
    };
    let failed_dates = dates_in(&ledger, DateState::Failed);
    let left = counts.pending + counts.running;
    match (&invalid, &overlap) {
        (Some((reason, message)), _) => set("Blocked", true, reason, message.clone()),
        (None, Some(o)) if !all_ended => set(
            "Blocked",
            true,
            "OverlapsBackfill",
            format!(
                "refused: its dates overlap PipelineBackfill {} ({} to {}), which has not ended; it creates no run until that one ends or is deleted (or delete this one)",
                o.name, o.from, o.to
            ),
        ),
        _ => set(
            "Blocked",
            false,
            "NotBlocked",
            "no other active backfill covers its dates".to_owned(),
        ),
    }
    match state {
        BackfillState::Succeeded | BackfillState::Failed => set(
            "Progressing",
            false,
            "Ended",
            format!(
                "every targeted date's run ended ({ended} of {})",
                counts.targeted
            ),
        ),
        BackfillState::Suspended => set(
            "Progressing",
            false,
            "Suspended",
            format!(
                "spec.suspend is true: no new runs; {} in flight go on",
                counts.running
            ),
        ),
        BackfillState::Blocked => set(
            "Progressing",
            false,
            "Blocked",
            "no new runs while the Blocked condition holds".to_owned(),
        ),
        BackfillState::Pending | BackfillState::Running => set(
            "Progressing",
            true,
            if counts.running > 0 {
                "RunsInFlight"
            } else {
                "WaitingForRuns"
            },
            progressing_message(&ledger, &counts, spec.max_concurrent, &awaiting),
        ),
    }
    if all_ended && invalid.is_none() {
        set(
            "Complete",
            true,
            if counts.failed > 0 {
                "EndedWithFailures"
            } else {
                "AllSucceeded"
            },
            format!(
                "{} of {} targeted dates succeeded, {} failed, {} skipped",
                counts.succeeded, counts.targeted, counts.failed, counts.skipped
            ),
        );
    } else {
        set(
            "Complete",
            false,
            "DatesLeft",
            format!(
                "{left} of {} targeted dates have not ended",
                counts.targeted
            ),
        );
    }
    // `Ready` and kstatus's `Stalled`: a backfill is ready once every targeted date's run
    // succeeded; it is stalled when only a change can move it (an invalid range or game-day
    // list, or every date
    // ended and some failed: a new PipelineBackfill with `reprocess: Failed` runs them again).
    // Waiting for an overlapping backfill to end is not stalled.
    set(
        tipoff_crds::conditions::READY,
        state == BackfillState::Succeeded,
        state.as_str(),
        format!(
            "{} of {} targeted dates succeeded, {} failed, {left} not ended",
            counts.succeeded, counts.targeted, counts.failed
        ),
    );
    match (&invalid, state) {
        (Some((reason, message)), _) => set(
            tipoff_crds::conditions::STALLED,
            true,
            reason,
            format!("Blocked: {message}"),
        ),
        (None, BackfillState::Failed) => set(
            tipoff_crds::conditions::STALLED,
            true,
            "RunsFailed",
            format!(
                "Failed: the runs of {} failed; a PipelineBackfill with reprocess: Failed runs them again",
                named(&failed_dates)
            ),
        ),
        _ => set(
            tipoff_crds::conditions::STALLED,
            false,
            state.as_str(),
            String::new(),
        ),
    }
    if failed_dates.is_empty() {
        set(
            "Failed",
            false,
            "NoFailures",
            "no run of a targeted date failed".to_owned(),
        );
    } else {
        set(
            "Failed",
            true,
            "RunsFailed",
            format!(
                "the runs of {} failed; `tipoff status DATE` shows why; a PipelineBackfill with reprocess: Failed runs them again",
                named(&failed_dates)
            ),
        );
    }

    let status = PipelineBackfillStatus {
        observed_generation: generation,
        state: Some(state),
        progress: Some(format!("{ended}/{}", counts.targeted)),
        counts,
        start_time: start_time.map(Time),
        completion_time: completion_time.map(Time),
        estimated_completion_time: eta.map(Time),
        dates: ledger,
        conditions,
    };
    let status_changed = backfill.status.as_ref() != Some(&status);
    let events = transitions(&old, &status);
    let waits = overlap.is_some()
        || !awaiting.is_empty()
        || status
            .dates
            .iter()
            .any(|d| d.reason == Some(DateReason::WaitingForRun));
    BackfillPlan {
        runs,
        status,
        status_changed,
        events,
        requeue_after: Duration::from_secs(if waits { WAIT_SECS } else { RESYNC_SECS }),
    }
}

/// `t` without its fraction of a second.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The oldest other backfill that has not ended and shares a date with this one, created
/// before it (the creation time, then the name, breaks ties the same way in both).
fn overlapping<'a>(
    name: &str,
    created: Timestamp,
    from: &str,
    to: &str,
    observed: &'a Observed,
) -> Option<&'a OtherBackfill> {
    observed
        .other_backfills
        .iter()
        .filter(|o| o.name != name && !o.ended)
        .filter(|o| (o.created, o.name.as_str()) < (created, name))
        // Dates written YYYY-MM-DD compare as strings.
        .filter(|o| o.from.as_str() <= to && from <= o.to.as_str())
        .min_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)))
}

fn run_intent(
    backfill: &PipelineBackfill,
    name: &str,
    date: &str,
    replaces: Option<&str>,
) -> RunIntent {
    let spec = &backfill.spec;
    let mut run = PipelineRunSpec::new(date, spec.mode, spec.release.clone());
    run.subset.clone_from(&spec.subset);
    let mut labels = BTreeMap::from([
        (LABEL_BACKFILL.to_owned(), names::backfill_label(name)),
        (LABEL_DATE.to_owned(), date.to_owned()),
    ]);
    labels.extend(tipoff_crds::children::standard_labels(
        &names::backfill_label(name),
        tipoff_crds::children::COMPONENT_PIPELINE_RUN,
    ));
    let annotations = replaces
        .map(|r| BTreeMap::from([(ANNOTATION_REPLACES.to_owned(), r.to_owned())]))
        .unwrap_or_default();
    RunIntent {
        name: names::run_name(name, date),
        date: date.to_owned(),
        spec: run,
        labels,
        annotations,
    }
}

fn count(ledger: &[DateStatus]) -> BackfillCounts {
    let n = |s: DateState| {
        u32::try_from(ledger.iter().filter(|d| d.state == s).count()).unwrap_or(u32::MAX)
    };
    let c = BackfillCounts {
        targeted: 0,
        pending: n(DateState::Pending),
        running: n(DateState::Running),
        succeeded: n(DateState::Succeeded),
        failed: n(DateState::Failed),
        skipped: n(DateState::Skipped),
    };
    BackfillCounts {
        targeted: c.pending + c.running + c.succeeded + c.failed,
        ..c
    }
}

fn dates_in(ledger: &[DateStatus], state: DateState) -> Vec<&str> {
    ledger
        .iter()
        .filter(|d| d.state == state)
        .map(|d| d.date.as_str())
        .collect()
}

/// At most [`NAMED`] dates, then how many more.
fn named(dates: &[&str]) -> String {
    let shown = dates
        .iter()
        .take(NAMED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match dates.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn progressing_message(
    ledger: &[DateStatus],
    counts: &BackfillCounts,
    max: u32,
    awaiting: &[(&str, &str)],
) -> String {
    let waiting: Vec<String> = ledger
        .iter()
        .filter(|d| d.reason == Some(DateReason::WaitingForRun))
        .map(|d| format!("{} (run {})", d.date, d.run.as_deref().unwrap_or("?")))
        .collect();
    let mut msg = format!(
        "{} of {} targeted dates in flight (maxConcurrent {max}), {} pending",
        counts.running, counts.targeted, counts.pending
    );
    if !waiting.is_empty() {
        let refs: Vec<&str> = waiting.iter().map(String::as_str).collect();
        msg.push_str(&format!(
            "; waiting for other runs of {}, in flight",
            named(&refs)
        ));
    }
    if !awaiting.is_empty() {
        let skipped: Vec<String> = awaiting
            .iter()
            .map(|(date, run)| format!("{date} (run {run})"))
            .collect();
        let refs: Vec<&str> = skipped.iter().map(String::as_str).collect();
        msg.push_str(&format!(
            "; skipped as in flight when the backfill was created, until those runs end: {}",
            named(&refs)
        ));
    }
    msg
}

/// The Events of the step from `old` to `new`, derived from the two ledgers only (so a
/// status planned twice, or again after a restart, publishes nothing twice): runs started,
/// dates skipped (once, when first judged), dates whose run failed, and the backfill's state.
fn transitions(old: &PipelineBackfillStatus, new: &PipelineBackfillStatus) -> Vec<BackfillEvent> {
    let mut events = Vec::new();
    let before = |date: &str| old.dates.iter().find(|d| d.date == date);
    let newly = |state: DateState| -> Vec<&DateStatus> {
        new.dates
            .iter()
            .filter(|d| d.state == state && before(&d.date).is_none_or(|b| b.state != state))
            .collect()
    };
    let started = newly(DateState::Running);
    if !started.is_empty() {
        let dates: Vec<&str> = started.iter().map(|d| d.date.as_str()).collect();
        events.push(BackfillEvent {
            warning: false,
            reason: "RunsCreated",
            message: format!(
                "created the runs of {} ({} in flight)",
                named(&dates),
                new.counts.running
            ),
        });
    }
    let skipped = newly(DateState::Skipped);
    if !skipped.is_empty() {
        let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in &skipped {
            by_reason
                .entry(d.reason.map_or("", DateReason::as_str))
                .or_default()
                .push(d.date.as_str());
        }
        let parts: Vec<String> = by_reason
            .iter()
            .map(|(reason, dates)| format!("{reason}: {}", named(dates)))
            .collect();
        events.push(BackfillEvent {
            warning: false,
            reason: "DatesSkipped",
            message: format!("skipped {} dates ({})", skipped.len(), parts.join("; ")),
        });
    }
    let failed = newly(DateState::Failed);
    if !failed.is_empty() {
        let runs: Vec<String> = failed
            .iter()
            .map(|d| format!("{} ({})", d.date, d.run.as_deref().unwrap_or("?")))
            .collect();
        let refs: Vec<&str> = runs.iter().map(String::as_str).collect();
        events.push(BackfillEvent {
            warning: true,
            reason: "RunFailed",
            message: format!("the run of {} failed", named(&refs)),
        });
    }
    if old.state != new.state
        && let Some(state) = new.state
    {
        let why = new
            .conditions
            .iter()
            .find(|c| {
                c.is_true()
                    && match state {
                        BackfillState::Blocked => c.type_ == "Blocked",
                        BackfillState::Succeeded | BackfillState::Failed => c.type_ == "Complete",
                        _ => c.type_ == "Progressing",
                    }
            })
            .map(|c| format!(": {}", c.message))
            .unwrap_or_default();
        events.push(BackfillEvent {
            warning: matches!(state, BackfillState::Blocked | BackfillState::Failed),
            reason: "BackfillStateChanged",
            message: format!("{}{why}", state.as_str()),
        });
    }
    events
}

#[cfg(test)]
mod tests;
