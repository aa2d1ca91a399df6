//! `PipelineBackfill`: a range of past game dates run as PipelineRuns, a few at a time, with a
//! policy for which dates need running again.
//!
//! The backfill owns the runs it creates (owner references, label [`LABEL_BACKFILL`]); its
//! status is recomputed from those runs and the other runs of its dates on every reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::pipeline_run::{Mode, Release, Subset};
use crate::rules;

/// Label on every PipelineRun a backfill created: the backfill's name (or its hashed form when
/// too long), so `kubectl get pipelineruns -l tipoff.dev/backfill` lists them.
pub const LABEL_BACKFILL: &str = "tipoff.dev/backfill";
/// Annotation on a run a backfill created to reprocess a date: the run it replaces (the newest
/// earlier run of the date), which is left as it was so its history stays readable.
pub const ANNOTATION_REPLACES: &str = "tipoff.dev/replaces";
/// The most dates one backfill may cover (a year): its status keeps one ledger entry per date.
pub const MAX_DATES: u32 = 366;
/// `maxConcurrent` when omitted.
pub const DEFAULT_MAX_CONCURRENT: u32 = 3;
/// The largest `maxConcurrent`.
pub const MAX_CONCURRENT: u32 = 20;

/// A range of game dates to run (again) in Backfill mode, a few dates at a time.
// `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tipoff.dev",
    version = "v1alpha1",
    kind = "PipelineBackfill",
    namespaced,
    status = "PipelineBackfillStatus",
    shortname = "tpb",
    shortname = "backfill",
    category = "tipoff",
    derive = "PartialEq",
    doc = "A range of game dates run as tipoff PipelineRuns, a few at a time, with a reprocess policy.",
    printcolumn(
        name = "From",
        type_ = "string",
        json_path = ".spec.from",
        description = "First date of the range"
    ),
    printcolumn(
        name = "To",
        type_ = "string",
        json_path = ".spec.to",
        description = "Last date of the range (inclusive)"
    ),
    printcolumn(
        name = "Reprocess",
        type_ = "string",
        json_path = ".spec.reprocess",
        description = "Which dates are run again: Missing, Failed, Drifted or All"
    ),
    printcolumn(
        name = "Done",
        type_ = "string",
        json_path = ".status.progress",
        description = "Targeted dates whose run ended / dates targeted"
    ),
    printcolumn(
        name = "Running",
        type_ = "integer",
        json_path = ".status.counts.running",
        description = "Runs in flight"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.counts.failed",
        description = "Targeted dates whose run failed"
    ),
    printcolumn(
        name = "Skipped",
        type_ = "integer",
        json_path = ".status.counts.skipped",
        description = "Dates not run, each with a reason in status.dates"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Pending, Running, Suspended, Blocked, Succeeded or Failed"
    ),
    printcolumn(
        name = "ETA",
        type_ = "string",
        json_path = ".status.estimatedCompletionTime",
        description = "When the last targeted date is expected to end, from the pace so far"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spec_rules)]
pub struct PipelineBackfillSpec {
    /// The first game date of the range (`YYYY-MM-DD`, America/New_York). Immutable.
    #[schemars(length(max = 10), transform = rules::date)]
    pub from: String,

    /// The last game date of the range, inclusive (`YYYY-MM-DD`); not before `from`, and at
    /// most 365 days after it. Immutable.
    #[schemars(length(max = 10), transform = rules::date)]
    pub to: String,

    /// The mode of the runs it creates: `Backfill` (the default: past dates, players from who
    /// actually played), or `Production`/`SameDay` to replay dates as those modes would.
    /// Immutable.
    #[serde(default = "default_mode")]
    pub mode: Mode,

    /// The code every run it creates is pinned to (as a PipelineRun's `release`). Immutable.
    /// Under `reprocess: Drifted` a date whose run pinned another image or commit is run again.
    pub release: Release,

    /// How many of its runs may be in flight at once (1-20, default 3). A run that is
    /// Blocked or Suspended holds its place until it ends.
    #[serde(default = "default_max_concurrent")]
    #[schemars(transform = max_concurrent_rule)]
    pub max_concurrent: u32,

    /// Which dates start first: `OldestFirst` (the default) or `NewestFirst`.
    #[serde(default)]
    pub order: Order,

    /// Which dates of the range are run: `Missing` (the default: no run of the date has
    /// succeeded), `Failed` (the date's latest run failed), `Drifted` (the date's latest run
    /// had CodeDrift, or pinned another image or commit than `release`), or `All`. Judged
    /// against the runs that had ended when the backfill was created; a date whose run was
    /// still in flight then is skipped.
    #[serde(default)]
    pub reprocess: Reprocess,

    /// Pauses the backfill: no new runs are created while true. Runs in flight go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,

    /// Restricts every run it creates to some phases or processors (the run's `subset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Subset>,

    /// The season's game-day list (the ConfigMap a PipelineSchedule reads, docs/schedule.md).
    /// When set, a date up to the list's `through` that is not listed has no games and is
    /// skipped (`NoGames`); a date after `through` is not known to have none and is run. A
    /// missing or unreadable list blocks the backfill (`Blocked`, reason `GameDaysMissing` or
    /// `GameDaysInvalid`) rather than run dates without games.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_days: Option<crate::pipeline_schedule::GameDaysSource>,
}

fn default_mode() -> Mode {
    Mode::Backfill
}

fn default_max_concurrent() -> u32 {
    DEFAULT_MAX_CONCURRENT
}

fn max_concurrent_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        &format!("self >= 1 && self <= {MAX_CONCURRENT}"),
        &format!(
            "maxConcurrent is how many dates' runs may be in flight at once: give a number from 1 to {MAX_CONCURRENT} (default {DEFAULT_MAX_CONCURRENT})"
        ),
    );
}

fn spec_rules(schema: &mut schemars::Schema) {
    rules::add_rule_value(
        schema,
        serde_json::json!({
            "rule": "self.to >= self.from",
            "message": "to must not be before from: the range is inclusive, e.g. from: 2026-01-01, to: 2026-01-31 (from: D, to: D is one date)",
            "fieldPath": ".to",
        }),
    );
    rules::add_rule_value(
        schema,
        serde_json::json!({
            // Only judged on two real dates (the date rules report the others), so the
            // timestamps always parse.
            "rule": format!(
                "!({from}) || !({to}) || self.to < self.from || timestamp(self.to + 'T00:00:00Z') - timestamp(self.from + 'T00:00:00Z') <= duration('{hours}h')",
                from = rules::DATE_RULE.replace("self", "self.from"),
                to = rules::DATE_RULE.replace("self", "self.to"),
                hours = (MAX_DATES - 1) * 24
            ),
            "message": format!(
                "the range covers more than {MAX_DATES} dates: split it into backfills of at most a year each (its status keeps one entry per date)"
            ),
            "fieldPath": ".to",
        }),
    );
    for (field, message) in [
        (
            "from",
            "from is immutable: create another PipelineBackfill for another range",
        ),
        (
            "to",
            "to is immutable: create another PipelineBackfill for another range",
        ),
        (
            "mode",
            "mode is immutable: create another PipelineBackfill to run the dates in another mode",
        ),
        (
            "release",
            "release is immutable: the backfill's runs are pinned to it; create another PipelineBackfill for a new release",
        ),
    ] {
        rules::add_rule_value(
            schema,
            serde_json::json!({
                "rule": format!("self.{field} == oldSelf.{field}"),
                "message": message,
                "fieldPath": format!(".{field}"),
                "reason": "FieldValueForbidden",
            }),
        );
    }
}

/// Which dates of a backfill start first.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Order {
    /// The earliest date first.
    #[default]
    OldestFirst,
    /// The latest date first (e.g. to repair the recent past before the rest).
    NewestFirst,
}

/// Which dates of a backfill's range are run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Reprocess {
    /// Dates with no successful run: none at all, or the latest one failed.
    #[default]
    Missing,
    /// Dates whose latest run failed.
    Failed,
    /// Dates whose latest run had CodeDrift, or pinned another image or commit.
    Drifted,
    /// Every date.
    All,
}

impl Reprocess {
    /// The policy's name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Reprocess::Missing => "Missing",
            Reprocess::Failed => "Failed",
            Reprocess::Drifted => "Drifted",
            Reprocess::All => "All",
        }
    }
}

/// The observed state of a backfill, recomputed from the runs that exist on every reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineBackfillStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The backfill's overall state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BackfillState>,
    /// Targeted dates whose run ended over dates targeted, e.g. `7/20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub progress: Option<String>,
    /// How many dates are in each state.
    #[serde(default)]
    pub counts: BackfillCounts,
    /// When its first run was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When its last targeted date ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// When the last targeted date is expected to end: the pace of the dates ended so far
    /// (from the first run's creation to the latest end) over the dates left. Absent until a
    /// date has ended, and once every date has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_completion_time: Option<Time>,
    /// One entry per date of the range, in date order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 366), transform = rules::list_map_date)]
    pub dates: Vec<DateStatus>,
    /// `Ready`, `Stalled` (kstatus), `Progressing`, `Complete`, `Failed` and `Blocked`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), transform = rules::list_map_type)]
    pub conditions: Vec<Condition>,
}

/// How many dates of a backfill are in each state. `targeted` is `pending + running +
/// succeeded + failed`; `targeted + skipped` is every date of the range.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillCounts {
    /// Dates the backfill runs.
    #[serde(default)]
    pub targeted: u32,
    /// Targeted dates whose run is not created yet.
    #[serde(default)]
    pub pending: u32,
    /// Targeted dates whose run is in flight.
    #[serde(default)]
    pub running: u32,
    /// Targeted dates whose run succeeded.
    #[serde(default)]
    pub succeeded: u32,
    /// Targeted dates whose run failed.
    #[serde(default)]
    pub failed: u32,
    /// Dates not run, each with its reason.
    #[serde(default)]
    pub skipped: u32,
}

/// One date of a backfill.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DateStatus {
    /// The game date.
    #[schemars(length(max = 10))]
    pub date: String,
    /// Where the date stands.
    pub state: DateState,
    /// The run: the backfill's own once created; for a skipped or waiting date, the other
    /// run it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub run: Option<String>,
    /// Why the date is skipped or waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DateReason>,
}

/// Where one date of a backfill stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DateState {
    /// Targeted; its run is not created yet (`reason` says when it waits for another run).
    Pending,
    /// Its run is in flight (including Blocked and Suspended runs).
    Running,
    /// Its run succeeded.
    Succeeded,
    /// Its run failed.
    Failed,
    /// Not run; `reason` says why.
    Skipped,
}

impl DateState {
    /// The state's name as it appears in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            DateState::Pending => "Pending",
            DateState::Running => "Running",
            DateState::Succeeded => "Succeeded",
            DateState::Failed => "Failed",
            DateState::Skipped => "Skipped",
        }
    }
}

/// Why a date is skipped, or waits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DateReason {
    /// Skipped: another run of the date (`run`) was in flight when the backfill was created;
    /// two runs of one date never write at once.
    InFlight,
    /// Skipped (`Missing`, `Failed`): the date's latest run (`run`) succeeded.
    AlreadySucceeded,
    /// Skipped (`Failed`, `Drifted`): the date has no run to reprocess.
    NoRun,
    /// Skipped (`Drifted`): the date's latest run (`run`) ran the pinned code.
    NotDrifted,
    /// Pending: a run of the date created after the backfill (`run`) is in flight; the
    /// backfill's run is created once it ends.
    WaitingForRun,
    /// Skipped: the game-day list (`spec.gameDays`) covers the date and does not list it.
    NoGames,
}

impl DateReason {
    /// The reason's name as it appears in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            DateReason::InFlight => "InFlight",
            DateReason::AlreadySucceeded => "AlreadySucceeded",
            DateReason::NoRun => "NoRun",
            DateReason::NotDrifted => "NotDrifted",
            DateReason::WaitingForRun => "WaitingForRun",
            DateReason::NoGames => "NoGames",
        }
    }
}

/// A backfill's overall state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum BackfillState {
    /// Accepted; no run created yet.
    Pending,
    /// Runs are in flight or about to be created.
    Running,
    /// `spec.suspend` is true: no new runs (runs in flight go on).
    Suspended,
    /// Refused: its range overlaps another backfill that has not completed (the `Blocked`
    /// condition names it). It creates no run while that lasts.
    Blocked,
    /// Every targeted date's run succeeded (or nothing needed running).
    Succeeded,
    /// Every targeted date's run ended, and at least one failed.
    Failed,
}

impl BackfillState {
    /// The state's name as it appears in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Pending => "Pending",
            BackfillState::Running => "Running",
            BackfillState::Suspended => "Suspended",
            BackfillState::Blocked => "Blocked",
            BackfillState::Succeeded => "Succeeded",
            BackfillState::Failed => "Failed",
        }
    }

    /// Whether every targeted date has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, BackfillState::Succeeded | BackfillState::Failed)
    }
}
