//! `tipoff-demo`: one simulated game date through every phase of the production catalog, on
//! this machine, in this process (see [`stack`]), with live progress, and a summary of what
//! happened: the `kubectl get pipelineruns` view, where the data landed and, for a scenario,
//! the condition, Event or quarantine that caught the legacy incident it replays.
//!
//! This crate is development code: it links dev/cluster, dev/season and every processor, so
//! it is its own binary and the `tipoff` CLI (a production binary) does not depend on it. It
//! renders what it shows with the CLI's own library ([`tipoff_cli::view`], [`tipoff_cli::follow`]),
//! so the demo shows runs exactly as `tipoff status` does. The binary is multi-call:
//! `tipoff-demo processor run ...` is the `tipoff-processor` command line, so the demo's Jobs
//! run this very executable and nothing else has to be built.

pub mod history;
pub mod live;
pub mod orchestrator_down;
pub mod outcome;
pub mod range;
pub mod stack;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::{Value, json};
use tipoff_crds::{Mode, PipelineRun, ProcessorResult, Release, children};
use tipoff_operator::catalog::Catalog;
use tipoff_season::Season;
use tipoff_season::server::{EndpointFaults, FaultConfig};

use tipoff_cli::cluster::{Cluster, parse_date, run_name};
use tipoff_cli::commands::FIELD_MANAGER;
use tipoff_cli::error::{CliError, Result};
use tipoff_cli::follow;
use tipoff_cli::view::{self, RunView};

use self::stack::{Operator, Paths, REPO};
use tipoff_operator::controller::schedule::Clock;

/// The production catalog, compiled in: later phases appear in the demo as they are added to
/// `config/pipeline.yaml`, with no change here.
const CATALOG: &str = include_str!("../../../config/pipeline.yaml");

/// The hidden first argument that turns this binary into `tipoff-processor`.
pub const PROCESSOR_SUBCOMMAND: &str = "processor";

/// The season the demo simulates (seed of `dev/season`).
const SEED: u64 = 2025;

/// A legacy incident to replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The pods run an image other than the pinned digest (seed 000): CodeDrift, Production
    /// stops before the next phase.
    WrongCodeDeployed,
    /// The operator dies mid-run and comes back (seed 003): the run completes with no
    /// duplicate Jobs.
    OrchestratorCrash,
    /// The operator is down for three game days and comes back (seed 003): a PipelineSchedule
    /// creates every missed game day's run inside its catch-up window, exactly once, oldest
    /// first, and reports older ones missed.
    OrchestratorDown,
    /// The upstream API key expires mid-run and is rotated (seed 002's lost files): the
    /// processor refreshes the key and says so in its result.
    ExpiredToken,
    /// The last game of the night is still being played: the box-score gate names it.
    MissingGame,
    /// The upstream serves invalid JSON for one play-by-play: it is quarantined and named.
    MalformedPayload,
}

/// `tipoff-demo` options.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The game date to simulate (a date of the synthetic 2025-26 season with games).
    #[arg(long, default_value = "2026-01-14")]
    pub date: String,
    /// A range of game dates, `FROM..TO` (inclusive), run by one PipelineBackfill (Production
    /// runs, `maxConcurrent: 1`, oldest first); the history before FROM is loaded first, and
    /// the summary gives the backfill, the last date's run and every system's accuracy over
    /// the range. Replaces `--date`.
    #[arg(long, conflicts_with_all = ["date", "scenario"])]
    pub dates: Option<String>,
    /// Leave the stack up after the run, for exploring with kubectl (Ctrl-C stops it).
    #[arg(long)]
    pub keep_running: bool,
    /// Print a machine-readable summary on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Replay a legacy incident.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Directory for the kubeconfig, lake, objects and logs (default: a new one under the
    /// system temp dir; it is kept).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// API server port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// With --keep-running: the port of `tipoff dashboard`, served in-process on 127.0.0.1
    /// from the start (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub dashboard_port: u16,
    /// A catalog file instead of the compiled-in production catalog.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Seconds to wait for the run.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Latency of every upstream response, in milliseconds (a local upstream answers in
    /// microseconds; real APIs do not, and the phases are easier to follow).
    #[arg(long, default_value_t = 100)]
    pub upstream_latency_ms: u64,
}

/// The `--json` summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The simulated date.
    pub date: String,
    /// The scenario, if any.
    pub scenario: Option<Scenario>,
    /// The run.
    pub run: RunSummary,
    /// Per-phase state and timings.
    pub phases: Vec<PhaseTiming>,
    /// Rows per table: reported by the processors and found in the lake.
    pub rows_per_table: BTreeMap<String, TableRows>,
    /// Drift findings.
    pub drift: Vec<tipoff_crds::DriftFinding>,
    /// The run's conditions.
    pub conditions: Vec<view::ConditionView>,
    /// Warning Events on the run.
    pub warning_events: Vec<EventSummary>,
    /// Jobs the operator created.
    pub jobs: JobCounts,
    /// Times the operator was stopped and started again.
    pub operator_restarts: u32,
    /// What caught the scenario (or, without one, that the run succeeded).
    pub detection: Detection,
    /// Where things are.
    pub paths: BTreeMap<String, String>,
    /// The season before the date, loaded before the run (phases 1-4), so the date's rolling
    /// features are real and the points model has games to train on.
    pub history: history::History,
    /// The date's predictions: active rows and calls per system, the most confident calls,
    /// the export files.
    pub predictions: outcome::Predictions,
    /// Per system, the accuracy of the date's graded predictions (phase 6).
    pub accuracy: BTreeMap<String, outcome::SystemAccuracy>,
    /// The date's evening replayed on an accelerated clock with `export-live` (after a run
    /// without a scenario that succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<live::Live>,
    /// With `--dates`: every date of the range and how its run ended (the last is `run`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub range: Vec<RangeDate>,
    /// With `--dates`: the PipelineBackfill that ran the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<range::BackfillSummary>,
    /// The `orchestrator-down` scenario: what the schedule did across the outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<orchestrator_down::CatchUp>,
}

/// One date of a `--dates` range.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeDate {
    /// The date.
    pub date: String,
    /// Its run.
    pub run: String,
    /// How it ended.
    pub state: String,
    /// Processors succeeded / expected.
    pub progress: String,
}

/// The game dates of `FROM..TO` (inclusive) in the season.
fn range_dates(season: &Season, text: &str) -> Result<Vec<jiff::civil::Date>> {
    let (from, to) = text.split_once("..").ok_or_else(|| {
        CliError::Usage(format!(
            "--dates {text:?}: write FROM..TO, e.g. 2026-01-10..2026-01-14"
        ))
    })?;
    let (from, to) = (parse_date(from)?, parse_date(to)?);
    if from > to {
        return Err(CliError::Usage(format!(
            "--dates {text}: {from} is after {to}"
        )));
    }
    let dates: Vec<_> = season
        .by_date
        .keys()
        .filter(|d| (from..=to).contains(*d))
        .copied()
        .collect();
    if dates.is_empty() {
        return Err(CliError::Usage(format!(
            "--dates {text}: no game dates in the synthetic season (21 Oct 2025 to 12 Apr 2026)"
        )));
    }
    Ok(dates)
}

/// The run in the summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Name.
    pub name: String,
    /// Final state.
    pub state: String,
    /// Processors succeeded / expected.
    pub progress: String,
    /// Wall time from apply to the end, in seconds.
    pub seconds: f64,
    /// The operator's account.
    pub message: Option<String>,
}

/// One phase in the summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTiming {
    /// Number.
    pub phase: u8,
    /// Name.
    pub name: String,
    /// State.
    pub state: String,
    /// Done.
    pub done: u32,
    /// Expected.
    pub expected: u32,
    /// Seconds.
    pub seconds: Option<f64>,
}

/// Rows of one table.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TableRows {
    /// Rows the processors reported writing.
    pub reported: i64,
    /// Parquet files of the date's partition found in the lake.
    pub lake_files: usize,
}

/// An Event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// Jobs of the run.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    /// Jobs created.
    pub created: usize,
    /// Processors that ran.
    pub processors: usize,
    /// Attempts after a failed attempt.
    pub retries: usize,
    /// Attempts no failure asked for (each would be a processor run twice).
    pub duplicates: usize,
}

/// What caught the scenario.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// What the demo expected to see.
    pub expected: String,
    /// Whether it saw it.
    pub detected: bool,
    /// The mechanism: `Succeeded`, `Condition`, `Gate`, `Quarantine`, `Result`, `Restart`.
    pub kind: String,
    /// Details.
    pub detail: Value,
}

/// Prints progress to stdout, or stderr with `--json`.
struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

fn demo_dir(args: &DemoArgs) -> Result<PathBuf> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "tipoff-demo-{}-{}",
            jiff::Timestamp::now().as_second(),
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Other(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

fn init_logs(path: &Path) {
    use tracing_subscriber::EnvFilter;
    let Ok(file) = std::fs::File::create(path) else {
        return;
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube=warn,tipoff_devcluster=warn,tower=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
}

/// The commit the run pins: the one compiled into the processors of this binary.
fn pinned_commit() -> Result<String> {
    let commit = tipoff_processors::contract::COMMIT;
    let ok = (7..=40).contains(&commit.len())
        && commit
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(commit.to_owned())
    } else {
        Err(CliError::Usage(format!(
            "this build has no git commit compiled in ({commit:?}); build from a git checkout or set TIPOFF_COMMIT=<hex> when building"
        )))
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let out = Printer { json: args.json };
    let date = parse_date(&args.date)?;
    let catalog_text = match &args.catalog {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| CliError::Usage(format!("reading --catalog {}: {e}", p.display())))?,
        None => CATALOG.to_owned(),
    };
    let catalog = Catalog::from_yaml(&catalog_text)
        .map_err(|e| CliError::Usage(format!("the catalog is invalid: {e}")))?;
    let commit = pinned_commit()?;
    let dir = demo_dir(&args)?;
    let paths = Paths::under(&dir);
    init_logs(&paths.operator_log);

    let t = Instant::now();
    let season = Arc::new(Season::generate(SEED));
    // With --dates, the range's earlier dates run first and `date` is its last.
    let range = match (&args.dates, args.scenario) {
        (Some(text), _) => range_dates(&season, text)?,
        // Seed 003's dates: the last game day before the outage and the three during it.
        (None, Some(Scenario::OrchestratorDown)) => orchestrator_down::dates(&season),
        (None, _) => vec![date],
    };
    let date = *range.last().unwrap_or(&date);
    let games = season.by_date.get(&date).cloned().unwrap_or_default();
    if games.is_empty() {
        return Err(CliError::Usage(format!(
            "no games on {date} in the synthetic season (21 Oct 2025 to 12 Apr 2026); try --date 2026-01-14"
        )));
    }
    let matchup = |g: usize| {
        let game = &season.games[g];
        format!(
            "{}@{}",
            season.league.teams[game.away].abbr, season.league.teams[game.home].abbr
        )
    };
    let last_end = games.iter().map(|&g| season.games[g].end).max();
    let next_day_noon = date
        .tomorrow()
        .and_then(|d| d.at(12, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| CliError::Other(format!("the clock: {e}")))?;
    let (clock, late_games) = match (args.scenario, last_end) {
        (Some(Scenario::MissingGame), Some(end)) => {
            let late: Vec<String> = games
                .iter()
                .filter(|&&g| season.games[g].end == end)
                .map(|&g| matchup(g))
                .collect();
            if late.len() == games.len() {
                return Err(CliError::Usage(format!(
                    "every game on {date} ends at the same time; pick a date with later games for missing-game"
                )));
            }
            (end - jiff::SignedDuration::from_secs(60), late)
        }
        _ => (next_day_noon, Vec::new()),
    };
    out.line(&format!(
        "tipoff-demo: {date}, {} games ({}), season generated in {:.1}s",
        games.len(),
        games
            .iter()
            .map(|&g| matchup(g))
            .collect::<Vec<_>>()
            .join(" "),
        t.elapsed().as_secs_f64()
    ));

    let mut faults = FaultConfig::new();
    match args.scenario {
        Some(Scenario::ExpiredToken) => {
            faults.insert(
                "odds".into(),
                EndpointFaults {
                    key_expires_after: Some(3),
                    ..EndpointFaults::default()
                },
            );
        }
        Some(Scenario::MalformedPayload) => {
            faults.insert(
                "pbp".into(),
                EndpointFaults {
                    malformed_first: 1,
                    ..EndpointFaults::default()
                },
            );
        }
        _ => {}
    }
    for group in ["schedule", "pbp", "boxscores", "injuries", "odds"] {
        faults.entry(group.to_owned()).or_default().delay_ms = args.upstream_latency_ms;
    }
    let upstream = stack::start_upstream(season.clone(), clock, faults, &paths.key_file).await?;
    out.line(&format!(
        "upstream (dev/season) at {}, simulated time {clock}",
        upstream.url
    ));

    // Phases 3 and 4 read the season before the date (rolling features, the history-gap
    // gate): load it first, unless the scenario stops before phase 3.
    let stops_early = matches!(
        args.scenario,
        Some(Scenario::WrongCodeDeployed | Scenario::MissingGame | Scenario::MalformedPayload)
    );
    let history = if catalog.phases.iter().any(|p| p.number >= 3) && !stops_early {
        history::load(Arc::clone(&season), range[0], &paths, &|l: &str| {
            out.line(l)
        })
        .await?
    } else {
        out.line("history: not loaded (the run stops before phase 3, which reads it)");
        history::History::default()
    };

    let pinned_digest = stack::digest_of(&format!("tipoff-processor {commit}"));
    let image = format!("{REPO}@{pinned_digest}");
    let image_id = (args.scenario == Some(Scenario::WrongCodeDeployed)).then(|| {
        format!(
            "{REPO}@{}",
            stack::digest_of("analytics-processors (the wrong Dockerfile)")
        )
    });
    let (devcluster, client) = stack::start_cluster(
        &paths,
        stack::ClusterOptions {
            port: args.port,
            upstream: upstream.url.clone(),
            image_id: image_id.clone(),
            processor: stack::ClusterOptions::this_binary()?,
            extra_env: BTreeMap::new(),
            install_crds: true,
        },
    )
    .await?;
    out.line(&format!(
        "dev/cluster at {}; point kubectl at it:\n  export KUBECONFIG={}",
        devcluster.url(),
        paths.kubeconfig.display()
    ));
    if let Some(id) = &image_id {
        out.line(&format!(
            "scenario wrong-code-deployed: the cluster runs {id} for the pinned {image}"
        ));
    }
    let phases: Vec<String> = catalog
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {} ({} processors)",
                p.number,
                p.name,
                p.processors.len()
            )
        })
        .collect();
    out.line(&format!("catalog: phases {}", phases.join(", ")));

    // The schedules read "now" from this file in the orchestrator-down scenario.
    let clock_file = paths.dir.join("schedule-clock");
    let clock = match args.scenario {
        Some(Scenario::OrchestratorDown) => Clock::File(clock_file.clone()),
        _ => Clock::System,
    };
    let operator = Arc::new(tokio::sync::Mutex::new(Some(Operator::start_with_clock(
        client.clone(),
        catalog.clone(),
        clock,
    ))));
    out.line(&format!(
        "operator started (in-process; log: {})",
        paths.operator_log.display()
    ));

    let cluster = Cluster::from_client(client.clone(), "default");
    // The dashboard follows the demo from its first run (docs/dashboard.md).
    let dashboard = if args.keep_running {
        // The demo replays a past date: measured against the wall clock every run would be
        // Late, so the demo's page shows no Late.
        let mut options = tipoff_cli::dashboard::Options::new(args.dashboard_port);
        options.expectation = None;
        let d =
            tipoff_cli::dashboard::start(Cluster::from_client(client.clone(), "default"), options)
                .await?;
        out.line(&format!(
            "dashboard: {} (live; `tipoff dashboard` serves the same page)",
            d.url()
        ));
        Some(d)
    } else {
        None
    };
    let release = Release {
        image: image.clone(),
        commit: commit.clone(),
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        processors: vec![],
    };
    // A range: one PipelineBackfill runs every date, one at a time, oldest first; the demo
    // follows it to its end, then reports on the last date's run like a single date's.
    let backfill = match args.dates {
        Some(_) => Some(
            range::run(
                &cluster,
                range[0],
                date,
                &release,
                Duration::from_secs(args.timeout),
                &|l: &str| out.line(l),
            )
            .await?,
        ),
        None => None,
    };
    // Seed 003: a schedule runs the game days, its operator goes down for three of them and
    // comes back; the demo then reports on the last caught-up run like a single date's.
    let catch_up = match args.scenario {
        Some(Scenario::OrchestratorDown) => Some(
            orchestrator_down::play(
                orchestrator_down::Stack {
                    cluster: &cluster,
                    operator: &operator,
                    catalog: &catalog,
                    clock_file: &clock_file,
                },
                &season,
                &release,
                Duration::from_secs(args.timeout),
                &|l: &str| out.line(l),
            )
            .await?,
        ),
        _ => None,
    };
    let name = match (&backfill, &catch_up) {
        (Some(b), _) => b.last_run.clone(),
        (None, Some((_, last))) => last.clone(),
        (None, None) => run_name(&date.to_string(), Mode::Production),
    };
    let spec = json!({ "date": date.to_string(), "mode": Mode::Production, "release": release });
    if args.scenario == Some(Scenario::OrchestratorCrash) {
        // Hold the Job runner so the crash lands while the first Jobs exist but have not run.
        devcluster.faults().pause_runner();
    }
    let started = Instant::now();
    if backfill.is_none() && catch_up.is_none() {
        cluster
            .apply_run(&name, &spec, FIELD_MANAGER)
            .await
            .map_err(|e| CliError::from_kube("applying the run", e))?;
        out.line(&format!(
            "pipelinerun.tipoff.dev/{name} created (Production, pinned to commit {commit})"
        ));
    }

    // The orchestrator-crash scenario: the Job runner is held (see above) until the first
    // Jobs exist; then the operator is stopped, the Jobs run and finish with no operator, and
    // the operator starts again and must carry on from what exists.
    let restarts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (crash_tx, mut crash_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let crash_task = (args.scenario == Some(Scenario::OrchestratorCrash)).then(|| {
        let operator = Arc::clone(&operator);
        let restarts = Arc::clone(&restarts);
        let faults = Arc::clone(devcluster.faults());
        let (client, catalog) = (client.clone(), catalog.clone());
        let json = args.json;
        tokio::spawn(async move {
            if crash_rx.recv().await.is_none() {
                return;
            }
            let p = Printer { json };
            if let Some(op) = operator.lock().await.take() {
                op.stop().await;
            }
            p.line("  !! operator stopped (simulated crash) with Jobs created but not finished");
            faults.resume_runner();
            p.line("  !! the Jobs run and finish while no operator is running; nothing plans the next step");
            tokio::time::sleep(Duration::from_secs(6)).await;
            *operator.lock().await = Some(Operator::start(client, catalog));
            restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            p.line("  !! operator restarted: it rebuilds its state from the run's children");
        })
    });
    let mut crashed = false;
    let followed = follow::follow(
        &cluster,
        &name,
        Duration::from_secs(args.timeout),
        &mut |l| out.line(l),
        &mut |v: &RunView| {
            if crash_task.is_some() && !crashed {
                let jobs_exist = v
                    .phases
                    .iter()
                    .flat_map(|p| &p.processors)
                    .any(|p| !p.attempts.is_empty());
                if jobs_exist {
                    crashed = true;
                    let _ = crash_tx.send(());
                }
            }
            // Not settled until the crashed operator is back.
            crash_task.is_none() || restarts.load(std::sync::atomic::Ordering::Relaxed) > 0
        },
    )
    .await;
    // A range's last run ended under the backfill: its own duration, not the follow's.
    let elapsed = match (&followed, backfill.is_some() || catch_up.is_some()) {
        (Ok(v), true) => v
            .created
            .zip(v.completed)
            .map_or(0.0, |(c, e)| e.duration_since(c).as_secs_f64()),
        _ => started.elapsed().as_secs_f64(),
    };
    let result = match followed {
        Ok(v) => {
            let summary = summarize(
                &cluster,
                &args,
                &paths,
                &v,
                elapsed,
                restarts.load(std::sync::atomic::Ordering::Relaxed),
                &late_games,
                upstream.rotations.count(),
                history,
                catch_up.as_ref().map(|(c, _)| c),
            )
            .await?;
            let mut summary = summary;
            if args.scenario.is_none() && v.state == "Succeeded" {
                out.line(&format!(
                    "export-live: replaying the evening of {date} on an accelerated clock (10 simulated minutes every 0.1 s)"
                ));
                let l = live::replay(Arc::clone(&season), date, &paths).await?;
                out.line(&format!(
                    "export-live: {} games final after {:.1} simulated hours ({:.1} s), files rewritten {} times: {}",
                    l.games_final.unwrap_or(0),
                    l.simulated_hours,
                    l.seconds,
                    l.updates.unwrap_or(0),
                    l.files.join(", ")
                ));
                summary.live = Some(l);
            }
            if let Some((c, _)) = catch_up {
                let lake = tipoff_warehouse::open(&format!("file://{}", paths.lake.display()))
                    .await
                    .map_err(|e| CliError::Other(format!("opening the lake: {e}")))?;
                summary.accuracy = outcome::accuracy(lake.as_ref(), range[0], date).await?;
                summary.catch_up = Some(c);
            }
            if let Some(b) = backfill {
                let lake = tipoff_warehouse::open(&format!("file://{}", paths.lake.display()))
                    .await
                    .map_err(|e| CliError::Other(format!("opening the lake: {e}")))?;
                summary.accuracy = outcome::accuracy(lake.as_ref(), range[0], date).await?;
                summary.range = b.dates;
                // The range is run by the backfill: it must have succeeded, one date at a
                // time, oldest first.
                let s = &b.summary;
                let ok =
                    s.state == "Succeeded" && s.max_in_flight <= s.max_concurrent && s.oldest_first;
                summary.detection = Detection {
                    expected: format!(
                        "the backfill runs every date of the range, at most {} at a time, oldest first, and the last run succeeds through every phase",
                        s.max_concurrent
                    ),
                    detected: summary.detection.detected && ok,
                    kind: "Backfill".into(),
                    detail: json!({
                        "backfill": s.name,
                        "state": s.state,
                        "progress": s.progress,
                        "maxInFlight": s.max_in_flight,
                        "oldestFirst": s.oldest_first,
                        "lastRun": v.state,
                    }),
                };
                summary.backfill = Some(b.summary);
            }
            report(&out, &cluster, &summary, &v, args.keep_running).await?;
            if summary.detection.detected {
                Ok(())
            } else {
                Err(CliError::RunFailed(format!(
                    "expected {}, but it was not seen (run {} is {})",
                    summary.detection.expected, v.name, v.state
                )))
            }
        }
        Err(e) => Err(e),
    };

    if args.keep_running {
        out.line(&format!(
            "\nThe stack stays up. Try:\n  export KUBECONFIG={}\n  kubectl get pipelineruns,pipelinebackfills,pipelineschedules,phasecompletions,jobs\n  cargo run --release -p tipoff-cli -- status {date}\n  open {} (the dashboard)\nCtrl-C stops it.",
            paths.kubeconfig.display(),
            dashboard.as_ref().map_or_else(String::new, tipoff_cli::dashboard::Dashboard::url),
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    if let Some(d) = &dashboard {
        d.stop();
    }
    if let Some(op) = operator.lock().await.take() {
        op.stop().await;
    }
    devcluster.shutdown().await;
    result
}

/// Gathers the summary from the cluster, the lake and the object store.
#[allow(clippy::too_many_arguments)]
async fn summarize(
    cluster: &Cluster,
    args: &DemoArgs,
    paths: &Paths,
    v: &RunView,
    seconds: f64,
    restarts: u32,
    late_games: &[String],
    rotations: u32,
    history: history::History,
    catch_up: Option<&orchestrator_down::CatchUp>,
) -> Result<Summary> {
    let run = cluster.run(&v.name).await?;
    let children = cluster.children(&run).await?;
    let events = run_events(cluster, &run).await?;
    let jobs = job_counts(&children.jobs);

    let mut rows_per_table: BTreeMap<String, TableRows> = BTreeMap::new();
    for (table, n) in &v.rows_written {
        let entry = rows_per_table.entry(table.clone()).or_default();
        entry.reported = *n;
        let (dataset, name) = table.split_once('.').unwrap_or(("", table));
        // The date's partition, whatever the table's partition column is called.
        let suffix = format!("={}", v.date);
        let part = std::fs::read_dir(paths.lake.join(dataset).join(name))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
            })
            .unwrap_or_default();
        entry.lake_files = std::fs::read_dir(&part)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                    .count()
            })
            .unwrap_or(0);
    }

    let date = parse_date(&v.date)?;
    let lake = tipoff_warehouse::open(&format!("file://{}", paths.lake.display()))
        .await
        .map_err(|e| CliError::Other(format!("opening the lake: {e}")))?;
    let predictions = outcome::predictions(lake.as_ref(), &paths.objects, date).await?;
    let accuracy = outcome::accuracy(lake.as_ref(), date, date).await?;

    let detection = detect(
        args.scenario,
        v,
        &run,
        &children,
        &events,
        &jobs,
        restarts,
        late_games,
        rotations,
        paths,
        catch_up,
    );
    Ok(Summary {
        date: v.date.clone(),
        scenario: args.scenario,
        run: RunSummary {
            name: v.name.clone(),
            state: v.state.clone(),
            progress: v.progress.clone(),
            seconds: (seconds * 10.0).round() / 10.0,
            message: v.message.clone(),
        },
        phases: v
            .phases
            .iter()
            .map(|p| PhaseTiming {
                phase: p.phase,
                name: p.name.clone(),
                state: p.state.clone(),
                done: p.done,
                expected: p.expected,
                seconds: p.seconds,
            })
            .collect(),
        rows_per_table,
        drift: v.drift.clone(),
        conditions: v.conditions.clone(),
        warning_events: events
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .map(|e| EventSummary {
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
            })
            .collect(),
        jobs,
        operator_restarts: restarts,
        detection,
        paths: BTreeMap::from([
            ("dir".to_owned(), paths.dir.display().to_string()),
            (
                "kubeconfig".to_owned(),
                paths.kubeconfig.display().to_string(),
            ),
            ("lake".to_owned(), paths.lake.display().to_string()),
            ("objects".to_owned(), paths.objects.display().to_string()),
            (
                "operatorLog".to_owned(),
                paths.operator_log.display().to_string(),
            ),
        ]),
        history,
        predictions,
        accuracy,
        live: None,
        range: Vec::new(),
        backfill: None,
        catch_up: None,
    })
}

async fn run_events(cluster: &Cluster, run: &PipelineRun) -> Result<Vec<Event>> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut events = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={}", run.name_any())))
        .await
        .map_err(|e| CliError::from_kube("listing Events", e))?
        .items;
    events.retain(|e| e.involved_object.kind.as_deref() == Some("PipelineRun"));
    Ok(events)
}

fn job_counts(jobs: &[Job]) -> JobCounts {
    let label = |j: &Job, k: &str| j.labels().get(k).cloned();
    let mut by_processor: BTreeMap<String, Vec<(u32, bool)>> = BTreeMap::new();
    for j in jobs {
        let (Some(p), Some(a)) = (
            label(j, children::LABEL_PROCESSOR),
            label(j, children::LABEL_ATTEMPT).and_then(|a| a.parse::<u32>().ok()),
        ) else {
            continue;
        };
        let failed = j
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"));
        by_processor.entry(p).or_default().push((a, failed));
    }
    let mut counts = JobCounts {
        created: jobs.len(),
        processors: by_processor.len(),
        ..JobCounts::default()
    };
    for attempts in by_processor.values_mut() {
        attempts.sort();
        for pair in attempts.windows(2) {
            if pair[0].1 {
                counts.retries += 1;
            } else {
                counts.duplicates += 1;
            }
        }
    }
    counts
}

fn results(pods: &[Pod]) -> Vec<ProcessorResult> {
    pods.iter()
        .filter_map(|p| {
            let t = p
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .terminated
                .as_ref()?;
            ProcessorResult::parse(t.message.as_deref()?).ok()
        })
        .collect()
}

fn condition<'a>(v: &'a RunView, type_: &str) -> Option<&'a view::ConditionView> {
    v.conditions.iter().find(|c| c.type_ == type_)
}

#[allow(clippy::too_many_arguments)]
fn detect(
    scenario: Option<Scenario>,
    v: &RunView,
    run: &PipelineRun,
    children: &tipoff_cli::cluster::Children,
    events: &[Event],
    jobs: &JobCounts,
    restarts: u32,
    late_games: &[String],
    rotations: u32,
    paths: &Paths,
    catch_up: Option<&orchestrator_down::CatchUp>,
) -> Detection {
    let event = |reason: &str| {
        events
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
            .and_then(|e| e.message.clone())
    };
    match scenario {
        None => Detection {
            expected: "the run succeeds through every phase".into(),
            detected: v.state == "Succeeded",
            kind: "Succeeded".into(),
            detail: json!({ "progress": v.progress }),
        },
        Some(Scenario::WrongCodeDeployed) => {
            let drift = condition(v, "CodeDrift");
            let drifted_phase = v
                .phases
                .iter()
                .find(|p| {
                    p.processors
                        .iter()
                        .any(|x| v.drift.iter().any(|d| d.processor == x.name))
                })
                .map(|p| p.phase);
            let later_started = drifted_phase.is_some_and(|n| {
                v.phases
                    .iter()
                    .filter(|p| p.phase > n)
                    .any(|p| p.processors.iter().any(|x| !x.attempts.is_empty()))
            });
            Detection {
                expected: "CodeDrift=True and the Production run stopping before the next phase"
                    .into(),
                detected: drift.is_some_and(|c| c.status == "True")
                    && v.state == "Blocked"
                    && drifted_phase.is_some()
                    && !later_started,
                kind: "Condition".into(),
                detail: json!({
                    "condition": drift,
                    "event": event("CodeDrift"),
                    "stoppedBeforePhase": drifted_phase.map(|n| n + 1),
                    "findings": v.drift.len(),
                }),
            }
        }
        Some(Scenario::OrchestratorCrash) => Detection {
            expected: "the run completes after the operator restarts, with no duplicate Jobs"
                .into(),
            detected: v.state == "Succeeded" && restarts == 1 && jobs.duplicates == 0,
            kind: "Restart".into(),
            detail: json!({
                "operatorRestarts": restarts,
                "jobsCreated": jobs.created,
                "processors": jobs.processors,
                "retries": jobs.retries,
                "duplicateJobs": jobs.duplicates,
            }),
        },
        Some(Scenario::OrchestratorDown) => {
            let c = catch_up;
            let caught: Vec<&str> = c
                .map(|c| c.caught_up.iter().map(|r| r.date.as_str()).collect())
                .unwrap_or_default();
            let due: Vec<&str> = c
                .map(|c| c.due_while_down.iter().map(String::as_str).collect())
                .unwrap_or_default();
            Detection {
                expected: "every game day due while the operator was down caught up after it came back: created exactly once, oldest first, each run succeeding".into(),
                detected: c.is_some_and(|c| {
                    !due.is_empty()
                        && caught == due
                        && c.created_while_down == 0
                        && c.oldest_first
                        && c.runs_per_date.values().all(|&n| n == 1)
                        && c.caught_up.iter().all(|r| r.state == "Succeeded")
                }),
                kind: "CatchUp".into(),
                detail: json!({
                    "dueWhileDown": due,
                    "caughtUp": caught,
                    "createdWhileDown": c.map(|c| c.created_while_down),
                    "oldestFirst": c.map(|c| c.oldest_first),
                    "runsPerDate": c.map(|c| &c.runs_per_date),
                    "missed": c.map(|c| &c.missed),
                    "downAt": c.map(|c| &c.down_at),
                    "backAt": c.map(|c| &c.back_at),
                    "catchUpWindow": c.map(|c| &c.catch_up_window),
                }),
            }
        }
        Some(Scenario::ExpiredToken) => {
            let refreshed: Vec<Value> = results(&children.pods)
                .iter()
                .filter_map(|r| {
                    let c = r.checks.iter().find(|c| c.name == "upstream-key-refreshes")?;
                    (c.observed.unwrap_or(0) > 0).then(|| {
                        json!({
                            "processor": r.processor,
                            "keyRefreshes": c.observed,
                            "warnings": r.warnings.iter().filter(|w| w.contains("key")).collect::<Vec<_>>(),
                        })
                    })
                })
                .collect();
            Detection {
                expected: "a processor refreshing the rotated API key, reported in its result, and the run succeeding".into(),
                detected: v.state == "Succeeded" && !refreshed.is_empty(),
                kind: "Result".into(),
                detail: json!({ "keyRotations": rotations, "refreshedBy": refreshed }),
            }
        }
        Some(Scenario::MissingGame) => {
            let named: Vec<&view::MissingView> = v
                .missing
                .iter()
                .filter(|m| {
                    m.policy == "Blocking" && late_games.iter().all(|g| m.missing.contains(g))
                })
                .collect();
            let gates = condition(v, "GatesPassed");
            Detection {
                expected: format!(
                    "a failed blocking gate naming the game still in progress ({})",
                    late_games.join(", ")
                ),
                detected: v.state == "Blocked"
                    && !named.is_empty()
                    && gates.is_some_and(|c| c.status == "False"),
                kind: "Gate".into(),
                detail: json!({
                    "gates": named,
                    "condition": gates,
                    "event": event("GateFailed"),
                    "inProgress": late_games,
                }),
            }
        }
        Some(Scenario::MalformedPayload) => {
            let quarantine = paths
                .objects
                .join("quarantine/play-by-play")
                .join(&run.spec.date);
            let mut quarantined: Vec<String> = std::fs::read_dir(&quarantine)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.ends_with(".reason.txt"))
                        .collect()
                })
                .unwrap_or_default();
            quarantined.sort();
            let reason = quarantined.first().and_then(|q| {
                std::fs::read_to_string(quarantine.join(format!("{q}.reason.txt"))).ok()
            });
            let gate: Vec<&view::MissingView> = v
                .missing
                .iter()
                .filter(|m| m.gate == "payloads-valid")
                .collect();
            let named = gate.iter().any(|m| {
                quarantined.iter().any(|q| {
                    m.missing
                        .iter()
                        .any(|x| x.contains(q.trim_end_matches(".json")))
                })
            });
            Detection {
                expected: "the malformed play-by-play payload quarantined and named by the payloads-valid gate".into(),
                detected: !quarantined.is_empty() && named,
                kind: "Quarantine".into(),
                detail: json!({
                    "quarantineDir": quarantine.display().to_string(),
                    "quarantined": quarantined,
                    "reason": reason.map(|r| r.trim().to_owned()),
                    "gate": gate,
                    "runState": v.state,
                }),
            }
        }
    }
}

/// The detection in words, for people (the JSON summary has the same facts).
fn explain(scenario: Option<Scenario>, d: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(&text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    match scenario {
        None => vec![],
        Some(Scenario::WrongCodeDeployed) => vec![
            format!(
                "condition CodeDrift=True ({}): {}",
                text(&d["condition"]["reason"]),
                text(&d["condition"]["message"])
            ),
            format!("Event CodeDrift: {}", text(&d["event"])),
            format!(
                "the Production run stopped before phase {}",
                d["stoppedBeforePhase"]
            ),
        ],
        Some(Scenario::OrchestratorCrash) => vec![format!(
            "operator restarts: {}; Jobs created: {} for {} processors; retries: {}; duplicate Jobs: {}",
            d["operatorRestarts"],
            d["jobsCreated"],
            d["processors"],
            d["retries"],
            d["duplicateJobs"]
        )],
        Some(Scenario::OrchestratorDown) => {
            let missed: Vec<String> = d["missed"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| format!("{} ({})", text(&m["date"]), text(&m["reason"])))
                .collect();
            let per_date: Vec<String> = d["runsPerDate"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            vec![
                format!(
                    "operator down from simulated {} to {}; due meanwhile: {}",
                    text(&d["downAt"]),
                    text(&d["backAt"]),
                    list(&d["dueWhileDown"])
                ),
                format!(
                    "caught up (catchUpWindow {}), oldest first: {}; each created after the previous ended: {}",
                    text(&d["catchUpWindow"]),
                    list(&d["caughtUp"]),
                    d["oldestFirst"]
                ),
                format!(
                    "reported missed: {}",
                    if missed.is_empty() {
                        "none (every due game day was inside the window)".to_owned()
                    } else {
                        missed.join(", ")
                    }
                ),
                format!(
                    "runs per date: {}; created while down: {}",
                    per_date.join(", "),
                    d["createdWhileDown"]
                ),
            ]
        }
        Some(Scenario::ExpiredToken) => {
            let mut lines = vec![format!("key rotations: {}", d["keyRotations"])];
            for r in d["refreshedBy"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{} refreshed the key {} time(s): {}",
                    text(&r["processor"]),
                    r["keyRefreshes"],
                    list(&r["warnings"])
                ));
            }
            lines
        }
        Some(Scenario::MissingGame) => {
            let mut lines = vec![format!("still in progress: {}", list(&d["inProgress"]))];
            for g in d["gates"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{} gate {} [{}] {} of {}, missing {}",
                    text(&g["processor"]),
                    text(&g["gate"]),
                    text(&g["policy"]),
                    g["observed"],
                    g["expected"],
                    list(&g["missing"])
                ));
            }
            lines.push(format!("Event GateFailed: {}", text(&d["event"])));
            lines
        }
        Some(Scenario::MalformedPayload) => {
            let mut lines = vec![format!(
                "quarantined: {} in {}",
                list(&d["quarantined"]),
                text(&d["quarantineDir"])
            )];
            for l in text(&d["reason"]).lines() {
                lines.push(format!("  {l}"));
            }
            for g in d["gate"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{} gate {} [{}] {} of {}, missing {}; the run is {}",
                    text(&g["processor"]),
                    text(&g["gate"]),
                    text(&g["policy"]),
                    g["observed"],
                    g["expected"],
                    list(&g["missing"]),
                    text(&d["runState"])
                ));
            }
            lines
        }
    }
}

/// Prints the summary: JSON, or the `kubectl get pipelineruns` view, the data, and what
/// caught the scenario.
async fn report(
    out: &Printer,
    cluster: &Cluster,
    s: &Summary,
    v: &RunView,
    keep_running: bool,
) -> Result<()> {
    if out.json {
        let text = serde_json::to_string_pretty(s).map_err(|e| CliError::Other(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let runs = cluster.all_runs().await?;
    println!("\n$ kubectl get pipelineruns");
    print!("{}", view::render_list(&runs, jiff::Timestamp::now()));
    if s.catch_up.is_some() {
        let api: Api<tipoff_crds::PipelineSchedule> =
            Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let schedule = api
            .get(orchestrator_down::SCHEDULE)
            .await
            .map_err(|e| CliError::from_kube("reading the schedule", e))?;
        println!("\n$ tipoff schedule");
        print!(
            "{}",
            tipoff_cli::schedule::render(&[tipoff_cli::schedule::build(
                &schedule,
                jiff::Timestamp::now()
            )])
        );
    }
    println!("\n$ tipoff status {}", v.date);
    print!("{}", view::render_tree(v));
    println!("\nData:");
    let reported: BTreeSet<&String> = s.rows_per_table.keys().collect();
    for (table, rows) in &s.rows_per_table {
        println!(
            "  {table:<40} {:>7} rows  ({} parquet file(s) in the {} partition)",
            rows.reported, rows.lake_files, s.date
        );
    }
    if reported.is_empty() {
        println!("  (no table was written)");
    }
    println!(
        "  lake:    {}",
        s.paths.get("lake").map_or("", String::as_str)
    );
    println!(
        "  objects: {}",
        s.paths.get("objects").map_or("", String::as_str)
    );
    if let Some(b) = &s.backfill {
        println!(
            "\nBackfill {} ({}..{}): {} {}, at most {} run(s) in flight (maxConcurrent {}), {}, {:.1}s",
            b.name,
            b.from,
            b.to,
            b.state,
            b.progress,
            b.max_in_flight,
            b.max_concurrent,
            if b.oldest_first {
                "each run created once the previous date's had ended"
            } else {
                "runs OVERLAPPED"
            },
            b.seconds
        );
        for d in &s.range {
            println!("  {}  {:<10} {:>7}  {}", d.date, d.state, d.progress, d.run);
        }
    }
    if let (Some(first), Some(last)) = (s.range.first(), s.range.last()) {
        println!(
            "\nAccuracy over {} .. {} ({} dates, graded the day after each):",
            first.date,
            last.date,
            s.range.len()
        );
        for (system, a) in &s.accuracy {
            let (mae, hits) = a.mae_and_hit_rate();
            let ret = a
                .return_per_unit
                .map_or("-".to_owned(), |r| format!("{:+.1}%", 100.0 * r));
            println!(
                "  {system:<18} {:>5} graded  MAE {mae}  calls right {hits}  return {ret}",
                a.count
            );
        }
    }
    println!("\nPredictions for {}:", s.date);
    for line in outcome::render(&s.predictions, &s.accuracy) {
        println!("{line}");
    }
    println!(
        "\nJobs: {} created for {} processors, {} retries, {} duplicates; run took {:.1}s",
        s.jobs.created, s.jobs.processors, s.jobs.retries, s.jobs.duplicates, s.run.seconds
    );
    println!(
        "\n{} {}: {}",
        if s.detection.detected {
            "Detected"
        } else {
            "NOT detected"
        },
        s.detection.kind,
        s.detection.expected
    );
    for line in explain(s.scenario, &s.detection.detail) {
        println!("  {line}");
    }
    if !keep_running {
        println!(
            "\nkubeconfig: {} (the API server is up only while the demo runs: --keep-running leaves it up)",
            s.paths.get("kubeconfig").map_or("", String::as_str)
        );
    }
    Ok(())
}
