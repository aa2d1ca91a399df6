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
    /// table.
    async fn run(&mut self, names: &[&str], date: Date, config: &Config) -> BTreeMap<String, i64> {
        let t = Instant::now();
        let mut date_rows = BTreeMap::new();
        for p in names {
            let args = RunArgs {
                processor: (*p).into(),
                date,
                mode: Mode::Production,
            };
            let out = runner::run(args, config.clone()).await;
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
        self.per_date.push(t.elapsed());
        date_rows
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
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "bench-key").unwrap();
    let lake_config = Config {
        warehouse_url: Some(format!("file://{}", dir.path().join("lake").display())),
        storage_url: Some(format!("file://{}", dir.path().join("objects").display())),
        upstream_url: Some(base),
        api_key_file: Some(key_file),
        retry: RetryPolicy {
            base_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        disabled_checks: Vec::new(),
        game: None,
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

    let mut scrape = Stage::default();
    // Per backend, per phase 2..=through.
    let phases: Vec<u8> = (2..=through).collect();
    let mut lake_stages: Vec<Stage> = phases.iter().map(|_| Stage::default()).collect();
    let mut bq_stages: Vec<Stage> = phases.iter().map(|_| Stage::default()).collect();
    let started = Instant::now();
    for (i, date) in dates.iter().enumerate() {
        // The scrapers write object storage only; the payloads are shared by both loads.
        scrape
            .run(&registry::names_in_phase(1), *date, &lake_config)
            .await;
        for (k, phase) in phases.iter().enumerate() {
            let names = registry::names_in_phase(*phase);
            if lake {
                lake_stages[k].run(&names, *date, &lake_config).await;
            }
            if bigquery && i < emulator_dates {
                bq_stages[k].run(&names, *date, &bq_config).await;
            }
        }
        if (i + 1).is_multiple_of(20) {
            eprintln!(
                "{} dates done ({:.0} s)",
                i + 1,
                started.elapsed().as_secs_f64()
            );
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
        for (k, p) in phases.iter().enumerate() {
            lake_stages[k].print_load(&format!("{} into the local lake", label(*p)));
        }
        let total: Duration =
            scrape.total() + lake_stages.iter().map(Stage::total).sum::<Duration>();
        let rows: i64 = lake_stages.iter().map(|s| s.rows).sum();
        println!(
            "phases 1-{through} into the local lake: {:.2} s for {} dates, {rows} rows, {:.0} rows/s (target: under 60 s for the season)",
            total.as_secs_f64(),
            dates.len(),
            rows as f64 / total.as_secs_f64()
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
                .map(|s| s.per_date[..emulator_dates].iter().sum::<Duration>())
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
                .flat_map(|s| s.rows_by_table.keys().cloned())
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
            .chain(&bq_stages)
            .map(|s| s.failures.len())
            .sum::<usize>();
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
