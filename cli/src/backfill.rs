//! `tipoff backfill FROM TO`: applies a PipelineBackfill (server-side apply; the same
//! arguments twice are one backfill) and, with `--wait`, follows it with a progress line per
//! change: a bar, the counts and the ETA the operator estimates.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tipoff_crds::pipeline_schedule::LABEL_GAME_DAYS;
use tipoff_crds::{
    BackfillState, DateState, GameDaysSource, Mode, Order, PipelineBackfill,
    PipelineBackfillStatus, Release, Reprocess,
};

use crate::cluster::{Cluster, parse_date};
use crate::error::{CliError, Result};

/// The field manager of `tipoff backfill`.
pub const FIELD_MANAGER: &str = "tipoff-cli-backfill";
/// Width of the progress bar in characters.
const BAR: usize = 24;

/// What `tipoff backfill` was asked for.
pub struct BackfillArgs {
    /// The first date.
    pub from: String,
    /// The last date (inclusive).
    pub to: String,
    /// The backfill's name (default [`default_name`]).
    pub name: Option<String>,
    /// The release to pin (needed for a new backfill).
    pub release: Option<Release>,
    /// Which dates are run.
    pub reprocess: Reprocess,
    /// Runs in flight at once (the operator's default when omitted).
    pub max_concurrent: Option<u32>,
    /// Which dates start first.
    pub order: Order,
    /// The runs' mode.
    pub mode: Mode,
    /// The game-day list (`Some(None)`: `--game-days none`; `None`: find the namespace's).
    pub game_days: Option<Option<GameDaysSource>>,
    /// Follow it until it ends.
    pub wait: bool,
    /// How long to follow.
    pub timeout: Duration,
}

/// The name of the backfill of `from`..`to` under `reprocess` when none is given:
/// `backfill-<from>-<to>-<policy>`, so running the same command twice is one backfill.
pub fn default_name(from: &str, to: &str, reprocess: Reprocess) -> String {
    format!(
        "backfill-{from}-{to}-{}",
        reprocess.as_str().to_ascii_lowercase()
    )
}

/// Parses `--reprocess`.
pub fn parse_reprocess(text: &str) -> Result<Reprocess> {
    [
        Reprocess::Missing,
        Reprocess::Failed,
        Reprocess::Drifted,
        Reprocess::All,
    ]
    .into_iter()
    .find(|r| r.as_str().eq_ignore_ascii_case(text))
    .ok_or_else(|| {
        CliError::Usage(format!(
            "invalid --reprocess {text:?}: use missing (no successful run), failed, drifted or all"
        ))
    })
}

/// Parses `--game-days`: `CONFIGMAP`, `CONFIGMAP/KEY` (key default `dates`), or `none`.
pub fn parse_game_days(text: &str) -> Result<Option<GameDaysSource>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (config_map, key) = match text.split_once('/') {
        Some((cm, key)) => (cm, key),
        None => (text, tipoff_crds::pipeline_schedule::DEFAULT_GAME_DAYS_KEY),
    };
    if config_map.is_empty() || key.is_empty() {
        return Err(CliError::Usage(format!(
            "invalid --game-days {text:?}: use CONFIGMAP, CONFIGMAP/KEY or none"
        )));
    }
    Ok(Some(GameDaysSource {
        config_map: config_map.to_owned(),
        key: key.to_owned(),
    }))
}

/// The game-day list of the namespace when `--game-days` is not given: its one ConfigMap
/// labelled `tipoff.dev/game-days` (with the default key), if there is exactly one and the
/// user may list ConfigMaps. Says which it picked, or why none.
async fn namespace_game_days(cluster: &Cluster) -> Option<GameDaysSource> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let listed = api
        .list_metadata(&ListParams::default().labels(LABEL_GAME_DAYS))
        .await;
    let names: Vec<String> = match listed {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect(),
        Err(e) => {
            eprintln!(
                "note: cannot list the game-day ConfigMaps ({e}); every date is targeted (pass --game-days CONFIGMAP to skip dates without games)"
            );
            return None;
        }
    };
    match names.as_slice() {
        [one] => {
            println!(
                "dates without games are skipped (game days: ConfigMap {one}; --game-days none to run every date)"
            );
            Some(GameDaysSource {
                config_map: one.clone(),
                key: tipoff_crds::pipeline_schedule::DEFAULT_GAME_DAYS_KEY.to_owned(),
            })
        }
        [] => None,
        many => {
            eprintln!(
                "note: {} ConfigMaps are labelled {LABEL_GAME_DAYS} ({}); pass --game-days CONFIGMAP to skip dates without games",
                many.len(),
                many.join(", ")
            );
            None
        }
    }
}

/// Parses `--order`.
pub fn parse_order(text: &str) -> Result<Order> {
    match text.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "oldestfirst" | "oldest" => Ok(Order::OldestFirst),
        "newestfirst" | "newest" => Ok(Order::NewestFirst),
        _ => Err(CliError::Usage(format!(
            "invalid --order {text:?}: use oldest-first or newest-first"
        ))),
    }
}

/// What a PipelineBackfill manifest is made of (`tipoff backfill` and the dashboard's dialog).
pub struct Manifest<'a> {
    /// Its name.
    pub name: &'a str,
    /// The first date.
    pub from: &'a str,
    /// The last date, inclusive.
    pub to: &'a str,
    /// The runs' mode.
    pub mode: Mode,
    /// The release the runs pin.
    pub release: &'a Release,
    /// Which dates.
    pub reprocess: Reprocess,
    /// Oldest or newest first.
    pub order: Order,
    /// Runs in flight at once (the CRD's default when `None`).
    pub max_concurrent: Option<u32>,
    /// The game-day list whose unlisted dates are skipped (`NoGames`).
    pub game_days: Option<&'a GameDaysSource>,
}

/// The PipelineBackfill object to apply (server-side apply, [`FIELD_MANAGER`]).
pub fn manifest(m: &Manifest<'_>) -> serde_json::Value {
    let mut spec = json!({
        "from": m.from,
        "to": m.to,
        "mode": m.mode,
        "release": m.release,
        "reprocess": m.reprocess,
        "order": m.order,
    });
    if let Some(n) = m.max_concurrent {
        spec["maxConcurrent"] = json!(n);
    }
    if let Some(g) = m.game_days {
        spec["gameDays"] = json!(g);
    }
    json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineBackfill",
        "metadata": { "name": m.name },
        "spec": spec,
    })
}

/// Applies `body` (a [`manifest`]) as backfill `name`; returns the applied object.
pub async fn apply(
    cluster: &Cluster,
    name: &str,
    body: &serde_json::Value,
) -> std::result::Result<PipelineBackfill, kube::Error> {
    let api: Api<PipelineBackfill> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
}

/// Applies the backfill and, with `--wait`, follows it to its end (exit 6 if it failed or
/// was refused).
pub async fn backfill(cluster: &Cluster, args: BackfillArgs) -> Result<()> {
    let (from, to) = (parse_date(&args.from)?, parse_date(&args.to)?);
    if to < from {
        return Err(CliError::Usage(format!(
            "TO ({}) is before FROM ({}): the range is inclusive, FROM first",
            args.to, args.from
        )));
    }
    if let Some(n) = args.max_concurrent
        && !(1..=tipoff_crds::pipeline_backfill::MAX_CONCURRENT).contains(&n)
    {
        return Err(CliError::Usage(format!(
            "--max-concurrent {n}: give 1 to {}",
            tipoff_crds::pipeline_backfill::MAX_CONCURRENT
        )));
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_name(&args.from, &args.to, args.reprocess));
    let api: Api<PipelineBackfill> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| CliError::from_kube("reading the backfill", e))?;
    let release = match (&args.release, &existing) {
        (Some(r), _) => r.clone(),
        (None, Some(b)) => b.spec.release.clone(),
        (None, None) => {
            return Err(CliError::Usage(format!(
                "no backfill {name} yet: pass --release FILE (image pinned by digest and commit)"
            )));
        }
    };
    // Omitted on an existing backfill: keep its value (as the release), so the same command
    // without the flag changes nothing.
    let max_concurrent = args
        .max_concurrent
        .or_else(|| existing.as_ref().map(|b| b.spec.max_concurrent));
    // Omitted: an existing backfill keeps its list; a new one takes the namespace's.
    let game_days = match (&args.game_days, &existing) {
        (Some(choice), _) => choice.clone(),
        (None, Some(b)) => b.spec.game_days.clone(),
        (None, None) => namespace_game_days(cluster).await,
    };
    let body = manifest(&Manifest {
        name: &name,
        from: &args.from,
        to: &args.to,
        mode: args.mode,
        release: &release,
        reprocess: args.reprocess,
        order: args.order,
        max_concurrent,
        game_days: game_days.as_ref(),
    });
    let applied = apply(cluster, &name, &body)
        .await
        .map_err(|e| CliError::from_kube(&format!("applying {name}"), e))?;
    let verb = match &existing {
        None => "created",
        Some(e) if e.metadata.generation != applied.metadata.generation => "configured",
        Some(_) => "unchanged",
    };
    println!("pipelinebackfill.tipoff.dev/{name} {verb}");
    if !args.wait {
        return Ok(());
    }
    let status = follow(&api, &name, args.timeout).await?;
    finish(&name, &status)
}

/// Follows backfill `name`, printing a progress line whenever its status changes, until it
/// ends or is refused; returns its last status.
async fn follow(
    api: &Api<PipelineBackfill>,
    name: &str,
    timeout: Duration,
) -> Result<PipelineBackfillStatus> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut updates = watcher(api.clone(), config).applied_objects().boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_line = String::new();
    loop {
        let next = tokio::time::timeout_at(deadline, updates.next())
            .await
            .map_err(|_| {
                CliError::RunFailed(format!(
                    "backfill {name} did not end within {}s; it goes on: `kubectl get pipelinebackfill {name}`",
                    timeout.as_secs()
                ))
            })?;
        let backfill = match next {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return Err(CliError::Unreachable(format!("watching {name}: {e}")));
            }
            None => return Err(CliError::Other(format!("the watch of {name} ended"))),
        };
        let Some(status) = backfill.status else {
            continue;
        };
        let line = progress_line(&status, jiff::Timestamp::now());
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        if status
            .state
            .is_some_and(|s| s.is_terminal() || s == BackfillState::Blocked)
        {
            return Ok(status);
        }
    }
}

/// Why a backfill did not succeed: `: <message>` of its true `Blocked` or `Failed` condition,
/// or nothing.
pub fn why_not_succeeded(status: &PipelineBackfillStatus) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.is_true() && (c.type_ == "Blocked" || c.type_ == "Failed"))
        .map(|c| format!(": {}", c.message))
        .unwrap_or_default()
}

fn finish(name: &str, status: &PipelineBackfillStatus) -> Result<()> {
    let state = status.state.map_or("Unknown", BackfillState::as_str);
    if status.state == Some(BackfillState::Succeeded) {
        return Ok(());
    }
    let why = why_not_succeeded(status);
    Err(CliError::RunFailed(format!(
        "backfill {name} is {state}{why}"
    )))
}

/// One line of progress: a bar of the targeted dates that ended, the counts, and the ETA
/// (with how far off it is from `now`).
pub fn progress_line(status: &PipelineBackfillStatus, now: jiff::Timestamp) -> String {
    let c = status.counts;
    let ended = c.succeeded + c.failed;
    let filled = if c.targeted == 0 {
        BAR
    } else {
        (ended as usize * BAR) / c.targeted as usize
    };
    let bar: String = "#".repeat(filled) + &"-".repeat(BAR - filled);
    let state = status.state.map_or("Pending", BackfillState::as_str);
    let mut line = format!(
        "[{bar}] {ended}/{} {state}: {} running, {} pending, {} succeeded, {} failed, {} skipped",
        c.targeted, c.running, c.pending, c.succeeded, c.failed, c.skipped
    );
    if let Some(eta) = &status.estimated_completion_time {
        let left = eta.0.duration_since(now).as_secs().max(0);
        line.push_str(&format!(
            ", ETA {} (in {}m{:02}s)",
            eta.0.strftime("%H:%M:%SZ"),
            left / 60,
            left % 60
        ));
    }
    let waiting = status
        .dates
        .iter()
        .filter(|d| d.state == DateState::Pending && d.reason.is_some())
        .count();
    if waiting > 0 {
        line.push_str(&format!(
            ", {waiting} waiting for another run of their date"
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tipoff_crds::BackfillCounts;

    #[test]
    fn the_progress_line_shows_a_bar_the_counts_and_the_eta() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let status = PipelineBackfillStatus {
            state: Some(BackfillState::Running),
            counts: BackfillCounts {
                targeted: 20,
                pending: 12,
                running: 3,
                succeeded: 4,
                failed: 1,
                skipped: 2,
            },
            estimated_completion_time: Some(Time(
                jiff::Timestamp::from_second(1_800_000_125).unwrap(),
            )),
            ..PipelineBackfillStatus::default()
        };
        let line = progress_line(&status, now);
        assert!(
            line.starts_with("[######------------------] 5/20 Running: 3 running, 12 pending, 4 succeeded, 1 failed, 2 skipped"),
            "{line}"
        );
        assert!(line.ends_with("(in 2m05s)"), "{line}");
        let done = PipelineBackfillStatus {
            state: Some(BackfillState::Succeeded),
            ..PipelineBackfillStatus::default()
        };
        assert!(progress_line(&done, now).starts_with(&format!("[{}] 0/0", "#".repeat(BAR))));
    }

    #[test]
    fn names_and_flags_parse_as_documented() {
        assert_eq!(
            default_name("2026-01-01", "2026-01-20", Reprocess::Failed),
            "backfill-2026-01-01-2026-01-20-failed"
        );
        assert_eq!(parse_reprocess("Drifted").unwrap(), Reprocess::Drifted);
        assert_eq!(parse_reprocess("all").unwrap(), Reprocess::All);
        assert!(parse_reprocess("everything").is_err());
        assert_eq!(parse_order("newest-first").unwrap(), Order::NewestFirst);
        assert!(parse_order("random").is_err());
    }
}
