//! The scrapers and raw processors on the GCS emulator (fake-gcs-server) as object storage:
//! payloads land at the same keys, quarantine moves objects there too, and the lake gets the
//! same rows. Needs `TIPOFF_GCS_URL` (`scripts/emulators.sh start`); fails, never skips, without.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use serde_json::json;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::TableRef;
use tipoff_warehouse::storage::{ObjectKey, ObjectStorage};

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
async fn scrape_and_load_through_the_gcs_emulator() {
    let base = gcs_url();
    let bucket = format!("tipoff-proc-{}", jiff::Timestamp::now().as_nanosecond());
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

    let date = busy_date();
    let w = World::start(next_day(date)).await;
    w.set_faults(json!({ "pbp": { "malformed_first": 1 } }))
        .await;
    let mut cfg = w.config();
    cfg.storage_url = Some(format!("gs://{bucket}"));
    for p in PHASE1.iter().chain(PHASE2.iter()) {
        let out = w.run_with(p, date, Mode::Production, cfg.clone()).await;
        assert!(out.failure.is_none(), "{p}: {:?}", out.failure);
    }
    let gcs = ObjectStorage::gcs_emulator(&base, &bucket).unwrap();
    let boxscores = ObjectKey::raw_payload("boxscores", date, "box_scores.json").unwrap();
    assert!(gcs.get(&boxscores).await.unwrap().is_some());
    let quarantined = gcs
        .list(Some(
            &ObjectKey::from_segments(["quarantine", "play-by-play"]).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 2, "{quarantined:?}"); // the payload and its reason

    let s = season();
    let players: usize = s.by_date[&date]
        .iter()
        .map(|&g| s.player_games_of(g).len())
        .sum();
    let wh = tipoff_warehouse::open(&w.warehouse_url).await.unwrap();
    let rows = table_rows(
        wh.as_ref(),
        &TableRef::new("nba_raw", "bdl_player_boxscores"),
        date,
    )
    .await;
    assert_eq!(rows.len(), players);
}
