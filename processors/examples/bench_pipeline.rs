//! Benchmark: scrape + raw load of N consecutive game dates (Production mode, the next day)
//! from an in-process `tipoff-season` server into the local lake. Prints wall time, rows per
//! second, requests per second and retries.
//!
//! ```sh
//! cargo run --release -p tipoff-processors --example bench_pipeline -- --days 10 [--error-rate 0.05]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let days: usize = arg("--days").map_or(10, |d| d.parse().unwrap());
    let error_rate: f64 = arg("--error-rate").map_or(0.0, |d| d.parse().unwrap());
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
    let config = Config {
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
    let dates: Vec<_> = season
        .by_date
        .keys()
        .filter(|d| **d >= jiff::civil::date(2025, 11, 1))
        .take(days)
        .copied()
        .collect();
    let (mut rows, mut requests, mut retries, mut bytes) = (0i64, 0i64, 0i64, 0i64);
    let (mut scrape_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    for date in &dates {
        for (phase, names) in [(1, SCRAPERS), (2, RAW_PROCESSORS)] {
            let t = Instant::now();
            for p in names {
                let args = RunArgs {
                    processor: p.into(),
                    date: *date,
                    mode: Mode::Production,
                };
                let out = runner::run(args, config.clone()).await;
                if let Some(f) = &out.failure {
                    eprintln!("{p} {date}: {f}");
                }
                rows += out.result.rows.values().sum::<i64>();
                for c in &out.result.checks {
                    match c.name.as_str() {
                        "upstream-requests" => requests += c.observed.unwrap_or(0),
                        "upstream-retries" => retries += c.observed.unwrap_or(0),
                        "bytes-written" => bytes += c.observed.unwrap_or(0),
                        _ => {}
                    }
                }
            }
            if phase == 1 {
                scrape_time += t.elapsed();
            } else {
                raw_time += t.elapsed();
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "dates: {} ({} .. {})",
        dates.len(),
        dates[0],
        dates[dates.len() - 1]
    );
    println!(
        "wall time: {wall:.2} s (scrape {:.2} s, raw load {:.2} s)",
        scrape_time.as_secs_f64(),
        raw_time.as_secs_f64()
    );
    println!(
        "upstream: {requests} requests ({:.0}/s during scraping), {retries} retries, {:.1} MB stored",
        requests as f64 / scrape_time.as_secs_f64(),
        bytes as f64 / 1e6
    );
    println!(
        "rows: {rows} ({:.0} rows/s during raw load, {:.0} rows/s overall)",
        rows as f64 / raw_time.as_secs_f64(),
        rows as f64 / wall
    );
}
