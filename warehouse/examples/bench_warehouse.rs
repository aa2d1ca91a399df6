//! Warehouse benchmark: replace a 500-row partition and read a 30-day range, on both backends,
//! printing p50/p99 latencies. Not a test; run it with
//!
//! ```text
//! scripts/emulators.sh start && source .tipoff/emulators.env
//! cargo run --release -p tipoff-warehouse --example bench_warehouse [-- --iterations N] [--lake-only]
//! ```
//!
//! It uses the real `nba_analytics.player_game_summary` schema (21 columns) under a
//! run-unique dataset name.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::{Span, Timestamp};
use tipoff_warehouse::schema::{TableSchema, repo_schema_dir};
use tipoff_warehouse::{BigQueryWarehouse, LakeWarehouse, Row, Value, Warehouse};

const ROWS: usize = 500;
const DAYS: i64 = 30;

fn rows(schema: &TableSchema, date: Date, salt: u64) -> Vec<Row> {
    (0..ROWS)
        .map(|i| {
            let mut r = Row::new();
            for f in &schema.fields {
                let v = match f.field_type {
                    tipoff_warehouse::FieldType::String => {
                        Value::String(format!("{}-{i}-{salt}", f.name))
                    }
                    tipoff_warehouse::FieldType::Int64 => {
                        Value::Int((i as i64 * 7 + salt as i64) % 61)
                    }
                    tipoff_warehouse::FieldType::Float64 => {
                        Value::Float(i as f64 / 3.0 + salt as f64)
                    }
                    tipoff_warehouse::FieldType::Bool => Value::Bool(i % 2 == 0),
                    tipoff_warehouse::FieldType::Date => Value::Date(date),
                    tipoff_warehouse::FieldType::Timestamp => {
                        Value::timestamp(Timestamp::from_second(1_764_000_000 + i as i64).unwrap())
                    }
                };
                r.insert(f.name.clone(), v);
            }
            r
        })
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn report(backend: &str, op: &str, mut samples: Vec<Duration>) {
    let p50 = percentile(&mut samples, 0.50);
    let p99 = percentile(&mut samples, 0.99);
    println!(
        "{backend:<9} {op:<34} n={:<4} p50={:>9.2} ms  p99={:>9.2} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

async fn bench(wh: &dyn Warehouse, iterations: usize) {
    let mut schema =
        TableSchema::load(&repo_schema_dir().join("nba_analytics/player_game_summary.json"))
            .unwrap();
    schema.dataset = format!(
        "bench{}",
        Timestamp::now().as_nanosecond() % 1_000_000_000_000
    );
    let t = schema.table_ref();
    wh.ensure_table(&schema).await.unwrap();
    let first = Date::constant(2026, 1, 1);
    let days: Vec<Date> = (0..DAYS)
        .map(|d| first.checked_add(Span::new().days(d)).unwrap())
        .collect();

    let mut replace = Vec::new();
    for i in 0..iterations {
        let d = days[i % days.len()];
        let batch = rows(&schema, d, i as u64);
        let start = Instant::now();
        wh.replace_partition(&t, d, &batch).await.unwrap();
        replace.push(start.elapsed());
    }
    report(wh.backend(), "replace 500-row partition", replace);
    // Fill every day of the range, then read it back.
    for d in &days {
        wh.replace_partition(&t, *d, &rows(&schema, *d, 0))
            .await
            .unwrap();
    }
    let mut read = Vec::new();
    let mut n = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        n = wh
            .read_range(&t, days[0], days[days.len() - 1], None)
            .await
            .unwrap()
            .len();
        read.push(start.elapsed());
    }
    report(wh.backend(), &format!("read 30-day range ({n} rows)"), read);
    assert_eq!(n, ROWS * DAYS as usize);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iterations = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .map_or(20, |n| n.parse().expect("--iterations takes a number"));
    let lake_only = args.iter().any(|a| a == "--lake-only");
    let dir = tempfile::tempdir().unwrap();
    bench(&LakeWarehouse::new(dir.path()), iterations).await;
    if lake_only {
        return;
    }
    let Ok(url) = std::env::var("TIPOFF_BIGQUERY_URL") else {
        eprintln!(
            "TIPOFF_BIGQUERY_URL is not set: start the emulator (scripts/emulators.sh start && source .tipoff/emulators.env) or pass --lake-only"
        );
        std::process::exit(2);
    };
    let bq = BigQueryWarehouse::connect_emulator(&url, "local")
        .await
        .unwrap();
    bench(&bq, iterations).await;
}
