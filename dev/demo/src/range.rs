//! `tipoff-demo --dates FROM..TO`: the range as one PipelineBackfill, as a person would run it
//! (`tipoff backfill FROM TO --wait`), followed to its end: the backfill's progress line
//! whenever its counts change, and the phases of each date's run while it runs.
//!
//! The backfill pins the demo's release, runs the dates oldest first with `maxConcurrent: 1`
//! (a date's rolling features and its points model read every date before it, so the dates
//! cannot overlap), and in `Production` mode, so each date's run is the same run the demo
//! makes for a single `--date` (strict gates, players expected rather than who played).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde::Serialize;
use serde_json::json;
use tipoff_crds::{
    BackfillState, DateState, Mode, Order, PipelineBackfill, PipelineBackfillStatus, Release,
    Reprocess,
};

use tipoff_cli::backfill::{default_name, progress_line};
use tipoff_cli::cluster::Cluster;
use tipoff_cli::error::{CliError, Result};
use tipoff_cli::follow;

use crate::RangeDate;

/// The field manager the demo applies its backfill with.
const FIELD_MANAGER: &str = "tipoff-demo";
/// Runs in flight at once: one, oldest first (each date reads the ones before it).
pub const MAX_CONCURRENT: u32 = 1;

/// The backfill in the `--json` summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillSummary {
    /// Its name.
    pub name: String,
    /// The first and last date of its range.
    pub from: String,
    /// The last date (inclusive).
    pub to: String,
    /// How it ended.
    pub state: String,
    /// Ended / targeted, as in its DONE column.
    pub progress: String,
    /// Its counts at the end.
    pub counts: BTreeMap<String, u32>,
    /// Its `maxConcurrent`.
    pub max_concurrent: u32,
    /// The most of its runs in flight at once, from the runs' creation and completion times
    /// as the API server recorded them (never above `maxConcurrent`).
    pub max_in_flight: u32,
    /// Whether every run was created once the previous date's run had ended (oldest first,
    /// one at a time), from the same timestamps.
    pub oldest_first: bool,
    /// Wall time from apply to its end, in seconds.
    pub seconds: f64,
    /// Every progress line printed, in order.
    pub progress_lines: Vec<String>,
}

/// What the backfill did: its summary and every date with its run's outcome.
pub struct Outcome {
    /// The summary.
    pub summary: BackfillSummary,
    /// Every date of the range, oldest first.
    pub dates: Vec<RangeDate>,
    /// The last date's run (the one the demo's summary describes in full).
    pub last_run: String,
}

/// Applies the backfill of `from..=to` pinned to `release` and follows it until it ends,
/// calling `line` with progress. `per_date` bounds each date's run.
pub async fn run(
    cluster: &Cluster,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    release: &Release,
    per_date: Duration,
    line: &dyn Fn(&str),
) -> Result<Outcome> {
    let days = u32::try_from(from.until(to).map_or(0, |s| s.get_days()) + 1).unwrap_or(1);
    let (from, to) = (from.to_string(), to.to_string());
    let name = default_name(&from, &to, Reprocess::Missing);
    let api: Api<PipelineBackfill> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let body = json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineBackfill",
        "metadata": { "name": name },
        "spec": {
            "from": from,
            "to": to,
            "mode": Mode::Production,
            "release": release,
            "reprocess": Reprocess::Missing,
            "order": Order::OldestFirst,
            "maxConcurrent": MAX_CONCURRENT,
        },
    });
    let started = Instant::now();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| CliError::from_kube(&format!("applying backfill {name}"), e))?;
    line(&format!(
        "pipelinebackfill.tipoff.dev/{name} created: {from}..{to}, Production runs, maxConcurrent {MAX_CONCURRENT}, oldest first"
    ));

    let deadline = tokio::time::Instant::now() + per_date * days;
    let mut wake = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .map(|_| ())
    .boxed();
    let mut lines = Vec::new();
    let mut followed: Vec<String> = Vec::new();
    let status = loop {
        let status = api
            .get_status(&name)
            .await
            .map_err(|e| CliError::from_kube(&format!("reading backfill {name}"), e))?
            .status;
        // Nothing to show until the operator has written a status.
        let Some(status) = status else {
            if tokio::time::Instant::now() >= deadline {
                return Err(CliError::RunFailed(format!(
                    "backfill {name} got no status within {}s: is the operator running? `kubectl describe pipelinebackfill {name}`",
                    (per_date * days).as_secs()
                )));
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.next()).await;
            continue;
        };
        let progress = progress_line(&status, jiff::Timestamp::now());
        if lines.last() != Some(&progress) {
            line(&format!("backfill {name}: {progress}"));
            lines.push(progress);
        }
        if status
            .state
            .is_some_and(|s| s.is_terminal() || s == BackfillState::Blocked)
        {
            break status;
        }
        // A date's run that is in flight: follow its phases to its end (one at a time).
        let next = status
            .dates
            .iter()
            .find(|d| d.state == DateState::Running)
            .and_then(|d| Some((d.date.clone(), d.run.clone()?)))
            .filter(|(_, run)| !followed.contains(run));
        if let Some((date, run)) = next {
            line(&format!(
                "{date}: pipelinerun {run} started by the backfill"
            ));
            followed.push(run.clone());
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = follow::follow(
                cluster,
                &run,
                left,
                &mut |l| line(&format!("  {date} {l}")),
                &mut |_| true,
            )
            .await?;
            line(&format!(
                "{date}: pipelinerun {run} {} ({})",
                v.state, v.progress
            ));
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::RunFailed(format!(
                "backfill {name} did not end within {}s; `kubectl get pipelinebackfill {name}`",
                (per_date * days).as_secs()
            )));
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.next()).await;
    };
    let seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    if status.state != Some(BackfillState::Succeeded) {
        let why = tipoff_cli::backfill::why_not_succeeded(&status);
        line(&format!(
            "backfill {name} is {}{why}",
            status.state.map_or("Unknown", BackfillState::as_str)
        ));
    }
    let mut dates = Vec::new();
    for d in &status.dates {
        let (run, progress) = match &d.run {
            Some(run) => (
                run.clone(),
                follow::snapshot(cluster, run).await?.1.progress,
            ),
            None => (String::new(), String::new()),
        };
        dates.push(RangeDate {
            date: d.date.clone(),
            run,
            state: d.state.as_str().to_owned(),
            progress,
        });
    }
    let (max_in_flight, oldest_first) = overlap(cluster, &name).await?;
    let last_run = status
        .dates
        .iter()
        .rev()
        .find_map(|d| d.run.clone())
        .ok_or_else(|| {
            CliError::RunFailed(format!(
                "backfill {name} created no run (every date skipped?): `kubectl get pipelinebackfill {name} -o yaml`"
            ))
        })?;
    Ok(Outcome {
        summary: BackfillSummary {
            name,
            from,
            to,
            state: status
                .state
                .map_or("Unknown", BackfillState::as_str)
                .to_owned(),
            progress: status.progress.clone().unwrap_or_default(),
            counts: counts(&status),
            max_concurrent: MAX_CONCURRENT,
            max_in_flight,
            oldest_first,
            seconds,
            progress_lines: lines,
        },
        dates,
        last_run,
    })
}

/// From the backfill's runs' creation and completion times: the most in flight at once, and
/// whether each (by date) was created at or after the previous one ended. Times have
/// one-second resolution; a run created in the second the previous one ended counts as after.
async fn overlap(cluster: &Cluster, backfill: &str) -> Result<(u32, bool)> {
    let runs = cluster
        .runs()
        .list(&kube::api::ListParams::default().labels(&format!(
            "{}={backfill}",
            tipoff_crds::pipeline_backfill::LABEL_BACKFILL
        )))
        .await
        .map_err(|e| CliError::from_kube("listing the backfill's runs", e))?;
    let mut spans: Vec<(String, i64, i64)> = runs
        .items
        .iter()
        .map(|r| {
            let created = r
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second());
            let ended = r
                .status
                .as_ref()
                .and_then(|s| s.completion_time.as_ref())
                .map_or(i64::MAX, |t| t.0.as_second());
            (r.spec.date.clone(), created, ended)
        })
        .collect();
    spans.sort();
    let max = spans
        .iter()
        .map(|&(_, at, _)| {
            spans
                .iter()
                .filter(|&&(_, created, ended)| created <= at && at < ended)
                .count()
        })
        .max()
        .unwrap_or(0);
    let oldest_first = spans.windows(2).all(|w| w[1].1 >= w[0].2);
    Ok((u32::try_from(max).unwrap_or(u32::MAX), oldest_first))
}

fn counts(status: &PipelineBackfillStatus) -> BTreeMap<String, u32> {
    let c = status.counts;
    BTreeMap::from([
        ("targeted".to_owned(), c.targeted),
        ("pending".to_owned(), c.pending),
        ("running".to_owned(), c.running),
        ("succeeded".to_owned(), c.succeeded),
        ("failed".to_owned(), c.failed),
        ("skipped".to_owned(), c.skipped),
    ])
}
