//! Phase 5 on the BigQuery emulator: the inputs are copied from a lake where phases 1-4 ran;
//! `train-points-model` reading BigQuery stores the very version (the same bytes) it stores
//! reading the lake, and `player-prop-predictions`, as four shards running at once against
//! BigQuery, writes exactly the rows one unsharded run wrote in the lake, again on a re-run.
//! Needs the emulators (`scripts/emulators.sh start && source .tipoff/emulators.env`); fails,
//! never skips, without.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use support::*;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::runner::{self, Config, Shard};
use tipoff_warehouse::{Row, TableRef, TableSchema, Warehouse};

const INPUTS: [&str; 4] = [
    "nba_predictions.ml_feature_store_v2",
    "nba_analytics.player_game_summary",
    "nba_analytics.upcoming_player_game_context",
    "nba_raw.odds_api_player_points_props",
];

fn table(name: &str) -> TableRef {
    let (d, t) = name.split_once('.').unwrap();
    TableRef::new(d, t)
}

fn schema_of(t: &TableRef) -> TableSchema {
    TableSchema::load(
        &tipoff_warehouse::schema::repo_schema_dir()
            .join(&t.dataset)
            .join(format!("{}.json", t.table)),
    )
    .unwrap()
}

async fn predictions(wh: &dyn Warehouse, d: jiff::civil::Date) -> Vec<String> {
    let t = table("nba_predictions.player_prop_predictions");
    let mut out: Vec<String> = wh
        .read_range(&t, d, d, None)
        .await
        .unwrap()
        .into_iter()
        .map(|mut r: Row| {
            r.remove("created_at");
            format!("{r:?}")
        })
        .collect();
    out.sort();
    out
}

fn model_versions(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("models/points"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p.join("model.bin")).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_5_on_bigquery_matches_the_lake_and_shards_write_side_by_side() {
    bigquery_url();
    let dates = game_dates_from(jiff::civil::date(2025, 10, 21), 5);
    let d = dates[4];
    let w = World::start(next_day(d)).await;
    w.history(&dates[..4]).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;
    let lake_config = Config {
        model_min_rows: Some(100),
        ..w.config()
    };
    for p in ["train-points-model", "player-prop-predictions"] {
        let out = w
            .run_with(p, d, Mode::Production, lake_config.clone())
            .await;
        assert!(out.failure.is_none(), "{p} on the lake: {:?}", out.failure);
    }
    let want = predictions(lake.as_ref(), d).await;
    assert!(!want.is_empty());

    let project = format!(
        "cpredict{}",
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let bq = tipoff_warehouse::open(&format!("bigquery://{project}"))
        .await
        .unwrap();
    for name in INPUTS {
        let t = table(name);
        bq.ensure_table(&schema_of(&t)).await.unwrap();
        let counts = lake.partition_row_counts(&t, dates[0], d).await.unwrap();
        for day in counts.keys() {
            let rows = lake.read_range(&t, *day, *day, None).await.unwrap();
            bq.replace_partition(&t, *day, &rows).await.unwrap();
        }
    }
    // Object storage of its own (the schedule payloads copied), so BigQuery's run trains anew.
    let objects = tempfile::tempdir().unwrap();
    for (key, bytes) in w.objects().await {
        if key.starts_with("raw/schedule/") {
            let path = objects.path().join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
    let bq_config = Config {
        warehouse_url: Some(format!("bigquery://{project}")),
        storage_url: Some(format!("file://{}", objects.path().display())),
        ..lake_config.clone()
    };
    let out = w
        .run_with("train-points-model", d, Mode::Production, bq_config.clone())
        .await;
    assert!(
        out.failure.is_none(),
        "train on BigQuery: {:?}",
        out.failure
    );
    assert_eq!(
        model_versions(objects.path()),
        model_versions(&w.storage_dir()),
        "BigQuery's training rows give the very same model"
    );

    for round in 0..2 {
        // The four Pods of the Indexed Job start together.
        let shards: Vec<_> = (0..4)
            .map(|index| {
                let config = Config {
                    shard: Shard { index, count: 4 },
                    ..bq_config.clone()
                };
                let args = RunArgs {
                    processor: "player-prop-predictions".into(),
                    date: d,
                    mode: Mode::Production,
                };
                tokio::spawn(runner::run(args, config))
            })
            .collect();
        for shard in shards {
            let out = shard.await.unwrap();
            assert!(out.failure.is_none(), "round {round}: {:?}", out.failure);
            assert!(
                out.result.checks.iter().all(|c| c.passed),
                "{:#?}",
                out.result.checks
            );
        }
        assert_eq!(predictions(bq.as_ref(), d).await, want, "round {round}");
    }
}
