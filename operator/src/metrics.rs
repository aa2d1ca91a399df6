//! Operator metrics (prometheus-client), exposed at `/metrics`. Label sets are bounded: error
//! categories and run states are fixed enums; no run names or dates are labels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use tipoff_crds::{
    BackfillCounts, Mode, PhaseState, PipelineBackfillStatus, PipelineRun, RunState,
};

use crate::planner::timing::RunTiming;
use crate::planner::{JobIntent, Plan};

/// The `category` label of errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    /// The error's fixed category.
    pub category: String,
}

/// The `state` label of runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// A run state.
    pub state: String,
}

/// The `field` label of drift findings: what differed (`Image`, `Commit`, `Processor`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FieldLabel {
    /// The drift field.
    pub field: String,
}

/// The labels of a schedule's gauges. Bounded: schedules are few and long-lived (one or two
/// per namespace), unlike runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ScheduleLabel {
    /// The schedule's namespace.
    pub namespace: String,
    /// The schedule's name.
    pub schedule: String,
}

/// The `mode` label of the run timing gauges: a run mode (three values).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    /// A run mode.
    pub mode: String,
}

/// The `phase` label of the phase timing gauges: a phase number (1-6).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// A phase number.
    pub phase: String,
}

/// The highest phase number (the catalog's phases are numbered 1-6).
const MAX_PHASE: u8 = 6;

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Production => "Production",
        Mode::SameDay => "SameDay",
        Mode::Backfill => "Backfill",
    }
}

/// Every run state, for the `runs` gauge.
const RUN_STATES: [RunState; 6] = [
    RunState::Pending,
    RunState::Running,
    RunState::Blocked,
    RunState::Suspended,
    RunState::Succeeded,
    RunState::Failed,
];

/// Every metric the operator exports.
pub struct Metrics {
    /// The registry they are registered in.
    pub registry: Registry,
    /// Reconciles completed.
    pub reconciles: Counter,
    /// Reconcile errors by category.
    pub reconcile_errors: Family<CategoryLabel, Counter>,
    /// Reconcile wall time.
    pub reconcile_duration: Histogram,
    /// Processor Jobs applied.
    pub jobs_created: Counter,
    /// Jobs applied for attempts after the first.
    pub retries: Counter,
    /// Seconds from a phase observed complete to the next phase's Jobs being created.
    pub trigger_latency: Histogram,
    /// Seconds from a phase's first Job to its success.
    pub phase_duration: Histogram,
    /// Runs by state (as last reconciled).
    pub runs: Family<StateLabel, Gauge>,
    /// Runs whose CodeDrift condition is True.
    pub runs_with_drift: Gauge,
    /// Drift findings recorded, by what differed.
    pub drift_findings: Family<FieldLabel, Counter>,
    /// Unix time of the last successful reconcile.
    pub last_successful_reconcile: Gauge<f64, AtomicU64>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// Backfill reconciles completed.
    pub backfill_reconciles: Counter,
    /// PipelineRuns applied by backfills.
    pub backfill_runs_created: Counter,
    /// Dates of every backfill by state (Pending, Running, Succeeded, Failed, Skipped).
    pub backfill_dates: Family<StateLabel, Gauge>,
    /// Schedule reconciles completed.
    pub schedule_reconciles: Counter,
    /// PipelineRuns created by schedules.
    pub schedule_runs_created: Counter,
    /// Per schedule: its last scheduled game date, as the Unix time of 00:00 UTC that day.
    pub schedule_last_scheduled_date: Family<ScheduleLabel, Gauge<f64, AtomicU64>>,
    /// Per schedule: the Unix time its next run is due (absent when none is listed).
    pub schedule_next_run: Family<ScheduleLabel, Gauge<f64, AtomicU64>>,
    /// Per schedule: the Unix time by which its next owed run should exist
    /// (`status.nextScheduleTime`): the due time of the oldest due run that does not exist yet
    /// (in the past while it waits), else the next game day's. Absent when neither exists.
    pub schedule_deadline: Family<ScheduleLabel, Gauge<f64, AtomicU64>>,
    /// Per mode: the earliest expected finish among runs in flight (absent when none).
    pub runs_expected_finish: Family<ModeLabel, Gauge<f64, AtomicU64>>,
    /// Per phase number: the earliest instant a running phase counts as stalled (absent when
    /// no run has that phase running).
    pub phases_stall: Family<PhaseLabel, Gauge<f64, AtomicU64>>,
    /// Per mode: when the most recent run that is `Failed` now failed (absent when none is).
    pub runs_last_failure: Family<ModeLabel, Gauge<f64, AtomicU64>>,
    /// Per schedule: runs due (their time of day has passed, inside the catch-up window) that
    /// do not exist.
    pub schedule_overdue_runs: Family<ScheduleLabel, Gauge>,
    /// Per schedule: game days missed (`status.missedCount`).
    pub schedule_missed_runs: Family<ScheduleLabel, Gauge>,
    /// Per schedule: 1 when its `Ready` condition is True.
    pub schedule_ready: Family<ScheduleLabel, Gauge>,
    /// When a reconcile last finished, successfully or not (monotonic clock; for liveness).
    last_finished: Mutex<Option<std::time::Instant>>,
    tracked: Mutex<Tracked>,
}

#[derive(Default)]
struct Tracked {
    states: BTreeMap<String, RunState>,
    drifted: BTreeSet<String>,
    phases_done: BTreeSet<(String, u8)>,
    triggered: BTreeSet<(String, u8)>,
    backfills: BTreeMap<String, BackfillCounts>,
    schedules: BTreeSet<ScheduleLabel>,
    timings: BTreeMap<String, RunTiming>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `tipoff` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tipoff");
        let m = Self {
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            jobs_created: Counter::default(),
            retries: Counter::default(),
            trigger_latency: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            phase_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            runs: Family::default(),
            runs_with_drift: Gauge::default(),
            drift_findings: Family::default(),
            last_successful_reconcile: Gauge::default(),
            leader: Gauge::default(),
            backfill_reconciles: Counter::default(),
            backfill_runs_created: Counter::default(),
            backfill_dates: Family::default(),
            schedule_reconciles: Counter::default(),
            schedule_runs_created: Counter::default(),
            schedule_last_scheduled_date: Family::default(),
            schedule_next_run: Family::default(),
            schedule_deadline: Family::default(),
            runs_expected_finish: Family::default(),
            phases_stall: Family::default(),
            runs_last_failure: Family::default(),
            schedule_overdue_runs: Family::default(),
            schedule_missed_runs: Family::default(),
            schedule_ready: Family::default(),
            last_finished: Mutex::new(None),
            tracked: Mutex::new(Tracked::default()),
            registry: Registry::default(),
        };
        registry.register("reconciles", "Reconciles completed", m.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconcile errors by category",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile wall time",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "jobs_created",
            "Processor Jobs applied",
            m.jobs_created.clone(),
        );
        registry.register(
            "retries",
            "Jobs applied for attempts after the first",
            m.retries.clone(),
        );
        registry.register(
            "trigger_latency_seconds",
            "From a phase observed complete to the next phase's Jobs created",
            m.trigger_latency.clone(),
        );
        registry.register(
            "phase_duration_seconds",
            "From a phase's first Job to its success",
            m.phase_duration.clone(),
        );
        registry.register("runs", "PipelineRuns by state", m.runs.clone());
        registry.register(
            "runs_with_drift",
            "PipelineRuns whose CodeDrift condition is True",
            m.runs_with_drift.clone(),
        );
        registry.register(
            "drift_findings",
            "Drift findings recorded in run statuses (code that ran differs from the pin), by field",
            m.drift_findings.clone(),
        );
        registry.register(
            "last_successful_reconcile_timestamp_seconds",
            "Unix time of the last successful reconcile; alert when it stops moving",
            m.last_successful_reconcile.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        registry.register(
            "backfill_reconciles",
            "PipelineBackfill reconciles completed",
            m.backfill_reconciles.clone(),
        );
        registry.register(
            "backfill_runs_created",
            "PipelineRuns applied by PipelineBackfills",
            m.backfill_runs_created.clone(),
        );
        registry.register(
            "backfill_dates",
            "Dates of every PipelineBackfill by state (Pending, Running, Succeeded, Failed, Skipped)",
            m.backfill_dates.clone(),
        );
        registry.register(
            "schedule_reconciles",
            "PipelineSchedule reconciles completed",
            m.schedule_reconciles.clone(),
        );
        registry.register(
            "schedule_runs_created",
            "PipelineRuns created by PipelineSchedules",
            m.schedule_runs_created.clone(),
        );
        registry.register(
            "schedule_last_scheduled_date_seconds",
            "The last game date a PipelineSchedule ran, as the Unix time of 00:00 UTC that day",
            m.schedule_last_scheduled_date.clone(),
        );
        registry.register(
            "schedule_next_run_timestamp_seconds",
            "Unix time the next run of a PipelineSchedule is due",
            m.schedule_next_run.clone(),
        );
        registry.register(
            "schedule_deadline_timestamp_seconds",
            "Unix time by which the next run a PipelineSchedule owes should exist: the due time of its oldest due run that does not exist (past while it waits), else its next game day's",
            m.schedule_deadline.clone(),
        );
        registry.register(
            "runs_expected_finish_timestamp_seconds",
            "Earliest expected finish among PipelineRuns in flight, by mode: start plus each phase's longest chain of processor deadlines",
            m.runs_expected_finish.clone(),
        );
        registry.register(
            "phases_stall_timestamp_seconds",
            "Earliest instant a running phase counts as stalled, by phase: its start plus its longest chain of processors using every attempt and backoff",
            m.phases_stall.clone(),
        );
        registry.register(
            "runs_last_failure_timestamp_seconds",
            "When the most recent PipelineRun that is Failed now failed, by mode (its completionTime); a re-run or deleted run leaves it",
            m.runs_last_failure.clone(),
        );
        registry.register(
            "schedule_overdue_runs",
            "Runs of a PipelineSchedule whose time of day has passed (inside the catch-up window) and that do not exist",
            m.schedule_overdue_runs.clone(),
        );
        registry.register(
            "schedule_missed_runs",
            "Game days a PipelineSchedule missed (beyond its catch-up window or cap) that have no run",
            m.schedule_missed_runs.clone(),
        );
        registry.register(
            "schedule_ready",
            "1 while a PipelineSchedule's Ready condition is True",
            m.schedule_ready.clone(),
        );
        Self { registry, ..m }
    }

    /// Records one successful reconcile of backfill `key` (`namespace/name`): its status and
    /// the runs it applied.
    pub fn observe_backfill(&self, key: &str, status: &PipelineBackfillStatus, took: Duration) {
        self.finished();
        self.backfill_reconciles.inc();
        tracing::debug!(
            backfill = key,
            took_ms = took.as_millis(),
            "backfill reconcile"
        );
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        t.backfills.insert(key.to_owned(), status.counts);
        self.publish_backfill_gauges(&t);
    }

    /// Forgets every backfill not in `live` (`namespace/name` keys).
    pub fn retain_backfills(&self, live: &BTreeSet<String>) {
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        t.backfills.retain(|k, _| live.contains(k));
        self.publish_backfill_gauges(&t);
    }

    fn publish_backfill_gauges(&self, t: &Tracked) {
        let sum = |f: fn(&BackfillCounts) -> u32| -> i64 {
            t.backfills.values().map(|c| i64::from(f(c))).sum()
        };
        for (state, n) in [
            ("Pending", sum(|c| c.pending)),
            ("Running", sum(|c| c.running)),
            ("Succeeded", sum(|c| c.succeeded)),
            ("Failed", sum(|c| c.failed)),
            ("Skipped", sum(|c| c.skipped)),
        ] {
            self.backfill_dates
                .get_or_create(&StateLabel {
                    state: state.to_owned(),
                })
                .set(n);
        }
    }

    /// Records one successful reconcile of schedule `namespace/name`: its status and when its
    /// next run is due.
    pub fn observe_schedule(
        &self,
        namespace: &str,
        name: &str,
        status: &tipoff_crds::PipelineScheduleStatus,
        next_due: Option<jiff::Timestamp>,
        took: Duration,
    ) {
        self.finished();
        self.schedule_reconciles.inc();
        tracing::debug!(
            schedule = name,
            took_ms = took.as_millis(),
            "schedule reconcile"
        );
        let label = ScheduleLabel {
            namespace: namespace.to_owned(),
            schedule: name.to_owned(),
        };
        if let Ok(mut t) = self.tracked.lock() {
            t.schedules.insert(label.clone());
        }
        let date_seconds = status
            .last_scheduled_date
            .as_deref()
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp().as_second() as f64);
        match date_seconds {
            Some(s) => {
                self.schedule_last_scheduled_date
                    .get_or_create(&label)
                    .set(s);
            }
            None => {
                self.schedule_last_scheduled_date.remove(&label);
            }
        }
        match next_due {
            Some(t) => {
                self.schedule_next_run
                    .get_or_create(&label)
                    .set(t.as_millisecond() as f64 / 1000.0);
            }
            None => {
                self.schedule_next_run.remove(&label);
            }
        }
        match &status.next_schedule_time {
            Some(t) => {
                self.schedule_deadline
                    .get_or_create(&label)
                    .set(t.0.as_millisecond() as f64 / 1000.0);
            }
            None => {
                self.schedule_deadline.remove(&label);
            }
        }
        self.schedule_overdue_runs
            .get_or_create(&label)
            .set(i64::from(status.overdue));
        self.schedule_missed_runs
            .get_or_create(&label)
            .set(i64::from(status.missed_count));
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.is_true());
        self.schedule_ready
            .get_or_create(&label)
            .set(i64::from(ready));
    }

    /// Forgets every schedule not in `live` (`namespace/name` keys).
    pub fn retain_schedules(&self, live: &BTreeSet<String>) {
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        let gone: Vec<ScheduleLabel> = t
            .schedules
            .iter()
            .filter(|l| !live.contains(&format!("{}/{}", l.namespace, l.schedule)))
            .cloned()
            .collect();
        for label in gone {
            self.schedule_last_scheduled_date.remove(&label);
            self.schedule_next_run.remove(&label);
            self.schedule_deadline.remove(&label);
            self.schedule_overdue_runs.remove(&label);
            self.schedule_missed_runs.remove(&label);
            self.schedule_ready.remove(&label);
            t.schedules.remove(&label);
        }
    }

    /// When a reconcile last finished, successfully or not.
    pub fn last_finished(&self) -> Option<std::time::Instant> {
        self.last_finished.lock().ok().and_then(|t| *t)
    }

    fn finished(&self) {
        if let Ok(mut t) = self.last_finished.lock() {
            *t = Some(std::time::Instant::now());
        }
    }

    /// Counts an error (a finished reconcile, for liveness).
    pub fn reconcile_error(&self, category: &str) {
        self.finished();
        self.reconcile_errors
            .get_or_create(&CategoryLabel {
                category: category.to_owned(),
            })
            .inc();
    }

    /// Records one successful reconcile of `run`: `plan` is the plan its statuses came from,
    /// `applied_jobs` the Jobs it applied.
    pub fn observe_reconcile(
        &self,
        run: &PipelineRun,
        state: Option<RunState>,
        plan: &Plan,
        applied_jobs: &[JobIntent],
        took: Duration,
    ) {
        self.finished();
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
        let now = jiff::Timestamp::now();
        self.last_successful_reconcile
            .set(now.as_millisecond() as f64 / 1000.0);
        let key = format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any());

        let Ok(mut t) = self.tracked.lock() else {
            return;
        };

        // Trigger latency: once per phase, when its first Jobs are created after the previous
        // phase finished. Later Jobs of the same phase (in-phase dependents, or the same Job
        // applied again before the watch cache shows it) are not triggers.
        let phases = &plan.run_status.phases;
        for intent in applied_jobs.iter().filter(|j| j.attempt == 1) {
            let previous = phases
                .iter()
                .filter(|p| p.phase < intent.phase)
                .max_by_key(|p| p.phase);
            if let Some(done) = previous.and_then(|p| p.completion_time.as_ref())
                && t.triggered.insert((key.clone(), intent.phase))
            {
                let secs = now.duration_since(done.0).as_secs_f64();
                self.trigger_latency.observe(secs.max(0.0));
            }
        }
        for p in phases.iter().filter(|p| p.state == PhaseState::Succeeded) {
            if let (Some(start), Some(end)) = (&p.start_time, &p.completion_time)
                && t.phases_done.insert((key.clone(), p.phase))
            {
                self.phase_duration
                    .observe(end.0.duration_since(start.0).as_secs_f64().max(0.0));
            }
        }
        // Findings the status just written has and the one planned from did not: each is
        // counted once (the next reconcile plans from the written status).
        let before = run.status.as_ref().map_or(&[][..], |s| &s.drift[..]);
        for finding in &plan.run_status.drift {
            if !before.contains(finding) {
                self.drift_findings
                    .get_or_create(&FieldLabel {
                        field: finding.field.as_str().to_owned(),
                    })
                    .inc();
            }
        }
        match state {
            Some(s) => {
                t.states.insert(key.clone(), s);
            }
            None => {
                t.states.remove(&key);
            }
        }
        let drift = plan
            .run_status
            .conditions
            .iter()
            .any(|c| c.type_ == "CodeDrift" && c.is_true());
        if drift {
            t.drifted.insert(key);
        } else {
            t.drifted.remove(&key);
        }
        self.publish_run_gauges(&t);
    }

    /// Forgets every run not in `live` (`namespace/name` keys), so deleted runs leave the
    /// gauges and the bookkeeping.
    pub fn retain_runs(&self, live: &BTreeSet<String>) {
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        t.states.retain(|k, _| live.contains(k));
        t.drifted.retain(|k| live.contains(k));
        t.phases_done.retain(|(k, _)| live.contains(k));
        t.triggered.retain(|(k, _)| live.contains(k));
        t.timings.retain(|k, _| live.contains(k));
        self.publish_run_gauges(&t);
        self.publish_timing_gauges(&t);
    }

    /// Records the instants run `key` (`namespace/name`) is measured against, from its
    /// reconcile ([`crate::planner::timing::run_timing`]).
    pub fn observe_timing(&self, key: &str, timing: RunTiming) {
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        if timing.is_empty() {
            t.timings.remove(key);
        } else {
            t.timings.insert(key.to_owned(), timing);
        }
        self.publish_timing_gauges(&t);
    }

    /// Sets the timing gauges to the earliest instants of the tracked runs; a mode or phase
    /// with no run in flight leaves its gauge absent (an alert comparing with `time()` then has
    /// nothing to compare).
    fn publish_timing_gauges(&self, t: &Tracked) {
        let seconds = |ts: jiff::Timestamp| ts.as_millisecond() as f64 / 1000.0;
        for mode in [Mode::Production, Mode::SameDay, Mode::Backfill] {
            let label = ModeLabel {
                mode: mode_name(mode).to_owned(),
            };
            let latest_failure = t
                .timings
                .values()
                .filter(|r| r.mode == Some(mode))
                .filter_map(|r| r.failed_at)
                .max();
            match latest_failure {
                Some(at) => {
                    self.runs_last_failure
                        .get_or_create(&label)
                        .set(seconds(at));
                }
                None => {
                    self.runs_last_failure.remove(&label);
                }
            }
            let earliest = t
                .timings
                .values()
                .filter(|r| r.mode == Some(mode))
                .filter_map(|r| r.expected_finish)
                .min();
            match earliest {
                Some(at) => {
                    self.runs_expected_finish
                        .get_or_create(&label)
                        .set(seconds(at));
                }
                None => {
                    self.runs_expected_finish.remove(&label);
                }
            }
        }
        for phase in 1..=MAX_PHASE {
            let earliest = t
                .timings
                .values()
                .flat_map(|r| {
                    r.stall_at
                        .iter()
                        .filter(|(p, _)| *p == phase)
                        .map(|(_, at)| *at)
                })
                .min();
            let label = PhaseLabel {
                phase: phase.to_string(),
            };
            match earliest {
                Some(at) => {
                    self.phases_stall.get_or_create(&label).set(seconds(at));
                }
                None => {
                    self.phases_stall.remove(&label);
                }
            }
        }
    }

    /// Sets the run gauges from the tracked states.
    fn publish_run_gauges(&self, t: &Tracked) {
        for s in RUN_STATES {
            let n = t.states.values().filter(|v| **v == s).count();
            self.runs
                .get_or_create(&StateLabel {
                    state: s.as_str().to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.runs_with_drift
            .set(i64::try_from(t.drifted.len()).unwrap_or(i64::MAX));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn deleted_runs_leave_the_gauges() {
        let m = Metrics::new();
        if let Ok(mut t) = m.tracked.lock() {
            t.states.insert("ns/a".into(), RunState::Running);
            t.states.insert("ns/b".into(), RunState::Succeeded);
            t.drifted.insert("ns/b".into());
        }
        m.retain_runs(&BTreeSet::from(["ns/a".to_owned()]));
        let text = m.encode();
        assert!(
            text.contains("tipoff_runs{state=\"Succeeded\"} 0"),
            "{text}"
        );
        assert!(text.contains("tipoff_runs{state=\"Running\"} 1"), "{text}");
        assert!(text.contains("tipoff_runs_with_drift 0"), "{text}");
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn schedule_status(next: Option<i64>) -> tipoff_crds::PipelineScheduleStatus {
        tipoff_crds::PipelineScheduleStatus {
            next_schedule_time: next.map(|s| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::from_second(s).unwrap(),
                )
            }),
            ..Default::default()
        }
    }

    const DEADLINE: &str =
        r#"tipoff_schedule_deadline_timestamp_seconds{namespace="nba",schedule="daily"}"#;

    #[test]
    fn the_schedule_deadline_is_the_next_owed_run_even_when_it_is_overdue() {
        let m = Metrics::new();
        // Overdue: status.nextScheduleTime is the waiting run's due time, in the past, while
        // the next future due time (schedule_next_run) is already the day after.
        let future = jiff::Timestamp::from_second(1_800_086_400).unwrap();
        m.observe_schedule(
            "nba",
            "daily",
            &schedule_status(Some(1_800_000_000)),
            Some(future),
            Duration::ZERO,
        );
        let text = m.encode();
        assert_eq!(sample(&text, DEADLINE), Some(1_800_000_000.0), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"tipoff_schedule_next_run_timestamp_seconds{namespace="nba",schedule="daily"}"#
            ),
            Some(1_800_086_400.0),
            "{text}"
        );

        // Nothing owed and no later game day: absent, not 0 (which an alert would read as
        // long overdue).
        m.observe_schedule("nba", "daily", &schedule_status(None), None, Duration::ZERO);
        let text = m.encode();
        assert_eq!(sample(&text, DEADLINE), None, "{text}");

        // A deleted schedule leaves it.
        m.observe_schedule(
            "nba",
            "daily",
            &schedule_status(Some(1_800_000_000)),
            None,
            Duration::ZERO,
        );
        m.retain_schedules(&BTreeSet::new());
        assert_eq!(sample(&m.encode(), DEADLINE), None);
    }

    fn timing(mode: Mode, finish: Option<i64>, stall: &[(u8, i64)]) -> RunTiming {
        let at = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        RunTiming {
            mode: Some(mode),
            expected_finish: finish.map(at),
            stall_at: stall.iter().map(|(p, s)| (*p, at(*s))).collect(),
            failed_at: None,
        }
    }

    #[test]
    fn the_last_failure_is_the_latest_failed_run_per_mode_until_it_is_rerun() {
        let m = Metrics::new();
        let failed = |s: i64| RunTiming {
            mode: Some(Mode::Production),
            failed_at: Some(jiff::Timestamp::from_second(s).unwrap()),
            ..RunTiming::default()
        };
        let series = r#"tipoff_runs_last_failure_timestamp_seconds{mode="Production"}"#;
        m.observe_timing("ns/a", failed(1_000));
        m.observe_timing("ns/b", failed(2_000));
        assert_eq!(sample(&m.encode(), series), Some(2_000.0));
        // b is re-run: in flight again, it leaves the failures.
        m.observe_timing("ns/b", timing(Mode::Production, Some(9_000), &[]));
        assert_eq!(sample(&m.encode(), series), Some(1_000.0));
        // a is deleted.
        m.retain_runs(&BTreeSet::from(["ns/b".to_owned()]));
        assert_eq!(sample(&m.encode(), series), None);
    }

    #[test]
    fn the_timing_gauges_show_the_earliest_run_per_mode_and_phase() {
        let m = Metrics::new();
        m.observe_timing("ns/a", timing(Mode::Production, Some(5_000), &[(3, 4_000)]));
        m.observe_timing("ns/b", timing(Mode::Production, Some(3_000), &[(3, 6_000)]));
        m.observe_timing("ns/c", timing(Mode::Backfill, Some(9_000), &[(1, 7_000)]));
        let text = m.encode();
        let finish = |mode: &str| {
            sample(
                &text,
                &format!(r#"tipoff_runs_expected_finish_timestamp_seconds{{mode="{mode}"}}"#),
            )
        };
        let stall = |phase: u8| {
            sample(
                &text,
                &format!(r#"tipoff_phases_stall_timestamp_seconds{{phase="{phase}"}}"#),
            )
        };
        assert_eq!(finish("Production"), Some(3_000.0), "{text}");
        assert_eq!(finish("Backfill"), Some(9_000.0), "{text}");
        assert_eq!(finish("SameDay"), None, "{text}");
        assert_eq!(stall(3), Some(4_000.0), "{text}");
        assert_eq!(stall(1), Some(7_000.0), "{text}");
        assert_eq!(stall(2), None, "{text}");

        // b ended (no timing), c was deleted: their instants leave the gauges.
        m.observe_timing("ns/b", timing(Mode::Production, None, &[]));
        m.retain_runs(&BTreeSet::from(["ns/a".to_owned(), "ns/b".to_owned()]));
        let text = m.encode();
        let finish = |mode: &str| {
            sample(
                &text,
                &format!(r#"tipoff_runs_expected_finish_timestamp_seconds{{mode="{mode}"}}"#),
            )
        };
        assert_eq!(finish("Production"), Some(5_000.0), "{text}");
        assert_eq!(finish("Backfill"), None, "{text}");
        assert_eq!(
            sample(&text, r#"tipoff_phases_stall_timestamp_seconds{phase="1"}"#),
            None,
            "{text}"
        );
    }
}
