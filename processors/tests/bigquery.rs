//! The raw processors write the BigQuery emulator exactly as they write the local lake: the
//! same rows, and a rerun replaces rather than appends. Needs the emulators
//! (`scripts/emulators.sh start && source .tipoff/emulators.env`); fails, never skips, without.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use support::*;
use tipoff_crds::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_processors_write_bigquery_like_the_lake_and_reruns_are_identical() {
    // Fails with instructions when the emulators are not running.
    bigquery_url();
    let project = std::env::var("TIPOFF_BIGQUERY_PROJECT").unwrap_or_else(|_| "local".into());
    let date = busy_date();
    let w = World::start(same_day(date)).await;
    let lake = tipoff_warehouse::open(&w.warehouse_url).await.unwrap();
    let mut bq_config = w.config();
    bq_config.warehouse_url = Some(format!("bigquery://{project}"));
    let bq = tipoff_warehouse::open(&format!("bigquery://{project}"))
        .await
        .unwrap();

    // Payloads for every source: SameDay (props, lines, injuries), then next day.
    for (clock, mode) in [
        (same_day(date), Mode::SameDay),
        (next_day(date), Mode::Production),
    ] {
        w.set_clock(clock).await;
        for p in PHASE1 {
            w.ok(p, date, mode).await;
        }
    }
    for p in PHASE2 {
        w.ok(p, date, Mode::Production).await;
    }
    let mut first = Vec::new();
    for _ in 0..2 {
        for p in PHASE2 {
            let out = w
                .run_with(p, date, Mode::Production, bq_config.clone())
                .await;
            assert!(out.failure.is_none(), "{p} on BigQuery: {:?}", out.failure);
        }
        let mut tables = Vec::new();
        for t in raw_tables() {
            let bq_rows = table_rows(bq.as_ref(), &t, date).await;
            let lake_rows = table_rows(lake.as_ref(), &t, date).await;
            assert!(!bq_rows.is_empty(), "{t} is empty on BigQuery");
            assert_eq!(bq_rows.len(), lake_rows.len(), "{t}: row counts differ");
            assert!(bq_rows == lake_rows, "{t}: BigQuery and the lake differ");
            tables.push(bq_rows);
        }
        if first.is_empty() {
            first = tables;
        } else {
            assert!(first == tables, "a rerun changed BigQuery contents");
        }
    }
}
