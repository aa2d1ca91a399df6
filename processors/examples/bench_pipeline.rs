//! Benchmark: phases 1-4 (scrape, raw load, analytics, precompute and the feature store) of N
//! consecutive game dates (Production mode, the next day) from an in-process `tipoff-season`
//! server into the local lake, the BigQuery emulator, or both. Prints wall time, rows per
//! second, requests per second, retries, failed gate checks and per-date p50/p99 for each
//! stage, and with both backends whether they hold the same rows.
//!
//! ```sh
//! # the whole season into the lake
//! cargo run --release -p tipoff-processors --example bench_pipeline -- --dates 400
//! # and a subset into the BigQuery emulator (local-bigquery), compared row by row
//! scripts/emulators.sh start && source .tipoff/emulators.env
//! cargo run --release -p tipoff-processors --example bench_pipeline -- \
//!     --dates 400 --warehouse both --emulator-dates 8
//! ```
//!
//! Options:
//! * `--dates N` (alias `--days`): game dates from `--from` (default 10; 400 = the whole
//!   season, 162 dates).
//! * `--from YYYY-MM-DD`: the first date (default the season's first, 21 October 2025, so the
//!   history every later date reads is complete).
//! * `--phases 2|4`: stop after phase 2 (the raw load) or run through phase 4 (default).
//! * `--warehouse lake|bigquery|both` (default `lake`).
//! * `--emulator-dates M`: load only the first M of the N dates into BigQuery (default N), for
//!   when the emulator is too slow for a full season. The output says how many dates each
//!   backend got.
//! * `--project P`: BigQuery project (default `bench`, so the tests' project `local` in the
//!   same emulator is left alone).
//! * `--error-rate R`: fraction of upstream requests answered with a 5xx (retried).
//! * `--keep DIR`: write the lake and the object store under DIR (created; kept after the run)
//!   instead of a temporary directory, e.g. for `model_compare`.
//!
//! The BigQuery backend needs `TIPOFF_BIGQUERY_URL` (the emulator; `scripts/emulators.sh`
//! writes it to `.tipoff/emulators.env`). Without it the benchmark refuses to run rather than
//! talk to real BigQuery.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::registry;
use tipoff_processors::runner::{self, Config};
use tipoff_processors::upstream::RetryPolicy;
use tipoff_season::Season;
use tipoff_season::server::{AppState, EndpointFaults, FaultConfig, router};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// What one stage (scrape, or a raw load into one backend) did over all its dates.
#[derive(Default)]
struct Stage {
    per_date: Vec<Duration>,
    rows: i64,
    rows_by_table: BTreeMap<String, i64>,
    failed_checks: BTreeMap<String, usize>,
    per_processor: BTreeMap<String, Duration>,
    requests: i64,
    retries: i64,
    bytes: i64,
    failures: Vec<String>,
}

impl Stage {
    fn total(&self) -> Duration {
        self.per_date.iter().sum()
    }

    /// Nearest-rank percentile of the per-date times, in seconds.
    fn percentile(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self.per_date.iter().map(Duration::as_secs_f64).collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1]
    }

    /// Runs `names` for `date` with `config`, adding to the stage; returns the date's rows per
    /// table. Like the operator's Jobs, processors run side by side once the processors of
    /// `names` they depend on (the catalog's `dependsOn` in Production) have finished.
    async fn run(&mut self, names: &[&str], date: Date, config: &Config) -> BTreeMap<String, i64> {
        let t = Instant::now();
        let mut date_rows = BTreeMap::new();
        let deps = same_phase_deps();
        let mut done: Vec<&str> = Vec::new();
        let mut left: Vec<&str> = names.to_vec();
        while !left.is_empty() {
            let (ready, rest): (Vec<&str>, Vec<&str>) = left.iter().partition(|p| {
                deps.get(**p)
                    .into_iter()
                    .flatten()
                    .all(|d| !names.contains(&d.as_str()) || done.contains(&d.as_str()))
            });
            assert!(!ready.is_empty(), "a dependency cycle among {left:?}");
            let mut set = tokio::task::JoinSet::new();
            for p in &ready {
                let args = RunArgs {
                    processor: (*p).into(),
                    date,
                    mode: Mode::Production,
                };
                let config = config.clone();
                set.spawn(async move {
                    let started = Instant::now();
                    let out = runner::run(args, config).await;
                    (started.elapsed(), out)
                });
            }
            while let Some(joined) = set.join_next().await {
                let (elapsed, out) = joined.unwrap();
                self.record(date, elapsed, &out, &mut date_rows);
            }
            done.extend(ready);
            left = rest;
        }
        self.per_date.push(t.elapsed());
        date_rows
    }

    fn record(
        &mut self,
        date: Date,
        elapsed: Duration,
        out: &runner::Outcome,
        date_rows: &mut BTreeMap<String, i64>,
    ) {
        let p = out.result.processor.as_str();
        *self.per_processor.entry(p.to_owned()).or_default() += elapsed;
        if let Some(f) = &out.failure {
            eprintln!("{p} {date}: {f}");
            self.failures.push(format!("{p} {date}: {f}"));
        }
        for (table, n) in &out.result.rows {
            self.rows += n;
            *self.rows_by_table.entry(table.clone()).or_default() += n;
            *date_rows.entry(table.clone()).or_default() += n;
        }
        for c in &out.result.checks {
            if !c.passed {
                *self
                    .failed_checks
                    .entry(format!("{p}/{}", c.name))
                    .or_default() += 1;
            }
            match c.name.as_str() {
                "upstream-requests" => self.requests += c.observed.unwrap_or(0),
                "upstream-retries" => self.retries += c.observed.unwrap_or(0),
                "bytes-written" => self.bytes += c.observed.unwrap_or(0),
                _ => {}
            }
        }
    }

    fn print_times(&self) {
        println!(
            "  wall {:.2} s over {} dates; per date p50 {:.3} s, p99 {:.3} s, max {:.3} s",
            self.total().as_secs_f64(),
            self.per_date.len(),
            self.percentile(50.0),
            self.percentile(99.0),
            self.percentile(100.0),
        );
        // Does a backend slow down as its tables grow? Compare the first and last tenth.
        let n = self.per_date.len() / 10;
        if n >= 2 {
            let mean = |d: &[Duration]| d.iter().sum::<Duration>().as_secs_f64() / d.len() as f64;
            println!(
                "  mean per date: first {n} dates {:.3} s, last {n} dates {:.3} s",
                mean(&self.per_date[..n]),
                mean(&self.per_date[self.per_date.len() - n..])
            );
        }
    }

    fn print_load(&self, label: &str) {
        println!("{label}");
        self.print_times();
        println!(
            "  rows {} ({:.0} rows/s), failed runs {}",
            self.rows,
            self.rows as f64 / self.total().as_secs_f64(),
            self.failures.len()
        );
        for (t, n) in &self.rows_by_table {
            println!("    {t}: {n}");
        }
        let mut slow: Vec<(&String, &Duration)> = self.per_processor.iter().collect();
        slow.sort_by(|a, b| b.1.cmp(a.1));
        let total: f64 = self.per_processor.values().map(Duration::as_secs_f64).sum();
        let shares: Vec<String> = slow
            .iter()
            .map(|(p, d)| format!("{p} {:.0}%", 100.0 * d.as_secs_f64() / total))
            .collect();
        println!(
            "  processor time (summed over the processors that ran side by side): {total:.2} s: {}",
            shares.join(", ")
        );
        self.print_checks();
    }

    fn print_checks(&self) {
        if self.failed_checks.is_empty() {
            println!("  every check passed");
        }
        for (c, n) in &self.failed_checks {
            println!("  failed check {c}: {n} dates");
        }
    }
}

/// Each processor's dependencies in Production, from `config/pipeline.yaml`.
fn same_phase_deps() -> &'static BTreeMap<String, Vec<String>> {
    static DEPS: std::sync::OnceLock<BTreeMap<String, Vec<String>>> = std::sync::OnceLock::new();
    DEPS.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml");
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut out = BTreeMap::new();
        for phase in doc["phases"].as_sequence().unwrap() {
            for p in phase["processors"].as_sequence().unwrap() {
                let deps = p["dependsOn"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| match d.as_str() {
                        Some(name) => Some(name.to_owned()),
                        None => {
                            let modes = d["modes"].as_sequence();
                            let in_production = modes
                                .is_none_or(|m| m.iter().any(|x| x.as_str() == Some("Production")));
                            in_production.then(|| d["processor"].as_str().unwrap().to_owned())
                        }
                    })
                    .collect();
                out.insert(p["name"].as_str().unwrap().to_owned(), deps);
            }
        }
        out
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let days: usize = arg("--dates")
        .or_else(|| arg("--days"))
        .map_or(10, |d| d.parse().unwrap());
    let error_rate: f64 = arg("--error-rate").map_or(0.0, |d| d.parse().unwrap());
    let backend = arg("--warehouse").unwrap_or_else(|| "lake".into());
    let (lake, bigquery) = match backend.as_str() {
        "lake" => (true, false),
        "bigquery" => (false, true),
        "both" => (true, true),
        other => panic!("--warehouse {other:?}: expected lake, bigquery or both"),
    };
    let project = arg("--project").unwrap_or_else(|| "bench".into());
    if bigquery {
        match std::env::var("TIPOFF_BIGQUERY_URL") {
            Ok(u) if !u.is_empty() => println!("BigQuery emulator: {u} (project {project})"),
            _ => panic!(
                "--warehouse {backend} needs the BigQuery emulator: \
                 `scripts/emulators.sh start && source .tipoff/emulators.env` \
                 (TIPOFF_BIGQUERY_URL is unset; the benchmark never uses real BigQuery)"
            ),
        }
    }

    let season = Arc::new(Season::generate(2025));
    let last = *season.by_date.keys().last().unwrap();
    let now = last
        .tomorrow()
        .unwrap()
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let mut faults = FaultConfig::new();
    if error_rate > 0.0 {
        faults.insert(
            "*".into(),
            EndpointFaults {
                error_rate,
                ..EndpointFaults::default()
            },
        );
    }
    let state = AppState::new(Arc::clone(&season), now, "bench-key", faults);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let temp = tempfile::tempdir().unwrap();
    let kept = arg("--keep").map(std::path::PathBuf::from);
    if let Some(k) = &kept {
        std::fs::create_dir_all(k).unwrap();
    }
    let dir_path = kept.unwrap_or_else(|| temp.path().to_path_buf());
    let key_file = dir_path.join("key");
    std::fs::write(&key_file, "bench-key").unwrap();
    let lake_config = Config {
        warehouse_url: Some(format!("file://{}", dir_path.join("lake").display())),
        storage_url: Some(format!("file://{}", dir_path.join("objects").display())),
        upstream_url: Some(base),
        api_key_file: Some(key_file),
        retry: RetryPolicy {
            base_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        disabled_checks: Vec::new(),
        game: None,
        ..Config::default()
    };
    let mut bq_config = lake_config.clone();
    bq_config.warehouse_url = Some(format!("bigquery://{project}"));

    let from: Date = arg("--from").map_or_else(
        || *season.by_date.keys().next().unwrap(),
        |d| d.parse().unwrap(),
    );
    let through: u8 = arg("--phases").map_or(4, |p| p.parse().unwrap());
    assert!(through == 2 || through == 4, "--phases 2 or 4");
    let dates: Vec<_> = season
        .by_date
        .keys()
        .filter(|d| **d >= from)
        .take(days)
        .copied()
        .collect();
    let emulator_dates: usize = arg("--emulator-dates")
        .map_or(dates.len(), |d| d.parse().unwrap())
        .min(dates.len());

    // The lake: two lanes, as a cluster would run the dates. Lane A loads each date (phases 1
    // and 2 and the post-game summaries of phase 3); lane B, one date behind it, builds the
    // date's as-of tables (the contexts of phase 3 and phase 4), which read only what lane A
    // finished for earlier dates and the date's own phase 2.
    let post_game: Vec<&'static str> = tipoff_processors::analytics::POST_GAME_PROCESSORS.to_vec();
    let as_of_3: Vec<&'static str> = registry::names_in_phase(3)
        .into_iter()
        .filter(|p| !post_game.contains(p))
        .collect();
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Date>();
    let lane_a = {
        let (dates, config, post_game) = (dates.clone(), lake_config.clone(), post_game.clone());
        tokio::spawn(async move {
            let (mut scrape, mut raw, mut post) =
                (Stage::default(), Stage::default(), Stage::default());
            for (i, date) in dates.iter().enumerate() {
                // The scrapers write object storage only; the payloads serve both backends.
                scrape
                    .run(&registry::names_in_phase(1), *date, &config)
                    .await;
                if lake && through >= 2 {
                    raw.run(&registry::names_in_phase(2), *date, &config).await;
                }
                if lake && through >= 4 {
                    post.run(&post_game, *date, &config).await;
                }
                let _ = tx.send(*date);
                if (i + 1).is_multiple_of(20) {
                    eprintln!(
                        "{} dates loaded ({:.0} s)",
                        i + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            (scrape, raw, post)
        })
    };
    let (mut contexts, mut precompute) = (Stage::default(), Stage::default());
    while let Some(date) = rx.recv().await {
        if lake && through >= 4 {
            contexts.run(&as_of_3, date, &lake_config).await;
            precompute
                .run(&registry::names_in_phase(4), date, &lake_config)
                .await;
        }
    }
    let (scrape, raw, post) = lane_a.await.unwrap();
    let lake_wall = started.elapsed();
    let lake_stages: Vec<(String, Stage)> = [
        ("raw load (phase 2, 6 processors)", raw),
        ("post-game summaries (phase 3, 3 processors)", post),
        ("contexts (phase 3, 2 processors)", contexts),
        (
            "precompute and the feature store (phase 4, 5 processors)",
            precompute,
        ),
    ]
    .into_iter()
    .filter(|(_, s)| !s.per_date.is_empty())
    .map(|(l, s)| (l.to_owned(), s))
    .collect();

    // The emulator subset: every phase of each date in turn.
    let phases: Vec<u8> = (2..=through).collect();
    let mut bq_stages: Vec<Stage> = phases.iter().map(|_| Stage::default()).collect();
    if bigquery {
        for (i, date) in dates.iter().take(emulator_dates).enumerate() {
            for (k, phase) in phases.iter().enumerate() {
                bq_stages[k]
                    .run(&registry::names_in_phase(*phase), *date, &bq_config)
                    .await;
            }
            eprintln!("emulator: {} of {emulator_dates} dates", i + 1);
        }
    }
    let wall = started.elapsed().as_secs_f64();

    println!(
        "dates: {} ({} .. {}), Production mode (the next day), seed 2025, error rate {error_rate}",
        dates.len(),
        dates[0],
        dates[dates.len() - 1]
    );
    println!("wall time: {wall:.2} s (all stages)");
    println!("scrape (6 scrapers, local object directory)");
    scrape.print_times();
    println!(
        "  upstream {} requests ({:.0}/s), {} retries, {:.1} MB stored, failed runs {}",
        scrape.requests,
        scrape.requests as f64 / scrape.total().as_secs_f64(),
        scrape.retries,
        scrape.bytes as f64 / 1e6,
        scrape.failures.len()
    );
    let label = |p: u8| match p {
        2 => "raw load (6 raw processors)",
        3 => "analytics (phase 3, 5 processors)",
        _ => "precompute and the feature store (phase 4, 5 processors)",
    };
    if lake {
        for (l, stage) in &lake_stages {
            stage.print_load(&format!("{l} into the local lake"));
        }
        let rows: i64 = lake_stages.iter().map(|(_, s)| s.rows).sum();
        println!(
            "phases 1-{through} into the local lake: {:.2} s wall for {} dates, {rows} rows, {:.0} rows/s (target: under 60 s for the season)",
            lake_wall.as_secs_f64(),
            dates.len(),
            rows as f64 / lake_wall.as_secs_f64()
        );
    }
    if bigquery {
        let subset = if emulator_dates < dates.len() {
            format!(
                " -- SUBSET: the first {emulator_dates} of {} dates ({} .. {})",
                dates.len(),
                dates[0],
                dates[emulator_dates.max(1) - 1]
            )
        } else {
            String::new()
        };
        for (k, p) in phases.iter().enumerate() {
            bq_stages[k].print_load(&format!(
                "{} into the BigQuery emulator (project {project}){subset}",
                label(*p)
            ));
        }
        if lake && emulator_dates > 0 {
            // Same dates on both backends: compare time, then every row of every table.
            let lake_same: Duration = lake_stages
                .iter()
                .map(|(_, s)| s.per_date[..emulator_dates].iter().sum::<Duration>())
                .sum();
            let bq_total: Duration = bq_stages.iter().map(Stage::total).sum();
            println!(
                "  emulator vs lake on the same {emulator_dates} dates: {:.2} s vs {:.2} s ({:.0}x)",
                bq_total.as_secs_f64(),
                lake_same.as_secs_f64(),
                bq_total.as_secs_f64() / lake_same.as_secs_f64(),
            );
            let lake_wh = tipoff_warehouse::open(lake_config.warehouse_url.as_deref().unwrap())
                .await
                .unwrap();
            let bq_wh = tipoff_warehouse::open(bq_config.warehouse_url.as_deref().unwrap())
                .await
                .unwrap();
            let (first, last) = (dates[0], dates[emulator_dates - 1]);
            let tables: std::collections::BTreeSet<String> = lake_stages
                .iter()
                .flat_map(|(_, s)| s.rows_by_table.keys().cloned())
                .collect();
            let mut differ = Vec::new();
            let mut compared = 0usize;
            for t in &tables {
                let (ds, name) = t.split_once('.').unwrap();
                let tr = tipoff_warehouse::TableRef::new(ds, name);
                let a = rows_of(lake_wh.as_ref(), &tr, first, last).await;
                let b = rows_of(bq_wh.as_ref(), &tr, first, last).await;
                compared += a.len();
                if a != b {
                    differ.push(format!("{t} (lake {} rows, BigQuery {})", a.len(), b.len()));
                }
            }
            if differ.is_empty() {
                println!(
                    "  both backends hold the same rows: {} tables, {compared} rows compared (processed_at aside)",
                    tables.len()
                );
            } else {
                eprintln!("the backends differ: {}", differ.join(", "));
                std::process::exit(1);
            }
        }
    }
    let failures = scrape.failures.len()
        + lake_stages
            .iter()
            .map(|(_, s)| s.failures.len())
            .sum::<usize>()
        + bq_stages.iter().map(|s| s.failures.len()).sum::<usize>();
    if failures > 0 {
        eprintln!("{failures} processor runs failed (listed above)");
        std::process::exit(1);
    }
}

/// A table's rows in `from..=to` as sorted JSON, without `processed_at` (when the row was
/// written, which differs between backends by design).
async fn rows_of(
    wh: &dyn tipoff_warehouse::Warehouse,
    t: &tipoff_warehouse::TableRef,
    from: Date,
    to: Date,
) -> Vec<String> {
    let mut out: Vec<String> = wh
        .read_range(t, from, to, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|mut r| {
            r.remove("processed_at");
            serde_json::to_string(&r).unwrap()
        })
        .collect();
    out.sort();
    out
}
