//! The operator benchmark: `cargo run --release -p tipoff-operator --example bench -- --runs 1000`.
//!
//! Starts `dev/cluster` in-process with the Job runner mapping the processor image to
//! `tipoff-test-processor` (sleeping as the profile asks), runs the `tipoff-operator` binary as deployed (cargo profile
//! `operator`) as a child process on the bench catalog (`config/bench/pipeline.yaml`: two phases of five processors,
//! the last waiting for four others of its phase), creates N PipelineRuns (one date each) and
//! prints, next to the targets of issue 4, the figures below. Two load profiles:
//!
//! - burst (the default): every run created at once and processors that return at once, so all
//!   10·N Jobs go through the machine as one queue (a stress test of throughput);
//! - in flight (`--processor-ms`, `--processor-jitter-ms`, `--spread-seconds`): processors that
//!   take seconds and runs created over a window shorter than a run, so all N runs are in flight
//!   together while their phase completions arrive spread out, as a day of backfills would.
//!
//! The figures:
//!
//! - runs in flight: the peak of created minus ended, sampled every 100 ms;
//! - trigger latency p50/p99: for every Job with prerequisites (the previous phase, or its
//!   dependencies), from the last prerequisite's Job observed `Complete` to the Job observed,
//!   all seen through one watch of this process (sub-second precision; dev/cluster's
//!   timestamps have whole seconds, so the operator's own histogram is printed for reference);
//! - API writes per processor Job: dev/cluster's `devcluster_requests_total` for
//!   POST/PUT/PATCH/DELETE over the run, minus this program's own run creations;
//! - GET/LIST requests in steady state: the same counters over a quiet window after every run
//!   ended (this program makes no API request in that window);
//! - the operator's RSS (`VmRSS`, and the peak `VmHWM`, from `/proc/<pid>/status`), and at
//!   the highest sample its split into anonymous memory and mapped files (the binary's code);
//! - Jobs created per minute: the operator's `tipoff_jobs_created_total` over the window from
//!   its first to its last Job creation;
//! - phase hand-off p50/p95: from the last Job of a phase observed `Complete` to the first Job
//!   of the next phase observed, with each run's hand-offs and wall time and their spread across
//!   runs (the hand-off profile: `--catalog config/bench/dag28.yaml --sequential`, each run
//!   alone on the controller).
//!
//! The backfill profile (`--backfill-dates N --max-concurrent M`) creates no run itself: it
//! creates one PipelineBackfill of N dates and one PipelineSchedule catching up
//! `--schedule-days` game days (from a game-day ConfigMap), and reports, besides the figures
//! above, the backfill's time to finish against the ideal, the most of its runs in flight at
//! once (from a watch of the runs: never above M), the gap from a run ending to the next run's
//! first Job, and API writes per run as well as per Job.
//!
//! Every figure is measured; nothing is assumed. The processors are real processes, so on a
//! small machine spawning them (not the operator) bounds how fast phase 2 can start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tipoff_crds::{Mode, PipelineRun, PipelineRunSpec, Release};
use tipoff_devcluster::{Config, DevCluster, ImageMapping, RunnerConfig};
use tipoff_operator::catalog::Catalog;

const REPO: &str = "ghcr.io/tipoff/processor";
const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const COMMIT: &str = "c4f8f339";
const NS: &str = "default";

#[derive(Parser, Debug)]
#[command(about = "Benchmarks tipoff-operator on dev/cluster with the test processor")]
struct Args {
    /// PipelineRuns to create (ten processor Jobs each).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Each test processor sleeps this many milliseconds (0: the burst profile)...
    #[arg(long, default_value_t = 0)]
    processor_ms: u64,
    /// ...plus up to this many more, spread over processors and dates (the same on every run).
    #[arg(long, default_value_t = 0)]
    processor_jitter_ms: u64,
    /// Create the runs evenly over this many seconds instead of all at once.
    #[arg(long, default_value_t = 0.0)]
    spread_seconds: f64,
    /// Seconds of the quiet window after the runs end, for steady-state reads.
    #[arg(long, default_value_t = 15)]
    quiet_seconds: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
    /// Keep the operator's JSON log at this path (default: a temporary file, removed at exit).
    #[arg(long)]
    operator_log: Option<PathBuf>,
    /// Write every trigger (run, processor, seconds from the first create to ready and to
    /// created, latency) to this CSV file, to see when slow ones happen.
    #[arg(long)]
    latency_csv: Option<PathBuf>,
    /// The operator's `RUST_LOG`.
    #[arg(long, default_value = "info,kube=warn")]
    operator_rust_log: String,
    /// Run the operator under this command (split on spaces), e.g. `heaptrack -o /tmp/op` for
    /// a heap profile. The RSS figures are then the wrapper's, not the operator's; the operator
    /// is stopped with SIGTERM so the wrapper can write its output.
    #[arg(long)]
    operator_wrapper: Option<String>,
    /// Extra environment for the operator, `KEY=VALUE` (repeatable), e.g. allocator settings.
    #[arg(long = "operator-env", value_parser = parse_env)]
    operator_env: Vec<(String, String)>,
    /// Extra arguments for the operator (e.g. `--operator-arg=--reconcile-debounce-ms=0`).
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// The catalog, relative to the workspace: `config/bench/pipeline.yaml` (two phases of
    /// five) or `config/bench/dag28.yaml` (the 28-Job hand-off DAG of six phases).
    #[arg(long, default_value = "config/bench/pipeline.yaml")]
    catalog: PathBuf,
    /// Run this operator binary instead of building the current tree's (to compare builds).
    #[arg(long)]
    operator_bin: Option<PathBuf>,
    /// Create each run only once the one before it ended, so each run has the controller to
    /// itself (the hand-off profile: `--catalog config/bench/dag28.yaml --runs 5 --sequential`).
    #[arg(long)]
    sequential: bool,
    /// The backfill profile: one PipelineBackfill of this many dates (from 2000-01-01) runs
    /// them, instead of `--runs` runs created by the bench.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["runs", "sequential", "spread_seconds"])]
    backfill_dates: usize,
    /// The backfill's `maxConcurrent`.
    #[arg(long, default_value_t = 3)]
    max_concurrent: u32,
    /// With `--backfill-dates`: one PipelineSchedule also catches up this many game days (the
    /// days 5, 4 and 3 before today when 3) next to the backfill; 0 for none.
    #[arg(long, default_value_t = 3)]
    schedule_days: usize,
}

/// Names the backfill profile creates.
const BACKFILL: &str = "bench-season";
const SCHEDULE: &str = "bench-nightly";
const GAME_DAYS: &str = "bench-game-days";

/// The backfill profile's objects: a game-day ConfigMap and a schedule that catches up
/// `days` game days (listed ending three days ago, so every one is due at any time of day and
/// inside a week's window), and a backfill of `dates` dates from `first`.
async fn create_backfill_profile(
    client: &kube::Client,
    first: jiff::civil::Date,
    dates: usize,
    max_concurrent: u32,
    days: usize,
) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use tipoff_crds::{PipelineBackfill, PipelineSchedule};
    let release = Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT);
    if days > 0 {
        let today = jiff::Zoned::now().date();
        let game_days: Vec<jiff::civil::Date> = (0..days)
            .map(|i| {
                today.checked_sub(jiff::Span::new().days(i64::try_from(days - i + 2).unwrap()))
            })
            .collect::<Result<_, _>>()?;
        let mut text = format!(
            "through: {}\n",
            today.checked_add(jiff::Span::new().days(30))?
        );
        for d in &game_days {
            text.push_str(&format!("{d}\n"));
        }
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": GAME_DAYS, "labels": {tipoff_crds::pipeline_schedule::LABEL_GAME_DAYS: "true"}},
            "data": {"dates": text},
        }))?;
        Api::<ConfigMap>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &cm)
            .await?;
        let schedule: PipelineSchedule = serde_json::from_value(serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1",
            "kind": "PipelineSchedule",
            "metadata": {"name": SCHEDULE},
            "spec": {
                "gameDays": {"configMap": GAME_DAYS},
                "release": release,
                "startDate": game_days[0].to_string(),
                "catchUpWindow": "168h",
            },
        }))?;
        Api::<PipelineSchedule>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &schedule)
            .await?;
    }
    let last = first.checked_add(jiff::Span::new().days(i64::try_from(dates).unwrap() - 1))?;
    let backfill: PipelineBackfill = serde_json::from_value(serde_json::json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineBackfill",
        "metadata": {"name": BACKFILL},
        "spec": {
            "from": first.to_string(),
            "to": last.to_string(),
            "release": release,
            "maxConcurrent": max_concurrent,
            "reprocess": "All",
        },
    }))?;
    Api::<PipelineBackfill>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &backfill)
        .await?;
    Ok(())
}

/// Runs in flight (created, not ended) per creator label value, and the peak of each, as a
/// watch of the PipelineRuns sees them.
#[derive(Default)]
struct InFlight {
    /// run -> (creator, ended)
    runs: HashMap<String, (String, bool)>,
    /// creator -> peak in flight
    peak: BTreeMap<String, usize>,
}

impl InFlight {
    fn observe(&mut self, run: &PipelineRun) {
        let labels = run.metadata.labels.clone().unwrap_or_default();
        let creator = if let Some(b) = labels.get(tipoff_crds::pipeline_backfill::LABEL_BACKFILL) {
            format!("backfill/{b}")
        } else if let Some(s) = labels.get(tipoff_crds::pipeline_schedule::LABEL_SCHEDULE) {
            format!("schedule/{s}")
        } else {
            "bench".to_owned()
        };
        let ended = run
            .status
            .as_ref()
            .and_then(|s| s.state)
            .is_some_and(|s| s.is_terminal());
        let name = run.metadata.name.clone().unwrap_or_default();
        self.runs.insert(name, (creator.clone(), ended));
        let now = self
            .runs
            .values()
            .filter(|(c, e)| *c == creator && !e)
            .count();
        let peak = self.peak.entry(creator).or_default();
        *peak = (*peak).max(now);
    }
}

/// When this program's watch first saw each processor's Job of each run, and saw it complete:
/// `(run, processor) -> (created, complete)`.
type Seen = HashMap<(String, String), (Option<Instant>, Option<Instant>)>;

/// What each bench processor's Job waits for: its explicit dependencies, plus every processor
/// of the previous phase (a phase starts when the one before it succeeded).
fn triggers(catalog: &Catalog) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    for phase in &catalog.phases {
        for p in &phase.processors {
            let mut waits: Vec<String> = previous.clone();
            waits.extend(p.dependencies(Mode::Backfill).map(str::to_owned));
            if !waits.is_empty() {
                out.push((p.name.clone(), waits));
            }
        }
        previous = phase.processors.iter().map(|p| p.name.clone()).collect();
    }
    out
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cargo profile of a binary the bench runs: a release bench runs the operator as it is
/// deployed (the `operator` profile, see the workspace `Cargo.toml`) and the rest as `release`;
/// a debug bench runs debug builds.
fn profile_of(bin: &str, release: bool) -> &'static str {
    match (release, bin) {
        (false, _) => "dev",
        (true, "tipoff-operator") => "operator",
        (true, _) => "release",
    }
}

/// Builds `bin` with the profile [`profile_of`] picks and returns its path
/// (target/<profile dir>/<bin>; the bench itself is target/<profile dir>/examples/bench).
fn binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let release = dir.file_name().is_some_and(|n| n == "release");
    let profile = profile_of(bin, release);
    let mut cmd = tipoff_devcluster::cargo::command(&workspace());
    cmd.args(["build", "-p", package, "--bin", bin, "--profile", profile]);
    assert!(cmd.status().unwrap().success(), "building {bin} failed");
    let target = dir.parent().unwrap();
    target
        .join(if profile == "dev" { "debug" } else { profile })
        .join(bin)
}

/// `name{labels} value` lines of a text exposition, labels as a map.
fn parse_metrics(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .trim_end_matches('}')
                    .split("\",")
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.push((name, labels, value));
    }
    out
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

/// dev/cluster's request counters: (method, resource) -> count.
fn requests(cluster: &DevCluster) -> BTreeMap<(String, String), f64> {
    let body = http_get(&cluster.addr().to_string(), "/metrics").unwrap();
    let mut out = BTreeMap::new();
    for (name, labels, value) in parse_metrics(&body) {
        if name == "devcluster_requests_total" {
            *out.entry((labels["method"].clone(), labels["resource"].clone()))
                .or_default() += value;
        }
    }
    out
}

fn diff(
    after: &BTreeMap<(String, String), f64>,
    before: &BTreeMap<(String, String), f64>,
) -> BTreeMap<(String, String), f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// Operator metric value, summed over label sets matching `filter`.
fn metric(text: &str, name: &str, filter: impl Fn(&BTreeMap<String, String>) -> bool) -> f64 {
    parse_metrics(text)
        .into_iter()
        .filter(|(n, l, _)| n == name && filter(l))
        .map(|(_, _, v)| v)
        .sum()
}

/// CPU seconds of a process (`self` or a pid): its own user + system time, and that of its
/// children that ended (for this program: the processor processes the dev/cluster runner ran).
fn cpu_seconds(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime is field 14 of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    Some(((f[11] + f[12]) / tick, (f[13] + f[14]) / tick))
}

/// A process's memory from `/proc/<pid>/status`, in MiB.
#[derive(Clone, Copy, Default)]
struct Memory {
    /// `VmRSS`: resident now.
    rss: f64,
    /// `VmHWM`: the most ever resident.
    hwm: f64,
    /// `RssAnon`: of `rss`, the heap, stacks and other anonymous memory.
    anon: f64,
    /// `RssFile`: of `rss`, pages of mapped files (the binary's code and read-only data, the
    /// shared libraries).
    file: f64,
}

fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The smallest histogram bucket bound holding quantile `q` of the observations, over the label
/// sets (other than `le`) that `filter` accepts.
fn bucket_quantile(
    text: &str,
    name: &str,
    q: f64,
    filter: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Option<f64> {
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (n, labels, count) in parse_metrics(text) {
        if n != format!("{name}_bucket") || !filter(&labels) {
            continue;
        }
        let le = labels.get("le")?;
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        buckets.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += count;
    }
    let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    buckets
        .into_iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(b, _)| b)
}

/// The KiB of JSON, less managed fields, of every object `api` lists.
async fn json_kib<K>(api: Api<K>) -> anyhow::Result<f64>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let mut bytes = 0;
    for item in api.list(&ListParams::default()).await?.items {
        let mut value = serde_json::to_value(&item)?;
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
        bytes += serde_json::to_vec(&value)?.len();
    }
    Ok(bytes as f64 / 1024.0)
}

/// Whether an HTTP method writes.
fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// [`bucket_quantile`] at p50 and p99.
fn p50_p99(
    text: &str,
    name: &str,
    filter: impl Fn(&BTreeMap<String, String>) -> bool,
) -> (Option<f64>, Option<f64>) {
    (
        bucket_quantile(text, name, 0.50, &filter),
        bucket_quantile(text, name, 0.99, &filter),
    )
}

/// One run's phase hand-offs (seconds from the last Job of a phase observed `Complete` to the
/// first Job of the next phase observed) and its wall time (its first Job observed to its last
/// Job observed `Complete`).
struct RunHandoffs {
    run: String,
    handoffs: Vec<f64>,
    wall: f64,
    /// Its first Job observed.
    first: Option<Instant>,
    /// Its last Job observed `Complete`.
    last: Option<Instant>,
}

fn handoffs(catalog: &Catalog, seen: &Seen) -> Vec<RunHandoffs> {
    let runs: std::collections::BTreeSet<&String> = seen.keys().map(|(r, _)| r).collect();
    let mut out = Vec::new();
    for run in runs {
        let at = |p: &str| seen.get(&(run.clone(), p.to_owned()));
        let mut handoffs = Vec::new();
        for pair in catalog.phases.windows(2) {
            let last_done: Option<Vec<Instant>> =
                pair[0].processors.iter().map(|p| at(&p.name)?.1).collect();
            let first_created = pair[1]
                .processors
                .iter()
                .filter_map(|p| at(&p.name)?.0)
                .min();
            if let (Some(done), Some(created)) =
                (last_done.and_then(|d| d.into_iter().max()), first_created)
            {
                handoffs.push(created.saturating_duration_since(done).as_secs_f64());
            }
        }
        let first = seen
            .iter()
            .filter(|((r, _), _)| r == run)
            .filter_map(|(_, t)| t.0)
            .min();
        let last = seen
            .iter()
            .filter(|((r, _), _)| r == run)
            .filter_map(|(_, t)| t.1)
            .max();
        let wall = match (first, last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => f64::NAN,
        };
        out.push(RunHandoffs {
            run: run.clone(),
            handoffs,
            wall,
            first,
            last,
        });
    }
    out
}

/// Prints the hand-off figures: over every hand-off, then per run, then the spread of the
/// per-run figures (min, median, max).
fn print_handoffs(runs: &[RunHandoffs]) {
    let mut all: Vec<f64> = runs.iter().flat_map(|r| r.handoffs.clone()).collect();
    all.sort_by(f64::total_cmp);
    let (p50, p95) = (quantile(&all, 0.50), quantile(&all, 0.95));
    println!(
        "  phase hand-off (last Job of a phase complete -> first Job of the next, watch-observed, {} hand-offs): p50 {p50:.3}s  p95 {p95:.3}s   targets p50 <= 0.050s, p95 <= 0.150s  {}",
        all.len(),
        verdict(p50 <= 0.050 && p95 <= 0.150)
    );
    let (mut p50s, mut p95s, mut walls) = (Vec::new(), Vec::new(), Vec::new());
    for r in runs {
        let mut h = r.handoffs.clone();
        h.sort_by(f64::total_cmp);
        let (a, b) = (quantile(&h, 0.50), quantile(&h, 0.95));
        if runs.len() <= 20 {
            println!(
                "    {}: wall {:.2}s, hand-offs {} p50 {a:.3}s p95 {b:.3}s",
                r.run,
                r.wall,
                h.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        p50s.push(a);
        p95s.push(b);
        walls.push(r.wall);
    }
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!(
            "min {:.3} median {:.3} max {:.3}",
            v.first().copied().unwrap_or(f64::NAN),
            quantile(v, 0.5),
            v.last().copied().unwrap_or(f64::NAN)
        )
    };
    println!(
        "    across {} runs: hand-off p50 {}; p95 {}; wall (first Job -> last Job complete) {} s",
        runs.len(),
        spread(&mut p50s),
        spread(&mut p95s),
        spread(&mut walls)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets target" } else { "MISSES target" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tipoff_operator::install_crypto_provider();
    let catalog_path = workspace().join(&args.catalog);
    let catalog = Catalog::load(&catalog_path)?;
    let triggers = triggers(&catalog);
    let operator_bin = args
        .operator_bin
        .clone()
        .unwrap_or_else(|| binary("tipoff-operator", "tipoff-operator"));
    let processor_bin = binary("tipoff-test-processor", "tipoff-test-processor");
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("behaviour.yaml");
    std::fs::write(
        &script,
        format!(
            "default: {{sleepMs: {}, sleepJitterMs: {}, commit: {COMMIT}, rows: {{nba_raw.bench: 1}}}}\n",
            args.processor_ms, args.processor_jitter_ms
        ),
    )?;
    let cluster = DevCluster::start(Config {
        runner: RunnerConfig {
            images: vec![ImageMapping {
                image: REPO.into(),
                command: vec![processor_bin.display().to_string()],
                args: vec![],
                image_id: None,
                env: BTreeMap::from([(
                    "TIPOFF_TEST_BEHAVIOUR".to_owned(),
                    script.display().to_string(),
                )]),
            }],
        },
        ..Config::default()
    })
    .await?;
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig)?;
    let client = kube::Client::try_from(kube::Config::new(cluster.url().parse()?))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "pipelineruns.tipoff.dev.yaml",
        "phasecompletions.tipoff.dev.yaml",
        "pipelinebackfills.tipoff.dev.yaml",
        "pipelineschedules.tipoff.dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace().join("crds/generated").join(file))?;
        crds.create(&PostParams::default(), &serde_yaml::from_str(&text)?)
            .await?;
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let op_addr = format!("127.0.0.1:{port}");
    let log = args
        .operator_log
        .clone()
        .unwrap_or_else(|| dir.path().join("operator.log"));
    let wrapper: Vec<&str> = args
        .operator_wrapper
        .as_deref()
        .map(|w| w.split_whitespace().collect())
        .unwrap_or_default();
    let mut operator = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(&operator_bin).process_group(0);
            c
        }
        None => Command::new(&operator_bin),
    };
    let mut operator = operator
        .args([
            "--catalog",
            &catalog_path.display().to_string(),
            "--namespace",
            NS,
            "--listen",
            &op_addr,
            "--identity",
            "bench",
            "--log-format",
            "json",
        ])
        .args(&args.operator_args)
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", &args.operator_rust_log)
        .envs(args.operator_env.iter().cloned())
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = operator.id();
    let started = Instant::now();
    while http_get(&op_addr, "/readyz").is_none() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the operator never became ready; log: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle = memory(pid);

    // One watch of this process sees every Job: phase-1 completions and phase-2 creations.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
        tokio::spawn(async move {
            let stream = watcher(jobs, watcher::Config::default()).applied_objects();
            futures::pin_mut!(stream);
            while let Ok(Some(job)) = stream.try_next().await {
                let now = Instant::now();
                let labels = job.metadata.labels.clone().unwrap_or_default();
                let (Some(run), Some(processor)) = (
                    labels.get("tipoff.dev/run"),
                    labels.get("tipoff.dev/processor"),
                ) else {
                    continue;
                };
                let complete = job.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .flatten()
                        .any(|c| c.type_ == "Complete" && c.status == "True")
                });
                let mut seen = seen.lock().unwrap();
                let entry = seen.entry((run.clone(), processor.clone())).or_default();
                entry.0.get_or_insert(now);
                if complete {
                    entry.1.get_or_insert(now);
                }
            }
        })
    };

    // One watch of the runs: how many of each creator's are in flight at once.
    let in_flight: Arc<Mutex<InFlight>> = Arc::default();
    let run_watch = {
        let in_flight = in_flight.clone();
        let runs: Api<PipelineRun> = Api::namespaced(client.clone(), NS);
        tokio::spawn(async move {
            let stream = watcher(runs, watcher::Config::default()).applied_objects();
            futures::pin_mut!(stream);
            while let Ok(Some(run)) = stream.try_next().await {
                in_flight.lock().unwrap().observe(&run);
            }
        })
    };
    let backfill_profile = args.backfill_dates > 0;
    // The runs the operator must end: the bench's own, or the backfill's and the schedule's.
    let total_runs = if backfill_profile {
        args.backfill_dates + args.schedule_days
    } else {
        args.runs
    };

    let before = requests(&cluster);
    let cpu_before = cpu_seconds("self").unwrap_or((0.0, 0.0));
    let runs: Api<PipelineRun> = Api::namespaced(client.clone(), NS);
    let first_date = jiff::civil::date(2000, 1, 1);
    let create_started = Instant::now();
    // Runs are created by a task of their own, so that with `--spread-seconds` the runs already
    // created are followed (and counted in flight) while later ones are still being created.
    let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let creator = {
        let (created, total) = (created.clone(), args.runs);
        let gap = Duration::from_secs_f64(args.spread_seconds.max(0.0) / total.max(1) as f64);
        let (sequential, each_alone) = (args.sequential, runs.clone());
        let ended = |run: Option<PipelineRun>| {
            run.and_then(|r| r.status?.state)
                .is_some_and(|s| s.is_terminal())
        };
        let (profile_client, backfill_dates, max_concurrent, schedule_days) = (
            client.clone(),
            args.backfill_dates,
            args.max_concurrent,
            args.schedule_days,
        );
        tokio::spawn(async move {
            if backfill_dates > 0 {
                create_backfill_profile(
                    &profile_client,
                    first_date,
                    backfill_dates,
                    max_concurrent,
                    schedule_days,
                )
                .await?;
                return Ok(create_started.elapsed());
            }
            if sequential {
                for i in 0..total {
                    let name = format!("bench-{i:05}");
                    let date = first_date
                        .checked_add(jiff::Span::new().days(i64::try_from(i).unwrap()))
                        .unwrap();
                    let run = PipelineRun::new(
                        &name,
                        PipelineRunSpec::new(
                            date.to_string(),
                            Mode::Backfill,
                            Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT),
                        ),
                    );
                    each_alone.create(&PostParams::default(), &run).await?;
                    created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    while !ended(each_alone.get_opt(&name).await?) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                return Ok(create_started.elapsed());
            }
            futures::stream::iter(0..total)
                .map(|i| {
                    let (runs, created) = (runs.clone(), created.clone());
                    let slot = tokio::time::Instant::from_std(create_started)
                        + gap * u32::try_from(i).unwrap();
                    async move {
                        tokio::time::sleep_until(slot).await;
                        let date = first_date
                            .checked_add(jiff::Span::new().days(i64::try_from(i).unwrap()))
                            .unwrap();
                        let run = PipelineRun::new(
                            &format!("bench-{i:05}"),
                            PipelineRunSpec::new(
                                date.to_string(),
                                Mode::Backfill,
                                Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT),
                            ),
                        );
                        let made = runs.create(&PostParams::default(), &run).await;
                        created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        made
                    }
                })
                .buffer_unordered(16)
                .try_collect::<Vec<_>>()
                .await
                .map(|_| create_started.elapsed())
                .map_err(anyhow::Error::from)
        })
    };

    // Follow the operator's own metrics until every run ended.
    let expected_jobs = (catalog.processors().count() * total_runs) as f64;
    let (mut first_job, mut last_job) = (None, None);
    // The sample with the most resident memory (VmHWM has no split into anon and file).
    let mut peak_sample = Memory::default();
    let mut peak_in_flight = 0.0_f64;
    let deadline = create_started + Duration::from_secs(args.timeout_seconds);
    let metrics = loop {
        let text = http_get(&op_addr, "/metrics").unwrap_or_default();
        let now = Instant::now();
        let jobs = metric(&text, "tipoff_jobs_created_total", |_| true);
        if jobs > 0.0 && first_job.is_none() {
            first_job = Some(now);
        }
        if jobs >= expected_jobs && last_job.is_none() {
            last_job = Some(now);
        }
        if let Some(m) = memory(pid).filter(|m| m.rss > peak_sample.rss) {
            peak_sample = m;
        }
        let ended = metric(&text, "tipoff_runs", |l| {
            l.get("state")
                .is_some_and(|s| s == "Succeeded" || s == "Failed")
        });
        let in_flight = if backfill_profile {
            let f = in_flight.lock().unwrap();
            f.runs.values().filter(|(_, e)| !e).count() as f64
        } else {
            created.load(std::sync::atomic::Ordering::Relaxed) as f64 - ended
        };
        peak_in_flight = peak_in_flight.max(in_flight);
        if ended >= total_runs as f64 {
            break text;
        }
        anyhow::ensure!(
            now < deadline,
            "timed out: {ended} of {total_runs} runs ended, {jobs} Jobs created; log: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run_time = create_started.elapsed();
    let created_in = creator.await??;
    // Let the last status writes and Events land before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watch.abort();
    let _ = watch.await;
    run_watch.abort();
    let _ = run_watch.await;
    let after = requests(&cluster);

    // Quiet window: nothing of this program talks to the API.
    tokio::time::sleep(Duration::from_secs(args.quiet_seconds)).await;
    let quiet = diff(&requests(&cluster), &after);
    let final_memory = memory(pid);
    // Under a wrapper `pid` is the wrapper's: its figures are not the operator's.
    let operator_cpu = cpu_seconds(&pid.to_string())
        .filter(|_| wrapper.is_empty())
        .map_or(f64::NAN, |c| c.0);
    let (bench_cpu, processors_cpu) = cpu_seconds("self").map_or((f64::NAN, f64::NAN), |c| {
        (c.0 - cpu_before.0, c.1 - cpu_before.1)
    });
    let final_metrics = http_get(&op_addr, "/metrics").unwrap_or(metrics);
    if wrapper.is_empty() {
        let _ = operator.kill();
    } else {
        // The whole group, so the wrapped operator exits and the wrapper finishes its output.
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{pid}")])
            .status();
    }
    let _ = operator.wait();
    // What a finished run leaves in the operator's caches, as JSON without managed fields: a
    // yardstick (the cache keeps the PhaseCompletions' status deflated, so holds less).
    let runs_kib = json_kib(Api::<PipelineRun>::namespaced(client.clone(), NS)).await?;
    let pcs_kib = json_kib(Api::<tipoff_crds::PhaseCompletion>::namespaced(
        client.clone(),
        NS,
    ))
    .await?;

    // Figures.
    let succeeded = metric(&final_metrics, "tipoff_runs", |l| {
        l.get("state").is_some_and(|s| s == "Succeeded")
    });
    let jobs_created = metric(&final_metrics, "tipoff_jobs_created_total", |_| true);
    // A trigger: the last of a Job's prerequisites observed complete -> the Job observed.
    let mut latencies: Vec<f64> = Vec::new();
    let mut csv = vec!["run,processor,ready_s,created_s,latency_s".to_owned()];
    {
        let seen = seen.lock().unwrap();
        let run_names: std::collections::BTreeSet<&String> = seen.keys().map(|(r, _)| r).collect();
        for run in run_names {
            for (processor, waits) in &triggers {
                let at = |p: &str| seen.get(&(run.clone(), p.to_owned()));
                let Some(created) = at(processor).and_then(|t| t.0) else {
                    continue;
                };
                let ready: Option<Vec<Instant>> = waits.iter().map(|w| at(w)?.1).collect();
                if let Some(ready) = ready.and_then(|r| r.into_iter().max()) {
                    let latency = created.saturating_duration_since(ready).as_secs_f64();
                    latencies.push(latency);
                    let since = |t: Instant| t.saturating_duration_since(create_started);
                    csv.push(format!(
                        "{run},{processor},{:.3},{:.3},{latency:.3}",
                        since(ready).as_secs_f64(),
                        since(created).as_secs_f64()
                    ));
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    if let Some(path) = &args.latency_csv {
        std::fs::write(path, csv.join("\n") + "\n")?;
    }
    let (p50, p99) = (quantile(&latencies, 0.50), quantile(&latencies, 0.99));
    let handoffs = handoffs(&catalog, &seen.lock().unwrap());

    let during = diff(&after, &before);
    let mut write_total = 0.0;
    let mut by_resource: BTreeMap<String, f64> = BTreeMap::new();
    for ((method, resource), n) in &during {
        if !is_write(method) {
            continue;
        }
        // This program's own creations are not the operator's writes.
        let own = match (method.as_str(), resource.as_str(), backfill_profile) {
            ("POST", "pipelineruns", false) => args.runs as f64,
            ("POST", "pipelinebackfills", true) => 1.0,
            ("POST", "pipelineschedules" | "configmaps", true) if args.schedule_days > 0 => 1.0,
            _ => 0.0,
        };
        let n = n - own;
        if n > 0.0 {
            write_total += n;
            *by_resource
                .entry(format!("{method} {resource}"))
                .or_default() += n;
        }
    }
    let writes_per_job = write_total / jobs_created.max(1.0);
    // Reads during the run: each watch is one LIST and one WATCH request unless it had to
    // start over (a watch that fell too far behind is ended with 410 Gone and relisted).
    let reads_during: Vec<String> = during
        .iter()
        .filter(|((m, r), _)| m == "GET" && !matches!(r.as_str(), "other" | "admin"))
        .map(|((_, r), n)| format!("{r} {n}"))
        .collect();
    // The leader renews its Lease with a GET and a PUT every renew period (as client-go does);
    // that is counted, and shown apart from reads of the objects the controller reconciles.
    let api_reads = |with_lease: bool| -> f64 {
        quiet
            .iter()
            .filter(|((m, r), _)| m == "GET" && r != "other" && r != "admin")
            .filter(|((_, r), _)| with_lease || r != "leases")
            .map(|(_, n)| n)
            .sum()
    };
    let steady_reads = api_reads(false).round() as u64;
    let lease_reads = (api_reads(true) - api_reads(false)).round() as u64;
    let create_window = match (first_job, last_job) {
        (Some(a), Some(b)) => b.duration_since(a).max(Duration::from_millis(100)),
        _ => run_time,
    };
    let jobs_per_minute = jobs_created / create_window.as_secs_f64() * 60.0;
    let (rss_now, rss_peak) = final_memory.map_or((f64::NAN, f64::NAN), |m| (m.rss, m.hwm));
    let rss_peak = rss_peak.max(peak_sample.rss);
    let rss_target = 30.0 + total_runs as f64 / 1000.0;

    println!(
        "tipoff-operator benchmark on dev/cluster (test processor sleeps {} ms + up to {} ms; runs created over {:.0} s)",
        args.processor_ms, args.processor_jitter_ms, args.spread_seconds
    );
    println!(
        "  CPU seconds from the first create: operator {operator_cpu:.1} (with start-up), dev/cluster + this program {bench_cpu:.1}, processor processes {processors_cpu:.1} (machine: {} cores)",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    if backfill_profile {
        print_backfill(
            &args,
            &handoffs,
            &in_flight.lock().unwrap(),
            run_time,
            write_total,
        );
    }
    let created_by = if backfill_profile {
        format!(
            "{} by the backfill, {} by the schedule; their objects created",
            args.backfill_dates, args.schedule_days
        )
    } else {
        "created".to_owned()
    };
    println!(
        "  runs: {} ({created_by} in {:.1}s), {} succeeded, {} Jobs created, all ended {:.1}s after the first create",
        total_runs,
        created_in.as_secs_f64(),
        succeeded,
        jobs_created,
        run_time.as_secs_f64()
    );
    println!(
        "  runs in flight (created, not yet ended; sampled every 100 ms): peak {peak_in_flight:.0} of {total_runs}"
    );
    println!(
        "  trigger latency (watch-observed, {} triggers): p50 {:.3}s  p99 {:.3}s   target p99 < 1s   ratio {:.2}  {}",
        latencies.len(),
        p50,
        p99,
        p99 / 1.0,
        verdict(p99 < 1.0)
    );
    let (trigger_p50, trigger_p99) =
        p50_p99(&final_metrics, "tipoff_trigger_latency_seconds", |_| true);
    println!(
        "    operator histogram tipoff_trigger_latency_seconds (timestamps of whole seconds): p50 <= {trigger_p50:?}s  p99 <= {trigger_p99:?}s"
    );
    let dev_metrics = http_get(&cluster.addr().to_string(), "/metrics").unwrap_or_default();
    let (reconcile_p50, reconcile_p99) =
        p50_p99(&final_metrics, "tipoff_reconcile_duration_seconds", |_| {
            true
        });
    let (write_p50, write_p99) =
        p50_p99(&dev_metrics, "devcluster_request_duration_seconds", |l| {
            l.get("method").is_some_and(|m| is_write(m))
        });
    println!(
        "    where the time goes: {} reconciles, took p50 <= {reconcile_p50:?}s p99 <= {reconcile_p99:?}s; dev/cluster write handling p50 <= {write_p50:?}s p99 <= {write_p99:?}s",
        metric(&final_metrics, "tipoff_reconciles_total", |_| true),
    );
    print_handoffs(&handoffs);
    println!(
        "  API writes per processor Job: {writes_per_job:.2}   target <= 4   ratio {:.2}  {}",
        writes_per_job / 4.0,
        verdict(writes_per_job <= 4.0)
    );
    for (what, n) in &by_resource {
        println!("    {what}: {n} ({:.2}/Job)", n / jobs_created.max(1.0));
    }
    println!(
        "  GET/LIST/WATCH requests during the runs (this program's own included): {}",
        reads_during.join(", ")
    );
    println!(
        "  GET/LIST requests in a {}s quiet window after the runs: {steady_reads} (plus {lease_reads} GETs of the leader Lease for renewal)   target 0  {}",
        args.quiet_seconds,
        verdict(steady_reads == 0)
    );
    for ((m, r), n) in quiet.iter().filter(|((m, _), _)| m == "GET") {
        println!("    {m} {r}: {n}");
    }
    if let Some(w) = &args.operator_wrapper {
        println!("  operator RSS and CPU: not measured (the operator ran under `{w}`)");
    } else {
        println!(
            "  operator RSS: {rss_now:.1} MiB at the end, peak {rss_peak:.1} MiB (idle before the runs: {:.1} MiB)   target < {rss_target:.1} MiB   ratio {:.2}  {}",
            idle.map_or(f64::NAN, |m| m.rss),
            rss_peak / rss_target,
            verdict(rss_peak < rss_target)
        );
        println!(
            "    at the highest sample ({:.1} MiB): anonymous (heap, stacks) {:.1} MiB, file-backed (the binary's code and data) {:.1} MiB; idle: {:.1} and {:.1} MiB",
            peak_sample.rss,
            peak_sample.anon,
            peak_sample.file,
            idle.map_or(f64::NAN, |m| m.anon),
            idle.map_or(f64::NAN, |m| m.file),
        );
    }
    println!(
        "    the runs and PhaseCompletions it caches, as JSON (its cache deflates their statuses): {runs_kib:.0} KiB and {pcs_kib:.0} KiB ({:.1} KiB per run)",
        (runs_kib + pcs_kib) / total_runs.max(1) as f64
    );
    println!(
        "  Jobs created per minute: {jobs_per_minute:.0} ({jobs_created} over {:.1}s from first to last create)   target >= 1200   ratio {:.2}  {}",
        create_window.as_secs_f64(),
        jobs_per_minute / 1200.0,
        verdict(jobs_per_minute >= 1200.0)
    );
    anyhow::ensure!(
        succeeded >= total_runs as f64,
        "only {succeeded} of {total_runs} runs succeeded; log: {}",
        log.display()
    );
    if backfill_profile {
        let peak = in_flight
            .lock()
            .unwrap()
            .peak
            .get(&format!("backfill/{BACKFILL}"))
            .copied()
            .unwrap_or(0);
        anyhow::ensure!(
            peak <= args.max_concurrent as usize,
            "the backfill had {peak} runs in flight, above maxConcurrent {}",
            args.max_concurrent
        );
    }
    Ok(())
}

/// The backfill profile's figures: time to finish against the ideal, the most runs in flight
/// per creator, the gap from a run ending to the next one's first Job, writes per run.
fn print_backfill(
    args: &Args,
    runs: &[RunHandoffs],
    in_flight: &InFlight,
    run_time: Duration,
    writes: f64,
) {
    let backfill_runs: Vec<&RunHandoffs> = runs
        .iter()
        .filter(|r| {
            in_flight
                .runs
                .get(&r.run)
                .is_some_and(|(c, _)| *c == format!("backfill/{BACKFILL}"))
        })
        .collect();
    let m = args.max_concurrent as f64;
    let walls: Vec<f64> = backfill_runs.iter().map(|r| r.wall).collect();
    let busy: f64 = walls.iter().sum();
    let longest = walls.iter().copied().fold(0.0, f64::max);
    // No backfill can finish sooner than its runs' work spread over M slots, nor than its
    // longest run: that is the ideal (every slot refilled the instant it frees).
    let ideal = (busy / m).max(longest);
    let mut sorted = walls.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  backfill {BACKFILL}: {} dates, maxConcurrent {}, ended {:.1}s after its creation; ideal {ideal:.1}s (sum of run walls {busy:.1}s / {} slots; run wall p50 {:.2}s), ratio {:.2}",
        args.backfill_dates,
        args.max_concurrent,
        run_time.as_secs_f64(),
        args.max_concurrent,
        quantile(&sorted, 0.5),
        run_time.as_secs_f64() / ideal.max(f64::MIN_POSITIVE)
    );
    for (creator, peak) in &in_flight.peak {
        let cap = if creator.starts_with("backfill/") {
            format!(
                "maxConcurrent {}  {}",
                args.max_concurrent,
                verdict(*peak <= args.max_concurrent as usize)
            )
        } else if creator.starts_with("schedule/") {
            format!("concurrencyPolicy Forbid: 1  {}", verdict(*peak <= 1))
        } else {
            String::new()
        };
        let count = in_flight
            .runs
            .values()
            .filter(|(c, _)| c == creator)
            .count();
        println!(
            "    {creator}: {count} runs, at most {peak} in flight at once (every watch event)   {cap}"
        );
    }
    // A slot freed (a run's last Job complete) -> the next run's first Job, as the bench's
    // Job watch saw them: the backfill's hand-off plus the run controller's first Jobs.
    let mut by_start: Vec<&RunHandoffs> = backfill_runs.clone();
    by_start.sort_by_key(|r| r.first);
    let mut gaps: Vec<f64> = Vec::new();
    for (i, r) in by_start
        .iter()
        .enumerate()
        .skip(args.max_concurrent as usize)
    {
        let (Some(start), freed) = (
            r.first,
            by_start[..i]
                .iter()
                .filter_map(|p| p.last)
                .filter(|&t| Some(t) <= r.first)
                .max(),
        ) else {
            continue;
        };
        if let Some(freed) = freed {
            gaps.push(start.saturating_duration_since(freed).as_secs_f64());
        }
    }
    gaps.sort_by(f64::total_cmp);
    println!(
        "    slot refilled (a run's last Job complete -> the next run's first Job, {} refills): p50 {:.3}s  p95 {:.3}s  max {:.3}s",
        gaps.len(),
        quantile(&gaps, 0.5),
        quantile(&gaps, 0.95),
        gaps.last().copied().unwrap_or(f64::NAN)
    );
    let total = in_flight.runs.len().max(1) as f64;
    println!(
        "    API writes per run (the operator's, all resources): {:.1}",
        writes / total
    );
}
