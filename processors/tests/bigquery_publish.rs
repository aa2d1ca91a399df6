//! Phase 6's contract tests on the emulators: `grade-predictions` against BigQuery must write
//! exactly the rows the lake's run wrote (twice: a rerun replaces, never appends), and
//! `export-predictions` reading BigQuery and writing to GCS (fake-gcs-server) must publish the
//! same bytes the lake's run wrote to the local directory. The inputs (phase 5's predictions as
//! fixtures, D's player_game_summary) are copied from the lake. Needs the emulators
//! (`scripts/emulators.sh start && source .tipoff/emulators.env`); fails, never skips, without.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use serde_json::json;
use support::phase6::*;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::storage::{ObjectKey, ObjectStorage};
use tipoff_warehouse::{TableRef, TableSchema};

fn schema_of(t: &TableRef) -> TableSchema {
    TableSchema::load(
        &tipoff_warehouse::schema::repo_schema_dir()
            .join(&t.dataset)
            .join(format!("{}.json", t.table)),
    )
    .unwrap()
}

fn gcs_url() -> String {
    match std::env::var("TIPOFF_GCS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "TIPOFF_GCS_URL is not set: start the emulators with \
             `scripts/emulators.sh start && source .tipoff/emulators.env` (this test never skips)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grade_predictions_on_bigquery_and_exports_on_gcs_match_the_lake() {
    bigquery_url();
    let base = gcs_url();
    let d = date_with_dnp();
    let w = World::start(next_day(d)).await;
    results_of(&w, d).await;
    let lake = w.lake().await;
    let (rows, _) = fixture(lake.as_ref(), d).await;
    write_predictions(lake.as_ref(), d, &rows).await;
    w.ok("grade-predictions", d, Mode::Production).await;
    w.ok("export-predictions", d, Mode::Production).await;

    // BigQuery gets the inputs; GCS gets the stored schedule (the calendar).
    let project = format!(
        "cgrade{}",
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let bq = tipoff_warehouse::open(&format!("bigquery://{project}"))
        .await
        .unwrap();
    for t in [
        predictions(),
        TableRef::new("nba_analytics", "player_game_summary"),
    ] {
        bq.ensure_table(&schema_of(&t)).await.unwrap();
        let r = lake.read_range(&t, d, d, None).await.unwrap();
        bq.replace_partition(&t, d, &r).await.unwrap();
    }
    let bucket = format!("tipoff-pub-{}", jiff::Timestamp::now().as_nanosecond());
    let resp = reqwest::Client::new()
        .post(format!("{base}/storage/v1/b?project=local"))
        .json(&json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "creating bucket: {}",
        resp.status()
    );
    let gcs = ObjectStorage::gcs_emulator(&base, &bucket).unwrap();
    let schedule = ObjectKey::raw_payload("schedule", d, "scheduleLeagueV2.json").unwrap();
    let payload = w.storage().get(&schedule).await.unwrap().unwrap();
    gcs.put(&schedule, payload).await.unwrap();

    let mut config = w.config();
    config.warehouse_url = Some(format!("bigquery://{project}"));
    config.storage_url = Some(format!("gs://{bucket}"));
    for round in 0..2 {
        for p in ["grade-predictions", "export-predictions"] {
            let out = w.run_with(p, d, Mode::Production, config.clone()).await;
            assert!(
                out.failure.is_none(),
                "{p} on BigQuery (round {round}): {:?}",
                out.failure
            );
            assert!(
                out.result.checks.iter().all(|c| c.passed),
                "{p}: {:#?}",
                out.result.checks
            );
        }
        for t in [accuracy(), metrics()] {
            let want = table_rows(lake.as_ref(), &t, d).await;
            assert!(!want.is_empty());
            let got = table_rows(bq.as_ref(), &t, d).await;
            assert_eq!(
                got, want,
                "{t}: BigQuery and the lake differ (round {round})"
            );
        }
        for kind in ["predictions", "results"] {
            let key =
                ObjectKey::from_segments(["exports", "v1", kind, &format!("{d}.json")]).unwrap();
            let on_gcs = gcs.get(&key).await.unwrap().expect("exported to GCS");
            let local = w.storage().get(&key).await.unwrap().unwrap();
            assert_eq!(on_gcs, local, "{key}: GCS and the local export differ");
        }
    }
}
