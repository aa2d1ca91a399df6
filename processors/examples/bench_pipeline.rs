//! Benchmark: scrape + raw load of N consecutive game dates (Production mode, the next day)
//! from an in-process `tipoff-season` server into the local lake, the BigQuery emulator, or
//! both. Prints wall time, rows per second, requests per second, retries and per-date p50/p99
//! for each stage.
//!
//! ```sh
//! # lake only
//! cargo run --release -p tipoff-processors --example bench_pipeline -- --dates 155
//! # lake and the BigQuery emulator (local-bigquery) in one run
//! scripts/emulators.sh start && source .tipoff/emulators.env
//! cargo run --release -p tipoff-processors --example bench_pipeline -- \
//!     --dates 400 --warehouse both --emulator-dates 60
//! ```
//!
//! Options:
//! * `--dates N` (alias `--days`): game dates from 1 November 2025 (default 10; 400 = the
//!   whole season from November, 155 dates).
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
use tipoff_processors::runner::{self, Config, RAW_PROCESSORS, SCRAPERS};
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

    let dates: Vec<_> = season
        .by_date
        .keys()
        .filter(|d| **d >= jiff::civil::date(2025, 11, 1))
        .take(days)
        .copied()
        .collect();
    let emulator_dates: usize = arg("--emulator-dates")
        .map_or(dates.len(), |d| d.parse().unwrap())
        .min(dates.len());

    let (mut scrape, mut raw_lake, mut raw_bq) =
        (Stage::default(), Stage::default(), Stage::default());
    // The lake's rows on the dates the emulator also loads, to compare.
    let mut lake_rows_subset: BTreeMap<String, i64> = BTreeMap::new();
    let started = Instant::now();
    for (i, date) in dates.iter().enumerate() {
        // The scrapers write object storage only; the payloads are shared by both loads.
        scrape.run(&SCRAPERS, *date, &lake_config).await;
        if lake {
            let r = raw_lake.run(&RAW_PROCESSORS, *date, &lake_config).await;
            if i < emulator_dates {
                for (t, n) in r {
                    *lake_rows_subset.entry(t).or_default() += n;
                }
            }
        }
        if bigquery && i < emulator_dates {
            raw_bq.run(&RAW_PROCESSORS, *date, &bq_config).await;
        }
        if bigquery && (i + 1) % 10 == 0 {
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
    if lake {
        raw_lake.print_load("raw load into the local lake (6 raw processors)");
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
        raw_bq.print_load(&format!(
            "raw load into the BigQuery emulator (6 raw processors, project {project}){subset}"
        ));
        if lake && emulator_dates > 0 {
            // Same dates on both backends: compare time and rows.
            let lake_same: Duration = raw_lake.per_date[..emulator_dates].iter().sum();
            println!(
                "  emulator vs lake on the same {emulator_dates} dates: {:.2} s vs {:.2} s ({:.0}x); rows per table {}",
                raw_bq.total().as_secs_f64(),
                lake_same.as_secs_f64(),
                raw_bq.total().as_secs_f64() / lake_same.as_secs_f64(),
                if lake_rows_subset == raw_bq.rows_by_table {
                    "equal"
                } else {
                    "DIFFER"
                }
            );
            if lake_rows_subset != raw_bq.rows_by_table {
                eprintln!("lake rows on those dates: {lake_rows_subset:?}");
                std::process::exit(1);
            }
        }
    }
    let failures = scrape.failures.len() + raw_lake.failures.len() + raw_bq.failures.len();
    if failures > 0 {
        eprintln!("{failures} processor runs failed (listed above)");
        std::process::exit(1);
    }
}
