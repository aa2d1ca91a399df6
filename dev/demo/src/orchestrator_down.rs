//! The `orchestrator-down` scenario (seed 003: the legacy orchestrator failed its health check
//! on Jan 29 and nobody noticed until Feb 1): a PipelineSchedule runs the season's game days,
//! the operator that runs it is stopped while three game days fall due, and comes back. The
//! scenario shows what the schedule then does: it creates the run of every game day it missed
//! inside `catchUpWindow`, exactly once, oldest first (each once the previous ended), and
//! reports the ones outside the window as missed.
//!
//! Days pass in seconds: the schedules read "now" from the operator's test-only clock file
//! (`docs/schedule.md`, "Test-only clock"), which this module moves; the runs and their Jobs
//! keep the system clock, and the processors run every caught-up date for real.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde_json::json;
use tipoff_crds::pipeline_schedule::{DEFAULT_PRODUCTION_TIME, LABEL_GAME_DAYS, LABEL_SCHEDULE};
use tipoff_crds::{PipelineRun, PipelineSchedule, Release};
use tipoff_operator::catalog::Catalog;
use tipoff_operator::controller::schedule::Clock;
use tipoff_season::Season;

use tipoff_cli::cluster::Cluster;
use tipoff_cli::error::{CliError, Result};
use tipoff_cli::follow;

use crate::stack::Operator;

/// The schedule's name.
pub const SCHEDULE: &str = "nba";
/// The game-day ConfigMap's name.
pub const GAME_DAYS: &str = "nba-game-days";
/// The last game day whose run the operator creates before it goes down (seed 003: the
/// orchestrator failed on Jan 29).
pub const LAST_BEFORE: Date = Date::constant(2026, 1, 28);
/// Game days whose runs fall due while the operator is down.
pub const DOWN_DAYS: i8 = 3;
/// The schedule's time zone (its default).
const ZONE: &str = "America/New_York";

/// What the schedule did across the outage, for the `--json` summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchUp {
    /// The schedule.
    pub schedule: String,
    /// Its `catchUpWindow` (the default).
    pub catch_up_window: String,
    /// Simulated time when the operator was stopped.
    pub down_at: String,
    /// Simulated time when it came back.
    pub back_at: String,
    /// Game days whose Production run fell due while it was down.
    pub due_while_down: Vec<String>,
    /// Runs of the schedule created while it was down (none can be).
    pub created_while_down: usize,
    /// The runs the schedule created after it came back, in date order.
    pub caught_up: Vec<CaughtUpRun>,
    /// Whether each caught-up run was created once the previous date's run had ended
    /// (`concurrencyPolicy: Forbid`), and in date order.
    pub oldest_first: bool,
    /// Runs per date of the schedule (every date exactly one).
    pub runs_per_date: BTreeMap<String, usize>,
    /// Game days the schedule reports missed (outside the window), with the reason.
    pub missed: Vec<DateReason>,
    /// Days the schedule skipped (no games), with the reason.
    pub skipped: Vec<DateReason>,
    /// The schedule's `lastScheduledDate` at the end.
    pub last_scheduled_date: Option<String>,
    /// Its `Ready` condition at the end (`reason: message`).
    pub ready: Option<String>,
}

/// One run created by the catch-up.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaughtUpRun {
    /// The game date.
    pub date: String,
    /// The run.
    pub run: String,
    /// How it ended.
    pub state: String,
    /// Processors succeeded / expected.
    pub progress: String,
    /// When it was created and ended (system clock, RFC 3339).
    pub created: Option<String>,
    /// When it ended.
    pub ended: Option<String>,
}

/// A date and why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DateReason {
    /// The date.
    pub date: String,
    /// Why.
    pub reason: String,
}

/// The dates the scenario runs: the last game day before the outage, then the game days that
/// fall due while the operator is down (oldest first).
pub fn dates(season: &Season) -> Vec<Date> {
    let mut out = vec![LAST_BEFORE];
    let mut d = LAST_BEFORE;
    for _ in 0..DOWN_DAYS {
        d = match d.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
        if season.by_date.contains_key(&d) {
            out.push(d);
        }
    }
    out
}

/// 07:00 in the schedule's zone on `day`: an hour after the Production run of the day before
/// fell due.
fn morning_after(day: Date) -> Result<jiff::Timestamp> {
    let tz =
        TimeZone::get(ZONE).map_err(|e| CliError::Other(format!("the time zone {ZONE}: {e}")))?;
    day.at(7, 0, 0, 0)
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .map_err(|e| CliError::Other(format!("07:00 on {day}: {e}")))
}

fn set_clock(file: &Path, at: jiff::Timestamp) -> Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, at.to_string())
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| CliError::Other(format!("writing the test clock {}: {e}", file.display())))
}

/// The game-day ConfigMap from the season's schedule: every game date, complete through the
/// season's last day (`docs/schedule.md`).
fn game_days(season: &Season) -> Result<ConfigMap> {
    let mut text = format!(
        "# {} regular season, from dev/season's league schedule\n",
        tipoff_season::schedule::SEASON
    );
    text.push_str(&format!(
        "through: {}\n",
        tipoff_season::schedule::SEASON_END
    ));
    for d in season.by_date.keys() {
        text.push_str(&format!("{d}\n"));
    }
    serde_json::from_value(json!({
        "metadata": { "name": GAME_DAYS, "labels": { LABEL_GAME_DAYS: "true" } },
        "data": { "dates": text },
    }))
    .map_err(|e| CliError::Other(format!("the game-day ConfigMap: {e}")))
}

async fn schedule_runs(cluster: &Cluster) -> Result<Vec<PipelineRun>> {
    let mut runs = cluster
        .runs()
        .list(&ListParams::default().labels(&format!("{LABEL_SCHEDULE}={SCHEDULE}")))
        .await
        .map_err(|e| CliError::from_kube("listing the schedule's runs", e))?
        .items;
    runs.sort_by(|a, b| a.spec.date.cmp(&b.spec.date));
    Ok(runs)
}

/// Waits for the schedule's run of `date` to exist, then follows it to its end.
async fn follow_date(
    cluster: &Cluster,
    date: Date,
    timeout: Duration,
    line: &dyn Fn(&str),
) -> Result<tipoff_cli::view::RunView> {
    let deadline = tokio::time::Instant::now() + timeout;
    let date = date.to_string();
    let name = loop {
        if let Some(run) = schedule_runs(cluster)
            .await?
            .into_iter()
            .find(|r| r.spec.date == date)
        {
            break run.name_any();
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::RunFailed(format!(
                "schedule {SCHEDULE} created no run for {date} within {}s: `kubectl describe pipelineschedule {SCHEDULE}`",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    line(&format!(
        "{date}: pipelinerun {name} created by schedule {SCHEDULE}"
    ));
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let v = follow::follow(
        cluster,
        &name,
        left,
        &mut |l| line(&format!("  {date} {l}")),
        &mut |_| true,
    )
    .await?;
    line(&format!(
        "{date}: pipelinerun {name} {} ({})",
        v.state, v.progress
    ));
    Ok(v)
}

/// Everything the scenario needs from the demo's stack.
pub struct Stack<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The operator, stopped and started again here.
    pub operator: &'a tokio::sync::Mutex<Option<Operator>>,
    /// Its catalog, to start it again.
    pub catalog: &'a Catalog,
    /// The schedules' clock file.
    pub clock_file: &'a Path,
}

/// Plays the outage: the schedule runs [`LAST_BEFORE`], the operator stops while the next
/// game days fall due, comes back, and catches up. Returns what happened and the name of the
/// last caught-up run.
pub async fn play(
    stack: Stack<'_>,
    season: &Season,
    release: &Release,
    timeout: Duration,
    line: &dyn Fn(&str),
) -> Result<(CatchUp, String)> {
    let Stack {
        cluster,
        operator,
        catalog,
        clock_file,
    } = stack;
    let dates = dates(season);
    let due_while_down: Vec<Date> = dates[1..].to_vec();
    let first_due = morning_after(LAST_BEFORE.tomorrow().unwrap_or(LAST_BEFORE))?;
    set_clock(clock_file, first_due)?;

    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    cms.create(&PostParams::default(), &game_days(season)?)
        .await
        .map_err(|e| CliError::from_kube("creating the game-day ConfigMap", e))?;
    let schedule: PipelineSchedule = serde_json::from_value(json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineSchedule",
        "metadata": { "name": SCHEDULE },
        "spec": {
            "gameDays": { "configMap": GAME_DAYS },
            "release": release,
            "startDate": LAST_BEFORE.to_string(),
        },
    }))
    .map_err(|e| CliError::Other(format!("the schedule: {e}")))?;
    let window = schedule.spec.catch_up_window.clone();
    Api::<PipelineSchedule>::namespaced(cluster.client.clone(), &cluster.namespace)
        .create(&PostParams::default(), &schedule)
        .await
        .map_err(|e| CliError::from_kube("creating the schedule", e))?;
    line(&format!(
        "configmap/{GAME_DAYS} ({} game days) and pipelineschedule.tipoff.dev/{SCHEDULE} created: Production runs at {DEFAULT_PRODUCTION_TIME} {ZONE} the morning after each game day, catchUpWindow {window}",
        season.by_date.len()
    ));
    line(&format!(
        "simulated time {first_due} (07:00 EST on {}): {LAST_BEFORE}'s run is due",
        first_due.to_zoned(TimeZone::UTC).date()
    ));
    follow_date(cluster, LAST_BEFORE, timeout, line).await?;

    // Seed 003: the orchestrator fails on Jan 29, and the game days go by.
    if let Some(op) = operator.lock().await.take() {
        op.stop().await;
    }
    let down_at = first_due;
    line(&format!(
        "  !! operator stopped at simulated {down_at} (seed 003: the orchestrator failed its health check on Jan 29)"
    ));
    let mut back_at = down_at;
    for d in &due_while_down {
        back_at = morning_after(d.tomorrow().unwrap_or(*d))?;
        set_clock(clock_file, back_at)?;
        // A running schedule reads this clock every second: give it the time to act.
        tokio::time::sleep(Duration::from_secs(2)).await;
        line(&format!(
            "  !! simulated {back_at}: {d}'s Production run fell due at {DEFAULT_PRODUCTION_TIME}; no operator is running"
        ));
    }
    let created_while_down = schedule_runs(cluster).await?.len().saturating_sub(1);
    line(&format!(
        "  !! runs created while it was down: {created_while_down}"
    ));
    *operator.lock().await = Some(Operator::start_with_clock(
        cluster.client.clone(),
        catalog.clone(),
        Clock::File(clock_file.to_owned()),
    ));
    line(&format!(
        "  !! operator back at simulated {back_at}: the schedule catches up every game day inside {window}, oldest first"
    ));

    let mut caught_up = Vec::new();
    for d in &due_while_down {
        let v = follow_date(cluster, *d, timeout, line).await?;
        caught_up.push(CaughtUpRun {
            date: d.to_string(),
            run: v.name.clone(),
            state: v.state.clone(),
            progress: v.progress.clone(),
            created: v.created.map(|t| t.to_string()),
            ended: v.completed.map(|t| t.to_string()),
        });
    }

    // The schedule's own account, once it has recorded the last run.
    let last = due_while_down
        .last()
        .copied()
        .unwrap_or(LAST_BEFORE)
        .to_string();
    let api: Api<PipelineSchedule> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = api
            .get_status(SCHEDULE)
            .await
            .map_err(|e| CliError::from_kube("reading the schedule", e))?
            .status
            .unwrap_or_default();
        if s.last_scheduled_date.as_deref() == Some(last.as_str())
            || tokio::time::Instant::now() >= deadline
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let runs = schedule_runs(cluster).await?;
    let mut runs_per_date = BTreeMap::new();
    for r in &runs {
        *runs_per_date.entry(r.spec.date.clone()).or_insert(0) += 1;
    }
    let second = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let oldest_first = caught_up.windows(2).all(|w| {
        w[0].date < w[1].date
            && matches!((second(&w[0].ended), second(&w[1].created)), (Some(e), Some(c)) if c.as_second() >= e.as_second())
    });
    let reasons = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(date, reason)| DateReason { date, reason })
            .collect::<Vec<_>>()
    };
    let catch_up = CatchUp {
        schedule: SCHEDULE.to_owned(),
        catch_up_window: window,
        down_at: down_at.to_string(),
        back_at: back_at.to_string(),
        due_while_down: due_while_down.iter().map(Date::to_string).collect(),
        created_while_down,
        caught_up,
        oldest_first,
        runs_per_date,
        missed: reasons(
            status
                .missed
                .iter()
                .map(|m| (m.date.clone(), m.reason.as_str().to_owned()))
                .collect(),
        ),
        skipped: reasons(
            status
                .skipped
                .iter()
                .map(|k| (k.date.clone(), k.reason.as_str().to_owned()))
                .collect(),
        ),
        last_scheduled_date: status.last_scheduled_date.clone(),
        ready: status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| format!("{:?} {}: {}", c.status, c.reason, c.message)),
    };
    let last_run = runs
        .iter()
        .rev()
        .find(|r| r.spec.date == last)
        .map(ResourceExt::name_any)
        .ok_or_else(|| CliError::RunFailed(format!("no run of {last}")))?;
    Ok((catch_up, last_run))
}
