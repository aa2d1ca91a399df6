//! The `tipoff` command line, also installed as the kubectl plugin `kubectl-tipoff`.
//!
//! Everyday commands ([`commands`]) read and write PipelineRuns in the cluster of the current
//! kubeconfig context, like kubectl. This crate is production code: it links no development
//! crate (the local demo is `tipoff-demo`, in `dev/demo`, which uses this crate's library to
//! show runs as `tipoff status` does). Exit codes are in [`error::exit`] and `docs/cli.md`.

pub mod backfill;
pub mod cluster;
pub mod commands;
pub mod dashboard;
pub mod error;
pub mod follow;
pub mod schedule;
pub mod validate;
pub mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::cluster::{Cluster, Target};
use crate::commands::Output;
use crate::error::{CliError, Result};

#[derive(Parser, Debug)]
#[command(
    name = "tipoff",
    version,
    about = "Run and inspect tipoff pipeline runs (one PipelineRun per game date).",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 cluster unreachable, \
5 CRDs missing, 6 run failed or blocked (--wait), 7 drift found (drift). See docs/cli.md."
)]
struct Cli {
    /// Path to the kubeconfig (default: $KUBECONFIG, which may list several files, then
    /// ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the PipelineRun for DATE (named nba-DATE[-MODE]; applying it twice is one run).
    Run {
        /// The game date, YYYY-MM-DD (America/New_York).
        date: String,
        /// production (the next day), same-day or backfill.
        #[arg(long, default_value = "production")]
        mode: String,
        /// YAML with the release to pin: image (by digest), commit, version. Needed for a new run.
        #[arg(long)]
        release: Option<PathBuf>,
        /// An audited override: SkipDependencyCheck, AcceptDrift or RelaxGate:GATE, optionally
        /// @PROCESSOR. Repeatable; needs --reason.
        #[arg(long = "override", value_name = "NAME")]
        overrides: Vec<String>,
        /// Why the overrides are needed and who asked (recorded in an Event).
        #[arg(long)]
        reason: Option<String>,
        /// Follow the run with live progress until it ends; exit 6 if it fails or blocks.
        #[arg(long)]
        wait: bool,
        /// Seconds to follow with --wait.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Run the dates FROM..TO (inclusive) as a PipelineBackfill: a few runs at a time, only
    /// the dates --reprocess selects; --wait follows it with counts and an ETA.
    Backfill {
        /// The first game date, YYYY-MM-DD.
        from: String,
        /// The last game date, inclusive.
        to: String,
        /// Which dates: missing (no successful run), failed, drifted (CodeDrift or another
        /// pin) or all.
        #[arg(long, default_value = "missing")]
        reprocess: String,
        /// Runs in flight at once (1-20; default 3).
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// oldest-first or newest-first.
        #[arg(long, default_value = "oldest-first")]
        order: String,
        /// The runs' mode: backfill, production or same-day.
        #[arg(long, default_value = "backfill")]
        mode: String,
        /// YAML with the release to pin: image (by digest), commit. Needed for a new backfill.
        #[arg(long)]
        release: Option<PathBuf>,
        /// The backfill's name (default backfill-FROM-TO-REPROCESS: the same command twice is
        /// one backfill).
        #[arg(long)]
        name: Option<String>,
        /// The game-day list whose unlisted dates are skipped as without games: CONFIGMAP or
        /// CONFIGMAP/KEY, or `none`. Default: the namespace's one ConfigMap labelled
        /// tipoff.dev/game-days, if there is exactly one.
        #[arg(long)]
        game_days: Option<String>,
        /// Follow it with live progress until it ends; exit 6 if a run failed or it is refused.
        #[arg(long)]
        wait: bool,
        /// Seconds to follow with --wait.
        #[arg(long, default_value_t = 86400)]
        timeout: u64,
    },
    /// The run of DATE as a tree (phases, processors, attempts, gates, drift, missing
    /// entities), or one line per run without a date.
    Status {
        /// The game date; omitted lists every run.
        date: Option<String>,
        /// Pick the run of this mode (default: the Production run, else the newest).
        #[arg(long)]
        mode: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The PipelineSchedules: when each runs next, its last game date, and the game days it
    /// missed (beyond its catch-up window).
    Schedule {
        /// One schedule (default: every schedule of the namespace).
        name: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: Output,
    },
    /// What code ran per processor in recent runs vs the pinned release; exit 7 on drift.
    Drift {
        /// How many of the most recent runs to check.
        #[arg(long, default_value_t = 10)]
        last: usize,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run one processor of DATE's run again as a new attempt, optionally for one game.
    Rerun {
        /// The game date.
        date: String,
        /// The processor to run again (it must have run in this run).
        #[arg(long)]
        processor: String,
        /// Limit it to one game: an NBA game id or AWY@HOM.
        #[arg(long)]
        game: Option<String>,
        /// Why (recorded in the run and an Event).
        #[arg(long, default_value = "requested with tipoff rerun")]
        reason: String,
        /// Pick the run of this mode.
        #[arg(long)]
        mode: Option<String>,
        /// Follow until the rerun ended; exit 6 if it failed.
        #[arg(long)]
        wait: bool,
        /// Seconds to follow with --wait.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// A processor's logs in DATE's run (its latest attempt unless --attempt).
    Logs {
        /// The game date.
        date: String,
        /// The processor.
        #[arg(long)]
        processor: String,
        /// The attempt (default: the latest).
        #[arg(long)]
        attempt: Option<u32>,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<i64>,
        /// Pick the run of this mode.
        #[arg(long)]
        mode: Option<String>,
    },
    /// A local web page of the season (dates by phases, live), served on 127.0.0.1 with your
    /// kubeconfig like `kubectl proxy`: drill into a run, start a backfill. See docs/dashboard.md.
    Dashboard {
        /// The port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Open the page in the default browser.
        #[arg(long)]
        open: bool,
    },
    /// Spot-check phases 3-4 for DATE: recompute N players' rolling averages and usage rate
    /// from the raw box scores and compare them with the tables; exit 8 on a mismatch.
    Validate {
        /// The game date.
        date: String,
        /// How many players of the date to check.
        #[arg(long, default_value_t = 5)]
        sample: usize,
        /// Picks which players (the same seed picks the same players).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The warehouse: file:///path (the local lake) or bigquery://project.
        #[arg(long, env = "TIPOFF_WAREHOUSE_URL")]
        warehouse: String,
        /// Output format (text or json).
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: Output,
    },
}

fn mode_opt(mode: Option<&str>) -> Result<Option<tipoff_crds::Mode>> {
    mode.map(commands::parse_mode).transpose()
}

async fn dispatch(cli: Cli) -> Result<()> {
    let target = Target {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
        namespace: cli.namespace,
    };
    match cli.command {
        Command::Run {
            date,
            mode,
            release,
            overrides,
            reason,
            wait,
            timeout,
        } => {
            cluster::parse_date(&date)?;
            let mode = commands::parse_mode(&mode)?;
            let release = release.as_deref().map(commands::read_release).transpose()?;
            if !overrides.is_empty() && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(CliError::Usage(
                    "--override needs --reason: who asked for it and why".into(),
                ));
            }
            let overrides = overrides
                .iter()
                .map(|o| commands::parse_override(o, reason.as_deref().unwrap_or_default()))
                .collect::<Result<Vec<_>>>()?;
            let cluster = Cluster::connect(&target).await?;
            commands::run(
                &cluster,
                commands::RunArgs {
                    date: &date,
                    mode,
                    release,
                    overrides,
                    wait,
                    timeout: Duration::from_secs(timeout),
                },
            )
            .await
        }
        Command::Backfill {
            from,
            to,
            reprocess,
            max_concurrent,
            order,
            mode,
            release,
            name,
            game_days,
            wait,
            timeout,
        } => {
            let args = backfill::BackfillArgs {
                game_days: game_days
                    .as_deref()
                    .map(backfill::parse_game_days)
                    .transpose()?,
                reprocess: backfill::parse_reprocess(&reprocess)?,
                order: backfill::parse_order(&order)?,
                mode: commands::parse_mode(&mode)?,
                release: release.as_deref().map(commands::read_release).transpose()?,
                from,
                to,
                name,
                max_concurrent,
                wait,
                timeout: Duration::from_secs(timeout),
            };
            cluster::parse_date(&args.from)?;
            cluster::parse_date(&args.to)?;
            let cluster = Cluster::connect(&target).await?;
            backfill::backfill(&cluster, args).await
        }
        Command::Status { date, mode, output } => {
            if let Some(d) = &date {
                cluster::parse_date(d)?;
            }
            let mode = mode_opt(mode.as_deref())?;
            let cluster = Cluster::connect(&target).await?;
            commands::status(&cluster, date.as_deref(), mode, output).await
        }
        Command::Schedule { name, output } => {
            let cluster = Cluster::connect(&target).await?;
            schedule::schedule(&cluster, name.as_deref(), output).await
        }
        Command::Drift { last, output } => {
            let cluster = Cluster::connect(&target).await?;
            commands::drift(&cluster, last, output).await
        }
        Command::Rerun {
            date,
            processor,
            game,
            reason,
            mode,
            wait,
            timeout,
        } => {
            cluster::parse_date(&date)?;
            let mode = mode_opt(mode.as_deref())?;
            let cluster = Cluster::connect(&target).await?;
            commands::rerun(
                &cluster,
                &date,
                mode,
                &processor,
                game.as_deref(),
                &reason,
                wait.then(|| Duration::from_secs(timeout)),
            )
            .await
        }
        Command::Logs {
            date,
            processor,
            attempt,
            tail,
            mode,
        } => {
            cluster::parse_date(&date)?;
            let mode = mode_opt(mode.as_deref())?;
            let cluster = Cluster::connect(&target).await?;
            commands::logs(&cluster, &date, mode, &processor, attempt, tail).await
        }
        Command::Dashboard { port, open } => {
            let cluster = Cluster::connect(&target).await?;
            dashboard::dashboard(cluster, dashboard::Options::new(port), open).await
        }
        Command::Validate {
            date,
            sample,
            seed,
            warehouse,
            output,
        } => {
            let date = cluster::parse_date(&date)?;
            let wh = tipoff_warehouse::open(&warehouse)
                .await
                .map_err(|e| CliError::Usage(format!("--warehouse {warehouse}: {e}")))?;
            let report = validate::validate(wh.as_ref(), date, sample, seed).await?;
            match output {
                Output::Text => validate::print(&report),
                _ => println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| CliError::Other(e.to_string()))?
                ),
            }
            match report.mismatches() {
                0 => Ok(()),
                n => Err(CliError::Mismatch(format!(
                    "{n} of {} values differ from their recomputation",
                    report.comparisons.len()
                ))),
            }
        }
    }
}

/// The entry point of both binaries: parses `std::env::args_os()`, runs the command, prints
/// an error as one `tipoff: ...` line, and returns the documented exit code.
pub fn main_entry() -> ExitCode {
    run_main::<Cli, _>("tipoff", dispatch)
}

/// A command-line program's `main`: parses the arguments as `P` (clap's usage errors exit 2,
/// `--help` and `--version` 0), runs `body` on a multi-threaded runtime, prints an error as one
/// `<program>: ...` line, and returns the documented exit code ([`error::exit`]). `tipoff-demo`
/// uses it too.
pub fn run_main<P, F>(program: &str, body: impl FnOnce(P) -> F) -> ExitCode
where
    P: clap::Parser,
    F: std::future::Future<Output = Result<()>>,
{
    let parsed = match P::try_parse_from(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(error::exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: starting the runtime: {e}");
            return ExitCode::from(error::exit::ERROR);
        }
    };
    match runtime.block_on(body(parsed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            e.into()
        }
    }
}
