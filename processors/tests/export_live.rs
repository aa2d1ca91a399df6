//! `export-live` against an in-process `tipoff-season` upstream whose clock the test moves
//! through a busy evening: the live files are rewritten as each game starts and ends, validate
//! against their schemas, grade the published predictions as their games end, and the
//! processor exits 0 once every game is final. A run whose games never finish stops at
//! `TIPOFF_LIVE_MAX_SECS` with a failed check naming them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::time::Duration;

use jiff::civil::Date;
use serde_json::Value as Json;
use support::schema_check::assert_valid;
use support::*;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::runner;
use tipoff_processors::schedule::player_lookup;
use tipoff_warehouse::{Row, TableSchema, Value, Warehouse};

const PREDICTIONS_SCHEMA: &str =
    include_str!("../../config/schemas/nba_predictions/player_prop_predictions.json");

/// Two OVER calls per game of `d`, on lines just under what the players score (so a played
/// one is a WIN, a DNP a VOID), as phase 5 would write them.
async fn write_predictions(wh: &dyn Warehouse, d: Date) -> usize {
    let s = season();
    let mut rows: Vec<Row> = Vec::new();
    for &g in &s.by_date[&d] {
        for pg in s.player_games_of(g).iter().take(2) {
            let player = player_lookup(&s.league.players[pg.player].name());
            let line = f64::from(pg.pts) - 0.5;
            let vals: Vec<(&str, Value)> = vec![
                ("prediction_id", format!("p-{player}").into()),
                ("system_id", "ensemble_v1".into()),
                ("player_lookup", player.as_str().into()),
                ("game_id", s.games[g].game_id.as_str().into()),
                ("game_date", d.into()),
                ("team_abbr", s.league.teams[pg.team].abbr.into()),
                ("predicted_points", (line + 2.0).into()),
                ("current_points_line", line.into()),
                ("over_price", Value::Int(-110)),
                ("under_price", Value::Int(-110)),
                ("line_margin", 2.0.into()),
                ("recommendation", "OVER".into()),
                ("confidence_score", 0.6.into()),
                ("model_version", "v1".into()),
                ("prediction_timing", "pre_tipoff".into()),
                ("is_active", true.into()),
                ("player_bucket", Value::Int(1)),
                ("created_at", Value::timestamp(same_day(d))),
            ];
            rows.push(vals.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        }
    }
    let schema = TableSchema::from_json(PREDICTIONS_SCHEMA, "predictions").unwrap();
    wh.ensure_table(&schema).await.unwrap();
    wh.replace_partition(&schema.table_ref(), d, &rows)
        .await
        .unwrap();
    rows.len()
}

/// Waits (up to 20 s) until the file at `path` satisfies `ok`; returns its bytes.
async fn wait_for(path: &std::path::Path, what: &str, ok: impl Fn(&Json) -> bool) -> Vec<u8> {
    for _ in 0..400 {
        if let Ok(b) = std::fs::read(path)
            && let Ok(v) = serde_json::from_slice::<Json>(&b)
            && ok(&v)
        {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what}: {} never got there; last: {:?}",
        path.display(),
        std::fs::read_to_string(path).ok()
    );
}

fn count_status(live: &Json, status: &str) -> usize {
    live["games"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_files_follow_the_games_as_they_end_and_the_processor_exits_when_all_are_final() {
    let d = busy_date();
    let s = season();
    let w = World::start(same_day(d)).await;
    w.ok("scrape-schedule", d, Mode::SameDay).await;
    let lake = w.lake().await;
    let n_predictions = write_predictions(lake.as_ref(), d).await;
    w.ok("export-predictions", d, Mode::SameDay).await;

    let args = RunArgs {
        processor: "export-live".into(),
        date: d,
        mode: Mode::SameDay,
    };
    let task = tokio::spawn(runner::run(args, w.config()));
    let live = w.storage_dir().join(format!("exports/v1/live/{d}.json"));
    let grading = w
        .storage_dir()
        .join(format!("exports/v1/live-grading/{d}.json"));
    let games: Vec<usize> = s.by_date[&d].clone();
    let total = games.len();

    // Before tip-off: every game scheduled, every prediction pending.
    let b = wait_for(&live, "scheduled", |v| {
        count_status(v, "scheduled") == total
    })
    .await;
    assert_valid("live", &b);
    let g = wait_for(&grading, "pending", |v| {
        v["systems"][0]["pending"] == n_predictions
    })
    .await;
    assert_valid("live-grading", &g);
    assert_eq!(
        serde_json::from_slice::<Json>(&g).unwrap()["predictions_published"],
        true
    );

    // The first tip-off: that game is in progress, with no points yet.
    let first_tip = games.iter().map(|&g| s.games[g].tipoff).min().unwrap();
    w.set_clock(first_tip + jiff::SignedDuration::from_mins(5))
        .await;
    wait_for(&live, "in progress", |v| {
        count_status(v, "in_progress") >= 1
    })
    .await;

    // Each game end, in order: the file shows exactly the games ended so far as final, with
    // their players' points and their predictions decided.
    let mut ends: Vec<jiff::Timestamp> = games.iter().map(|&g| s.games[g].end).collect();
    ends.sort();
    ends.dedup();
    assert!(
        ends.len() >= 2,
        "a busy date has games ending at different times"
    );
    let mut seen = Vec::new();
    for end in &ends {
        w.set_clock(*end).await;
        let finals = games.iter().filter(|&&g| s.games[g].end <= *end).count();
        let b = wait_for(&live, "games final", |v| v["games_final"] == finals).await;
        assert_valid("live", &b);
        let v: Json = serde_json::from_slice(&b).unwrap();
        for game in v["games"].as_array().unwrap() {
            let players = game["players"].as_array().unwrap();
            if game["status"] == "final" {
                assert!(!players.is_empty() && game["home_score"].is_i64(), "{game}");
            } else {
                assert!(players.is_empty(), "no points before the game ends: {game}");
            }
        }
        let decided = 2 * finals;
        let g = wait_for(&grading, "decided", |v| {
            v["systems"][0]["decided"] == decided
        })
        .await;
        assert_valid("live-grading", &g);
        let gv: Json = serde_json::from_slice(&g).unwrap();
        let sys = &gv["systems"][0];
        // Lines just under the points: every decided OVER call that played is a WIN.
        assert_eq!(
            sys["wins"].as_u64().unwrap() + sys["voided"].as_u64().unwrap(),
            decided as u64,
            "{sys}"
        );
        seen.push(b);
    }
    seen.dedup();
    assert_eq!(seen.len(), ends.len(), "one distinct file per game end");

    let out = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("export-live exits once every game is final")
        .unwrap();
    assert!(out.failure.is_none(), "{:?}", out.failure);
    let r = &out.result;
    let c = check(r, "live-games-final");
    assert!(c.passed && c.observed == Some(total as i64), "{c:?}");
    assert!(check(r, "export-date-matches").passed);
    assert!(check(r, "live-predictions-published").passed);
    // At least: scheduled, in progress, each end.
    assert!(check(r, "live-updates").observed >= Some(ends.len() as i64 + 2));
    // The final file is what a run after the games writes too (Production, the next day).
    let last = std::fs::read(&live).unwrap();
    w.ok("export-live", d, Mode::Production).await;
    assert_eq!(std::fs::read(&live).unwrap(), last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn games_that_never_end_stop_at_the_maximum_duration_naming_them() {
    let d = busy_date();
    let w = World::start(same_day(d)).await;
    // No predictions published: the live file is still written, the check says so.
    let mut config = w.config();
    config.live_max = Some(Duration::from_millis(300));
    let args = RunArgs {
        processor: "export-live".into(),
        date: d,
        mode: Mode::SameDay,
    };
    let out = runner::run(args, config).await;
    let f = out.failure.expect("must stop");
    assert_eq!(f.exit_code(), tipoff_crds::EXIT_TRANSIENT);
    assert!(f.to_string().contains("TIPOFF_LIVE_MAX_SECS"), "{f}");
    let c = check(&out.result, "live-games-final");
    assert!(!c.passed && c.observed == Some(0));
    assert!(c.missing.iter().all(|m| m.contains('@')), "{c:?}");
    assert!(!check(&out.result, "live-predictions-published").passed);
    assert!(
        w.storage_dir()
            .join(format!("exports/v1/live/{d}.json"))
            .exists()
    );
}
