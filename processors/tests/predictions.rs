//! Phase 5 on the local lake, against an in-process `tipoff-season` upstream: the model is
//! trained walk-forward (D's outcomes change nothing), its bytes are deterministic, it is
//! reused while recent; the predictions' shards together equal one unsharded run; a
//! pre-tip-off prediction is never replaced by a later one; a player with a line but no
//! feature row is named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::collections::BTreeMap;

use jiff::civil::Date;
use support::*;
use tipoff_crds::Mode;
use tipoff_processors::runner::{Config, Shard};
use tipoff_warehouse::{Row, TableRef, Value, Warehouse};

/// The ninth game date of the season, after eight of history.
fn dates() -> (Vec<Date>, Date) {
    let dates = game_dates_from(jiff::civil::date(2025, 10, 21), 9);
    (dates[..8].to_vec(), dates[8])
}

fn predictions() -> TableRef {
    TableRef::new("nba_predictions", "player_prop_predictions")
}

/// Enough rows to train in eight early dates (production trains from 1,500).
fn config(w: &World) -> Config {
    Config {
        model_min_rows: Some(300),
        ..w.config()
    }
}

/// The stored model versions: version -> (model.bin, report.json).
async fn models(w: &World) -> BTreeMap<String, (Vec<u8>, serde_json::Value)> {
    let objects = w.objects().await;
    let mut out = BTreeMap::new();
    for (k, bytes) in &objects {
        let Some(rest) = k.strip_prefix("models/points/") else {
            continue;
        };
        let (version, file) = rest.split_once('/').unwrap();
        if file == "model.bin" {
            let report = &objects[&format!("models/points/{version}/report.json")];
            out.insert(
                version.to_owned(),
                (bytes.clone(), serde_json::from_slice(report).unwrap()),
            );
        }
    }
    out
}

async fn rows(wh: &dyn Warehouse, table: &TableRef, date: Date) -> Vec<Row> {
    wh.read_range(table, date, date, None)
        .await
        .unwrap_or_default()
}

/// The predictions of D as sorted strings, without `created_at` (when written).
async fn prediction_rows(wh: &dyn Warehouse, date: Date) -> Vec<String> {
    let mut out: Vec<String> = rows(wh, &predictions(), date)
        .await
        .into_iter()
        .map(|mut r| {
            r.remove("created_at");
            format!("{r:?}")
        })
        .collect();
    out.sort();
    out
}

fn string(r: &Row, col: &str) -> String {
    match &r[col] {
        Value::String(s) => s.clone(),
        v => panic!("{col} is {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_is_walk_forward_deterministic_and_reused_while_recent() {
    let (history, d) = dates();
    let w = World::start(next_day(d)).await;
    w.history(&history).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;

    let out = w
        .run_with("train-points-model", d, Mode::Production, config(&w))
        .await;
    assert!(out.failure.is_none(), "{:?}", out.failure);
    assert!(
        check(&out.result, "model-ready").passed,
        "{:#?}",
        out.result
    );
    let first = models(&w).await;
    assert_eq!(first.len(), 1, "one version: {:?}", first.keys());
    let (version, (bytes, report)) = first.iter().next().unwrap();
    // Walk-forward: the training rows are every played game of the history, none of D.
    assert_eq!(report["last_date"], history.last().unwrap().to_string());
    assert!(version.starts_with(&history.last().unwrap().to_string()));
    // Examples are the feature-store rows of players who then played.
    let played: usize = {
        let summary = TableRef::new("nba_analytics", "player_game_summary");
        let store = TableRef::new("nba_predictions", "ml_feature_store_v2");
        let key = |r: &Row| (string(r, "game_id"), string(r, "player_lookup"));
        let mut n = 0;
        for h in &history {
            let active: std::collections::BTreeSet<_> = rows(lake.as_ref(), &summary, *h)
                .await
                .iter()
                .filter(|r| r["is_active"] == Value::Bool(true))
                .map(key)
                .collect();
            n += rows(lake.as_ref(), &store, *h)
                .await
                .iter()
                .filter(|r| active.contains(&key(r)))
                .count();
        }
        n
    };
    assert!(played >= 300, "{played} examples");
    assert_eq!(
        report["rows"], played,
        "every played game before D, and only those"
    );

    // D's outcomes and features, made absurd, then the store emptied and the model retrained:
    // the same bytes, so nothing of D was read and training is deterministic.
    let summary = TableRef::new("nba_analytics", "player_game_summary");
    let poisoned: Vec<Row> = rows(lake.as_ref(), &summary, d)
        .await
        .into_iter()
        .map(|mut r| {
            r.insert("points".into(), Value::Int(99));
            r
        })
        .collect();
    lake.replace_partition(&summary, d, &poisoned)
        .await
        .unwrap();
    std::fs::remove_dir_all(w.storage_dir().join("models")).unwrap();
    let again = w
        .run_with("train-points-model", d, Mode::Production, config(&w))
        .await;
    assert!(again.failure.is_none(), "{:?}", again.failure);
    let second = models(&w).await;
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    assert!(
        second[version].0 == *bytes,
        "identical inputs, identical bytes"
    );

    // The next date reuses it while it is recent enough, and retrains (through D) when not.
    let next = game_dates_from(d.tomorrow().unwrap(), 1)[0];
    w.ok("scrape-schedule", next, Mode::Production).await;
    let reuse = w
        .run_with("train-points-model", next, Mode::Production, config(&w))
        .await;
    assert!(reuse.failure.is_none(), "{:?}", reuse.failure);
    assert!(
        reuse
            .result
            .warnings
            .iter()
            .any(|m| m.contains("reusing model")),
        "{:?}",
        reuse.result.warnings
    );
    assert_eq!(models(&w).await.len(), 1);
    let strict = Config {
        model_max_age_days: Some(0),
        ..config(&w)
    };
    let retrain = w
        .run_with("train-points-model", next, Mode::Production, strict)
        .await;
    assert!(retrain.failure.is_none(), "{:?}", retrain.failure);
    let third = models(&w).await;
    assert_eq!(third.len(), 2);
    assert!(
        third.keys().any(|v| v.starts_with(&d.to_string())),
        "{:?}",
        third.keys()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_equal_one_run_and_a_pre_tipoff_prediction_is_never_replaced() {
    let (history, d) = dates();
    let w = World::start(next_day(d)).await;
    w.history(&history).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;

    // Without a model only the two baselines predict, and the check says so.
    let base = w
        .run_with("player-prop-predictions", d, Mode::Production, config(&w))
        .await;
    assert!(base.failure.is_none(), "{:?}", base.failure);
    assert!(!check(&base.result, "model-available").passed);
    let systems = |rows: &[Row]| {
        let mut s: Vec<String> = rows.iter().map(|r| string(r, "system_id")).collect();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(
        systems(&rows(lake.as_ref(), &predictions(), d).await),
        ["line_consensus_v1", "rolling_avg_v1"]
    );

    w.run_with("train-points-model", d, Mode::Production, config(&w))
        .await;
    // The day after: every prediction is a reconstruction as of tip-off.
    let one = w
        .run_with("player-prop-predictions", d, Mode::Production, config(&w))
        .await;
    assert!(one.failure.is_none(), "{:?}", one.failure);
    for c in &one.result.checks {
        assert!(c.passed, "{c:?}");
    }
    let unsharded = prediction_rows(lake.as_ref(), d).await;
    let all = rows(lake.as_ref(), &predictions(), d).await;
    assert_eq!(
        systems(&all),
        [
            "ensemble_v1",
            "line_consensus_v1",
            "points_model_v1",
            "rolling_avg_v1"
        ]
    );
    assert!(
        all.iter()
            .all(|r| string(r, "prediction_timing") == "as_of_tipoff")
    );
    assert!(all.iter().all(|r| r["is_active"] == Value::Bool(true)));

    // Four shards over an empty partition write exactly the same rows.
    lake.replace_partition(&predictions(), d, &[])
        .await
        .unwrap();
    let mut written = 0;
    for index in 0..4 {
        let shard = Config {
            shard: Shard { index, count: 4 },
            ..config(&w)
        };
        let out = w
            .run_with("player-prop-predictions", d, Mode::Production, shard)
            .await;
        assert!(out.failure.is_none(), "shard {index}: {:?}", out.failure);
        let n = out.result.rows["nba_predictions.player_prop_predictions"];
        assert!(n > 0, "shard {index} wrote nothing");
        written += n;
    }
    assert_eq!(written as usize, unsharded.len());
    assert_eq!(prediction_rows(lake.as_ref(), d).await, unsharded);

    // A run a minute before the first tip-off (the clock of a SameDay run) adds the actionable
    // predictions: they become the active ones, the reconstructions stay, inactive.
    let s = season();
    let first_tipoff = s.by_date[&d]
        .iter()
        .map(|&g| s.games[g].tipoff)
        .min()
        .unwrap();
    let before = Config {
        now: Some(first_tipoff - jiff::SignedDuration::from_mins(1)),
        ..config(&w)
    };
    for _ in 0..2 {
        let out = w
            .run_with("player-prop-predictions", d, Mode::SameDay, before.clone())
            .await;
        assert!(out.failure.is_none(), "{:?}", out.failure);
    }
    let all = rows(lake.as_ref(), &predictions(), d).await;
    assert_eq!(
        all.len(),
        2 * unsharded.len(),
        "a re-run replaces its own rows"
    );
    for r in &all {
        let pre = string(r, "prediction_timing") == "pre_tipoff";
        assert_eq!(r["is_active"], Value::Bool(pre), "{r:?}");
    }
    // And a later reconstruction never takes the active mark back.
    w.run_with("player-prop-predictions", d, Mode::Production, config(&w))
        .await;
    let all = rows(lake.as_ref(), &predictions(), d).await;
    assert_eq!(all.len(), 2 * unsharded.len());
    assert!(
        all.iter()
            .filter(|r| r["is_active"] == Value::Bool(true))
            .all(|r| string(r, "prediction_timing") == "pre_tipoff")
    );

    // A player with a line left out of the feature store is named.
    let store = TableRef::new("nba_predictions", "ml_feature_store_v2");
    let props = rows(
        lake.as_ref(),
        &TableRef::new("nba_raw", "odds_api_player_points_props"),
        d,
    )
    .await;
    let dropped = string(&props[0], "player_lookup");
    let kept: Vec<Row> = rows(lake.as_ref(), &store, d)
        .await
        .into_iter()
        .filter(|r| string(r, "player_lookup") != dropped)
        .collect();
    lake.replace_partition(&store, d, &kept).await.unwrap();
    let out = w
        .run_with("player-prop-predictions", d, Mode::Production, config(&w))
        .await;
    let gate = check(&out.result, "predictions-written");
    assert!(!gate.passed);
    assert!(
        gate.missing.iter().any(|m| m.starts_with(&dropped)),
        "{gate:?}"
    );
}
