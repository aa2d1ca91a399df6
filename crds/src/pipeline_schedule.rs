//! `PipelineSchedule`: one Production PipelineRun per game day at a local time of day (and
//! optionally a SameDay run before tip-off), with catch-up of the game days missed while the
//! operator was down or the schedule suspended.
//!
//! A run's key is its game date, never an instant: the run for date D is named
//! `<schedule>-<D>` (`<schedule>-<D>-sameday` for SameDay) and creating a name that exists is
//! "done". Game days are read from a ConfigMap in the schedule's namespace
//! ([`GameDaysSource`]); the operator never calls an upstream API. The schedule owns the runs
//! it creates (owner references, label [`LABEL_SCHEDULE`]); its status is recomputed from
//! those runs, the other runs of its dates and the game-day list on every reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::pipeline_run::{Mode, Release, RunState};
use crate::rules;

/// Label on every PipelineRun a schedule created: the schedule's name (or its hashed form when
/// too long), so `kubectl get pipelineruns -l tipoff.dev/schedule` lists them.
pub const LABEL_SCHEDULE: &str = "tipoff.dev/schedule";
/// Label a game-day ConfigMap may carry so that a change to it wakes the schedules that read
/// it at once (without it, a change is seen at the schedule's next reconcile, within 5 minutes).
pub const LABEL_GAME_DAYS: &str = "tipoff.dev/game-days";
/// The suffix of a SameDay run's name: `<schedule>-<date>-sameday`.
pub const SAME_DAY_SUFFIX: &str = "-sameday";
/// `timeZone` when omitted.
pub const DEFAULT_TIME_ZONE: &str = "America/New_York";
/// `productionTime` when omitted.
pub const DEFAULT_PRODUCTION_TIME: &str = "06:00";
/// `catchUpWindow` when omitted: three days, the length of the seed-003 outage.
pub const DEFAULT_CATCH_UP_WINDOW: &str = "72h";
/// The longest `catchUpWindow`, in hours (31 days).
pub const MAX_CATCH_UP_HOURS: u32 = 744;
/// `maxCatchUp` when omitted.
pub const DEFAULT_MAX_CATCH_UP: u32 = 7;
/// The largest `maxCatchUp`.
pub const MAX_CATCH_UP: u32 = 31;
/// The history limits when omitted.
pub const DEFAULT_HISTORY_LIMIT: u32 = 14;
/// The ConfigMap key of the game-day list when omitted.
pub const DEFAULT_GAME_DAYS_KEY: &str = "dates";
/// The most entries of `status.recentRuns`, `status.missed` and `status.skipped`.
pub const MAX_LISTED: usize = 31;

/// CEL: a local time of day `HH:MM` (24-hour clock).
pub const TIME_OF_DAY_RULE: &str = "self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')";
/// CEL: the shape of an IANA time zone name (the operator checks that the zone exists).
pub const TIME_ZONE_RULE: &str =
    "self == 'UTC' || self.matches('^[A-Za-z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){1,2}$')";

/// Creates a tipoff PipelineRun for every game day at a local time, and catches up missed days.
// `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tipoff.dev",
    version = "v1alpha1",
    kind = "PipelineSchedule",
    namespaced,
    status = "PipelineScheduleStatus",
    shortname = "tps",
    shortname = "schedule",
    category = "tipoff",
    derive = "PartialEq",
    doc = "Creates one Production tipoff PipelineRun per game day at a local time (optionally a SameDay run before tip-off), and catches up the game days it missed.",
    printcolumn(
        name = "Time",
        type_ = "string",
        json_path = ".spec.productionTime",
        description = "Local time of day of the Production run (the morning after the game date)"
    ),
    printcolumn(
        name = "Zone",
        type_ = "string",
        json_path = ".spec.timeZone",
        description = "The time zone of the times"
    ),
    printcolumn(
        name = "Suspend",
        type_ = "boolean",
        json_path = ".spec.suspend",
        description = "No run is created while true"
    ),
    printcolumn(
        name = "Last",
        type_ = "string",
        json_path = ".status.lastScheduledDate",
        description = "The newest game date with a run of this schedule"
    ),
    printcolumn(
        name = "Next",
        type_ = "string",
        json_path = ".status.nextScheduleTime",
        description = "When the next run is due (UTC)"
    ),
    printcolumn(
        name = "Missed",
        type_ = "integer",
        json_path = ".status.missedCount",
        description = "Game days beyond the catch-up window that have no run (status.missed)"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the schedule can schedule (time zone, game-day list)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineScheduleSpec {
    /// The IANA time zone of `productionTime` and `sameDayTime`, e.g. `America/New_York` (the
    /// default) or `America/Los_Angeles`. The operator checks the zone exists and reports
    /// `Ready=False` (reason `InvalidTimeZone`) otherwise.
    #[serde(default = "default_time_zone")]
    #[schemars(length(max = 64), transform = time_zone_rule)]
    pub time_zone: String,

    /// The local time of day (`HH:MM`, 24-hour) at which the Production run of game date D is
    /// created, on the morning after D (every game final). Default `06:00`. On a day when
    /// this local time does not exist (DST spring-forward) the run is due at the same clock
    /// time after the jump; when it occurs twice (fall-back), at the first.
    #[serde(default = "default_production_time")]
    #[schemars(length(max = 5), transform = time_of_day_rule)]
    pub production_time: String,

    /// When set, a SameDay run of game date D is also created on D at this local time
    /// (`HH:MM`), which should be before the first tip-off. A SameDay run is created only on
    /// its own day: once the day is over it is listed as missed instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5), transform = time_of_day_rule)]
    pub same_day_time: Option<String>,

    /// Where the season's game dates are listed (a ConfigMap in this namespace).
    pub game_days: GameDaysSource,

    /// The code every run it creates is pinned to (as a PipelineRun's `release`). Changing it
    /// changes the runs created afterwards; runs that exist keep theirs.
    pub release: Release,

    /// How long after its due time a missed run is still created (catch-up after downtime or
    /// a suspension), as hours and minutes, e.g. `72h` (the default) or `36h30m`; at most
    /// 744h. Every missed game day inside the window gets its run, oldest first; older ones
    /// are listed in `status.missed` with a Warning Event.
    #[serde(default = "default_catch_up_window")]
    #[schemars(length(max = 12), transform = catch_up_window_rule)]
    pub catch_up_window: String,

    /// The most recent due game days a catch-up may create runs for (1-31, default 7): an
    /// outage longer than this many game days runs the latest ones and lists the older ones
    /// as missed (a PipelineBackfill can run them).
    #[serde(default = "default_max_catch_up")]
    #[schemars(transform = max_catch_up_rule)]
    pub max_catch_up: u32,

    /// What happens when a run is due while a run this schedule created is still in flight
    /// (Pending, Running, Blocked or Suspended): `Forbid` (the default) waits for it to end,
    /// so days run one at a time, oldest first (a date's features read the day before);
    /// `Allow` creates it at once.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,

    /// The first game date it schedules (`YYYY-MM-DD`). Default: the day before the
    /// schedule's creation (local date), so a new schedule runs yesterday's games and never
    /// reaches further back. Earlier dates are neither run nor reported missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10), transform = rules::date)]
    pub start_date: Option<String>,

    /// How many of its succeeded runs are kept (1-100, default 14); older ones are deleted
    /// once they are outside the catch-up window.
    #[serde(default = "default_history_limit")]
    #[schemars(transform = history_limit_rule)]
    pub successful_runs_history_limit: u32,

    /// How many of its failed runs are kept (1-100, default 14); older ones are deleted once
    /// they are outside the catch-up window.
    #[serde(default = "default_history_limit")]
    #[schemars(transform = history_limit_rule)]
    pub failed_runs_history_limit: u32,

    /// Pauses the schedule: no run is created while true (runs in flight go on). Dates that
    /// fall due meanwhile are caught up when it is cleared, within the catch-up window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// Where the game dates of the season are listed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameDaysSource {
    /// The ConfigMap (in the schedule's namespace) holding the list. Label it
    /// `tipoff.dev/game-days` so the operator sees a change at once.
    #[schemars(length(max = 253))]
    pub config_map: String,
    /// The key of the list in the ConfigMap's `data` (default `dates`): one `YYYY-MM-DD` per
    /// line, `#` comments and blank lines ignored, and optionally a line `through: YYYY-MM-DD`
    /// saying how far the list is complete (default: its last date). A date up to `through`
    /// that is not listed has no games; a date after it is unknown and gets no run until the
    /// list is extended (`Ready=False`, reason `GameDaysStale`).
    #[serde(default = "default_game_days_key")]
    #[schemars(length(max = 253))]
    pub key: String,
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_owned()
}

fn default_production_time() -> String {
    DEFAULT_PRODUCTION_TIME.to_owned()
}

fn default_catch_up_window() -> String {
    DEFAULT_CATCH_UP_WINDOW.to_owned()
}

fn default_max_catch_up() -> u32 {
    DEFAULT_MAX_CATCH_UP
}

fn default_history_limit() -> u32 {
    DEFAULT_HISTORY_LIMIT
}

fn default_game_days_key() -> String {
    DEFAULT_GAME_DAYS_KEY.to_owned()
}

fn time_zone_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        TIME_ZONE_RULE,
        "must be an IANA time zone name such as America/New_York, America/Los_Angeles or UTC (not an abbreviation like EST or an offset like -05:00)",
    );
}

fn time_of_day_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        TIME_OF_DAY_RULE,
        "must be a local time of day written HH:MM on a 24-hour clock, e.g. 06:00 or 17:30",
    );
}

fn catch_up_window_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        &format!(
            "self.matches('^([0-9]{{1,3}}h)?([0-9]{{1,5}}m)?$') && self != '' && duration(self) > duration('0s') && duration(self) <= duration('{MAX_CATCH_UP_HOURS}h')"
        ),
        &format!(
            "catchUpWindow is how long a missed run is still created, as hours and minutes such as 72h or 36h30m: more than zero (zero would never catch up) and at most {MAX_CATCH_UP_HOURS}h"
        ),
    );
}

fn max_catch_up_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        &format!("self >= 1 && self <= {MAX_CATCH_UP}"),
        &format!(
            "maxCatchUp is how many of the latest missed game days a catch-up runs: give a number from 1 to {MAX_CATCH_UP} (default {DEFAULT_MAX_CATCH_UP})"
        ),
    );
}

fn history_limit_rule(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        "self >= 1 && self <= 100",
        "a history limit is how many ended runs are kept: give a number from 1 to 100 (the newest run is always kept, it says which date ran last)",
    );
}

/// What a due run does while another run of the schedule is in flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Wait until the schedule's runs in flight have ended: one date at a time, oldest first.
    #[default]
    Forbid,
    /// Create it at once.
    Allow,
}

/// The observed state of a schedule, recomputed on every reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineScheduleStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The newest game date with a Production run of this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub last_scheduled_date: Option<String>,
    /// The game date of the next run due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub next_scheduled_date: Option<String>,
    /// The mode of the next run due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_mode: Option<Mode>,
    /// When the next run is due. Absent when the game-day list has no later game day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The last date the game-day list covers (its `through`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub game_days_through: Option<String>,
    /// Runs due (inside the catch-up window) that do not exist yet: suspended, waiting for a
    /// run in flight, or failing to be created. An alert on the metric
    /// `tipoff_schedule_overdue_runs` reads the same count.
    #[serde(default)]
    pub overdue: u32,
    /// Its most recent runs, newest date first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 31), transform = rules::list_map_name)]
    pub recent_runs: Vec<ScheduledRun>,
    /// Game days that got no run and never will from this schedule, newest first (at most
    /// 31; `missedCount` counts them all). A PipelineBackfill of those dates runs them; a run
    /// of the date, from anyone, removes it from the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 31))]
    pub missed: Vec<MissedRun>,
    /// How many game days are missed.
    #[serde(default)]
    pub missed_count: u32,
    /// Recent dates that got no run because they have no games (or are not covered by the
    /// game-day list yet), newest first (at most 31).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 31), transform = rules::list_map_date)]
    pub skipped: Vec<SkippedDate>,
    /// `Ready`: whether the schedule can schedule (time zone, times, game-day list); `Stalled`
    /// (kstatus): it cannot until its spec or game-day list is fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), transform = rules::list_map_type)]
    pub conditions: Vec<Condition>,
}

/// One run of a schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledRun {
    /// The run's name.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Its game date.
    #[schemars(length(max = 10))]
    pub date: String,
    /// Its mode.
    pub mode: Mode,
    /// Its state (absent until the run's first status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
}

/// A game day that got no run of one mode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MissedRun {
    /// The game date.
    #[schemars(length(max = 10))]
    pub date: String,
    /// The mode of the run it missed.
    pub mode: Mode,
    /// Why it is not created.
    pub reason: MissReason,
}

/// Why a due run is not created.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum MissReason {
    /// Its due time is older than `catchUpWindow`.
    OutsideCatchUpWindow,
    /// Newer due game days fill `maxCatchUp`.
    BeyondMaxCatchUp,
    /// A SameDay run whose day is over (its games have started).
    DayOver,
}

impl MissReason {
    /// The reason's name as it appears in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::OutsideCatchUpWindow => "OutsideCatchUpWindow",
            MissReason::BeyondMaxCatchUp => "BeyondMaxCatchUp",
            MissReason::DayOver => "DayOver",
        }
    }
}

/// A date that got no run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedDate {
    /// The date.
    #[schemars(length(max = 10))]
    pub date: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why a date gets no run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SkipReason {
    /// The game-day list covers the date and does not list it.
    NoGames,
    /// The date is after the game-day list's `through`: unknown, so not run (yet).
    NotInGameDays,
}

impl SkipReason {
    /// The reason's name as it appears in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoGames => "NoGames",
            SkipReason::NotInGameDays => "NotInGameDays",
        }
    }
}
