//! Phase 6 on the local lake: predictions written as fixtures into
//! `nba_predictions.player_prop_predictions` (phase 5's table), D's results from phases 1-3
//! against an in-process `tipoff-season` upstream, then `grade-predictions` and
//! `export-predictions` through `runner::run`: the graded rows and metrics, the checks, the
//! files against their JSON Schemas, SameDay, idempotent reruns (same rows, same bytes), a
//! missing result and missing predictions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use jiff::civil::Date;
use support::schema_check::assert_valid;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::{Row, TableRef, TableSchema, Value, Warehouse};

const PREDICTIONS_SCHEMA: &str =
    include_str!("../../config/schemas/nba_predictions/player_prop_predictions.json");

fn accuracy() -> TableRef {
    TableRef::new("nba_predictions", "prediction_accuracy")
}
fn metrics() -> TableRef {
    TableRef::new("nba_predictions", "prediction_daily_metrics")
}
fn predictions() -> TableRef {
    TableRef::new("nba_predictions", "player_prop_predictions")
}

/// An early date with at least one DNP, so a prediction can be voided.
fn date_with_dnp() -> Date {
    let s = season();
    *s.by_date
        .iter()
        .find(|(_, games)| {
            games.iter().any(|&g| {
                s.player_games_of(g)
                    .iter()
                    .any(|pg| pg.dnp_reason.is_some())
            })
        })
        .unwrap()
        .0
}

fn str_of(r: &Row, col: &str) -> String {
    match &r[col] {
        Value::String(s) => s.clone(),
        v => panic!("{col} is {v:?}"),
    }
}

fn int_of(r: &Row, col: &str) -> i64 {
    match &r[col] {
        Value::Int(i) => *i,
        v => panic!("{col} is {v:?}"),
    }
}

fn float_of(r: &Row, col: &str) -> f64 {
    match &r[col] {
        Value::Float(f) => *f,
        v => panic!("{col} is {v:?}"),
    }
}

/// One prediction row of phase 5's schema.
#[allow(clippy::too_many_arguments)]
pub fn prediction(
    date: Date,
    system: &str,
    player: &str,
    game: &str,
    team: &str,
    predicted: f64,
    line: Option<f64>,
    rec: &str,
    timing: &str,
    active: bool,
) -> Row {
    let at = date
        .at(16, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    [
        (
            "prediction_id",
            Value::from(format!("{system}:{game}:{player}:{timing}")),
        ),
        ("system_id", system.into()),
        ("player_lookup", player.into()),
        ("game_id", game.into()),
        ("game_date", date.into()),
        ("team_abbr", team.into()),
        ("predicted_points", predicted.into()),
        ("current_points_line", line.into()),
        ("line_bookmakers", Value::from("draftkings,fanduel")),
        ("line_snapshot_at", Value::timestamp(at)),
        ("over_price", Value::Int(-110)),
        ("under_price", Value::Int(120)),
        ("line_margin", line.map(|l| predicted - l).into()),
        ("recommendation", rec.into()),
        ("confidence_score", 0.56.into()),
        ("model_version", "v1".into()),
        ("feature_version", "v2.1".into()),
        ("prediction_timing", timing.into()),
        ("is_active", active.into()),
        ("player_bucket", Value::Int(7)),
        ("created_at", Value::timestamp(at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Writes prediction fixtures for D (phase 5's table, as `player-prop-predictions` would).
pub async fn write_predictions(wh: &dyn Warehouse, date: Date, rows: &[Row]) {
    let schema = TableSchema::from_json(PREDICTIONS_SCHEMA, "player_prop_predictions").unwrap();
    wh.ensure_table(&schema).await.unwrap();
    wh.replace_partition(&schema.table_ref(), date, rows)
        .await
        .unwrap();
}

/// D's summary rows: (player, game, team, points, minutes, dnp).
async fn summaries(wh: &dyn Warehouse, d: Date) -> Vec<(String, String, String, i64, bool)> {
    let rows = wh
        .read_range(
            &TableRef::new("nba_analytics", "player_game_summary"),
            d,
            d,
            None,
        )
        .await
        .unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                str_of(r, "player_lookup"),
                str_of(r, "game_id"),
                str_of(r, "team_abbr"),
                int_of(r, "points"),
                r["dnp_reason"] != Value::Null,
            )
        })
        .collect();
    out.sort();
    out
}

/// The fixture: for five players who played and one DNP, calls whose outcome is known.
/// Returns the rows and the expected outcome per (system, player).
async fn fixture(wh: &dyn Warehouse, d: Date) -> (Vec<Row>, Vec<(String, String, &'static str)>) {
    let s = summaries(wh, d).await;
    let played: Vec<_> = s.iter().filter(|p| !p.4 && p.3 >= 4).take(5).collect();
    let dnp = s.iter().find(|p| p.4).expect("a DNP on the date");
    assert_eq!(played.len(), 5);
    let pts = |i: usize| played[i].3 as f64;
    let (lc, pm) = ("line_consensus_v1", "points_model_v1");
    let p = |system: &str, i: usize, predicted: f64, line: Option<f64>, rec: &str| {
        let (player, game, team, _, _) = played[i];
        prediction(
            d,
            system,
            player,
            game,
            team,
            predicted,
            line,
            rec,
            "pre_tipoff",
            true,
        )
    };
    let rows = vec![
        p(lc, 0, pts(0) + 2.0, Some(pts(0) - 0.5), "OVER"), // WIN at -110
        p(lc, 1, pts(1) - 3.0, Some(pts(1) - 0.5), "UNDER"), // LOSS
        p(lc, 2, pts(2) - 2.0, Some(pts(2)), "UNDER"),      // PUSH on a whole line
        p(lc, 3, pts(3) + 0.2, Some(pts(3) + 0.5), "PASS"), // PASS
        prediction(
            d,
            lc,
            &dnp.0,
            &dnp.1,
            &dnp.2,
            12.0,
            Some(10.5),
            "OVER",
            "pre_tipoff",
            true,
        ), // VOID
        p(pm, 0, pts(0) - 2.0, Some(pts(0) + 1.5), "UNDER"), // WIN at +120
        // Superseded: an as-of-tipoff row that a pre-tipoff one replaces is never graded.
        {
            let (player, game, team, _, _) = played[0];
            prediction(
                d,
                pm,
                player,
                game,
                team,
                40.0,
                Some(1.5),
                "OVER",
                "as_of_tipoff",
                false,
            )
        },
        p(pm, 4, pts(4) + 1.0, None, "PASS"), // no line: PASS
    ];
    let expect = vec![
        (lc.to_owned(), played[0].0.clone(), "WIN"),
        (lc.to_owned(), played[1].0.clone(), "LOSS"),
        (lc.to_owned(), played[2].0.clone(), "PUSH"),
        (lc.to_owned(), played[3].0.clone(), "PASS"),
        (lc.to_owned(), dnp.0.clone(), "VOID"),
        (pm.to_owned(), played[0].0.clone(), "WIN"),
        (pm.to_owned(), played[4].0.clone(), "PASS"),
    ];
    (rows, expect)
}

/// Phases 1-2 and `player-game-summary` for D in Production: D's results.
async fn results_of(w: &World, d: Date) {
    w.phases(d, Mode::Production, &[1, 2]).await;
    w.ok("player-game-summary", d, Mode::Production).await;
}

fn export_path(w: &World, kind: &str, d: Date) -> std::path::PathBuf {
    w.storage_dir().join(format!("exports/v1/{kind}/{d}.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grading_and_exports_are_right_checked_valid_and_idempotent() {
    let d = date_with_dnp();
    let w = World::start(next_day(d)).await;
    results_of(&w, d).await;
    let lake = w.lake().await;
    let (rows, expect) = fixture(lake.as_ref(), d).await;
    write_predictions(lake.as_ref(), d, &rows).await;

    // SameDay: no results yet; nothing written, and the result says so.
    let r = w.ok("grade-predictions", d, Mode::SameDay).await;
    assert_eq!(check(&r, "rows-written").expected, Some(0));
    assert!(check(&r, "rows-written").passed);
    assert!(r.warnings.iter().any(|m| m.contains("SameDay")), "{r:?}");
    assert!(table_rows(lake.as_ref(), &accuracy(), d).await.is_empty());
    // SameDay's export: the predictions only.
    let r = w.ok("export-predictions", d, Mode::SameDay).await;
    assert!(check(&r, "export-date-matches").passed);
    assert_eq!(check(&r, "export-date-matches").expected, Some(1));
    assert!(export_path(&w, "predictions", d).exists());
    assert!(!export_path(&w, "results", d).exists());

    // Production grades.
    let r = w.ok("grade-predictions", d, Mode::Production).await;
    for c in &r.checks {
        assert!(c.passed, "{c:?}");
    }
    let g = check(&r, "predictions-graded");
    assert_eq!((g.observed, g.expected), (Some(7), Some(7)));
    assert_eq!(check(&r, "predictions-voided").observed, Some(1));
    let acc = lake.read_range(&accuracy(), d, d, None).await.unwrap();
    assert_eq!(acc.len(), expect.len(), "one row per active prediction");
    for (system, player, outcome) in &expect {
        let row = acc
            .iter()
            .find(|r| &str_of(r, "system_id") == system && &str_of(r, "player_lookup") == player)
            .unwrap_or_else(|| panic!("no row for {system} {player}"));
        assert_eq!(&str_of(row, "outcome"), outcome, "{row:?}");
        assert_eq!(str_of(row, "prediction_timing"), "pre_tipoff");
        let correct = &row["prediction_correct"];
        match *outcome {
            "WIN" => assert_eq!(correct, &Value::Bool(true)),
            "LOSS" => assert_eq!(correct, &Value::Bool(false)),
            _ => assert_eq!(correct, &Value::Null),
        }
        if *outcome == "VOID" {
            assert_eq!(row["actual_points"], Value::Null);
            assert_eq!(row["absolute_error"], Value::Null);
        } else {
            let e = float_of(row, "signed_error");
            assert_eq!(float_of(row, "absolute_error"), e.abs());
        }
    }
    let m = lake.read_range(&metrics(), d, d, None).await.unwrap();
    assert_eq!(m.len(), 2);
    let lc = m
        .iter()
        .find(|r| str_of(r, "system_id") == "line_consensus_v1")
        .unwrap();
    assert_eq!(
        [
            "predictions",
            "graded",
            "voided",
            "ungraded",
            "calls",
            "wins",
            "losses",
            "pushes"
        ]
        .map(|c| int_of(lc, c)),
        [5, 4, 1, 0, 3, 1, 1, 1]
    );
    assert_eq!(float_of(lc, "hit_rate"), 0.5);
    assert_eq!(float_of(lc, "units_staked"), 3.0);
    assert!((float_of(lc, "return_units") - (100.0 / 110.0 - 1.0)).abs() < 1e-12);
    let pm = m
        .iter()
        .find(|r| str_of(r, "system_id") == "points_model_v1")
        .unwrap();
    assert!((float_of(pm, "return_units") - 1.2).abs() < 1e-12);
    assert_eq!(float_of(pm, "mae"), 1.5);

    // Production's export: predictions and results, both valid, both dated D.
    let r = w.ok("export-predictions", d, Mode::Production).await;
    let c = check(&r, "export-date-matches");
    assert!(c.passed && c.expected == Some(2), "{c:?}");
    let pred_bytes = std::fs::read(export_path(&w, "predictions", d)).unwrap();
    let res_bytes = std::fs::read(export_path(&w, "results", d)).unwrap();
    assert_valid("predictions", &pred_bytes);
    assert_valid("results", &res_bytes);
    let res: serde_json::Value = serde_json::from_slice(&res_bytes).unwrap();
    assert_eq!(res["game_date"], d.to_string());
    assert_eq!(res["systems"][0]["system_id"], "line_consensus_v1");
    assert_eq!(res["systems"][0]["metrics"]["wins"], 1);
    assert_eq!(res["systems"][0]["graded"].as_array().unwrap().len(), 5);
    let preds: serde_json::Value = serde_json::from_slice(&pred_bytes).unwrap();
    // The inactive row is not published.
    assert_eq!(preds["systems"][1]["counts"]["predictions"], 2);

    // Reruns replace: the same rows, the same bytes.
    let before = (
        table_rows(lake.as_ref(), &accuracy(), d).await,
        table_rows(lake.as_ref(), &metrics(), d).await,
    );
    w.ok("grade-predictions", d, Mode::Production).await;
    w.ok("export-predictions", d, Mode::Production).await;
    assert_eq!(
        before,
        (
            table_rows(lake.as_ref(), &accuracy(), d).await,
            table_rows(lake.as_ref(), &metrics(), d).await,
        )
    );
    assert_eq!(
        std::fs::read(export_path(&w, "predictions", d)).unwrap(),
        pred_bytes
    );
    assert_eq!(
        std::fs::read(export_path(&w, "results", d)).unwrap(),
        res_bytes
    );

    // Backfill grades the same way.
    w.ok("grade-predictions", d, Mode::Backfill).await;
    assert_eq!(before.0, table_rows(lake.as_ref(), &accuracy(), d).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_result_is_named_and_missing_predictions_name_their_processor() {
    let d = date_with_dnp();
    let w = World::start(next_day(d)).await;
    results_of(&w, d).await;
    let lake = w.lake().await;
    let (mut rows, _) = fixture(lake.as_ref(), d).await;
    // A player the box scores do not have, in a game of D.
    let game = str_of(&rows[0], "game_id");
    rows.push(prediction(
        d,
        "ensemble_v1",
        "nosuchplayer",
        &game,
        "XXX",
        10.0,
        Some(9.5),
        "OVER",
        "pre_tipoff",
        true,
    ));
    write_predictions(lake.as_ref(), d, &rows).await;
    let r = w.ok("grade-predictions", d, Mode::Production).await;
    let c = check(&r, "predictions-graded");
    assert!(!c.passed);
    assert_eq!((c.observed, c.expected), (Some(7), Some(8)));
    assert_eq!(c.missing.len(), 1);
    assert!(c.missing[0].starts_with("nosuchplayer ("), "{c:?}");
    assert!(c.missing[0].contains('@'), "names the matchup: {c:?}");
    // The graded rows are still written; the metrics count the ungraded one.
    let m = lake.read_range(&metrics(), d, d, None).await.unwrap();
    let ens = m
        .iter()
        .find(|r| str_of(r, "system_id") == "ensemble_v1")
        .unwrap();
    assert_eq!((int_of(ens, "ungraded"), int_of(ens, "graded")), (1, 0));

    // No predictions at all for a date with games: a permanent failure naming the processor.
    write_predictions(lake.as_ref(), d, &[]).await;
    for p in ["grade-predictions", "export-predictions"] {
        let out = w.run(p, d, Mode::Production).await;
        let f = out.failure.expect("must fail");
        assert_eq!(f.exit_code(), tipoff_crds::EXIT_PERMANENT);
        let text = f.to_string();
        assert!(
            text.contains("nba_predictions.player_prop_predictions")
                && text.contains("run player-prop-predictions for"),
            "{p}: {text}"
        );
    }

    // A malformed prediction (a call without a line) fails naming the table, never panics.
    let (player, team) = (
        str_of(&rows[0], "player_lookup"),
        str_of(&rows[0], "team_abbr"),
    );
    write_predictions(
        lake.as_ref(),
        d,
        &[prediction(
            d,
            "x",
            &player,
            &game,
            &team,
            10.0,
            None,
            "OVER",
            "pre_tipoff",
            true,
        )],
    )
    .await;
    let out = w.run("grade-predictions", d, Mode::Production).await;
    let text = out.failure.expect("must fail").to_string();
    assert!(text.contains("OVER without current_points_line"), "{text}");

    // Production export before grading: names grade-predictions.
    write_predictions(lake.as_ref(), d, &rows).await;
    lake.replace_partition(&metrics(), d, &[]).await.unwrap();
    let out = w.run("export-predictions", d, Mode::Production).await;
    let text = out.failure.expect("must fail").to_string();
    assert!(text.contains("run grade-predictions for"), "{text}");
    let _ = predictions();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gate_the_catalog_keeps_on_for_phase_6_is_reported() {
    let d = date_with_dnp();
    let w = World::start(next_day(d)).await;
    results_of(&w, d).await;
    let lake = w.lake().await;
    let (rows, _) = fixture(lake.as_ref(), d).await;
    write_predictions(lake.as_ref(), d, &rows).await;
    for (name, gates) in catalog_gates() {
        if !["grade-predictions", "export-predictions"].contains(&name.as_str()) {
            continue;
        }
        let r = w.ok(&name, d, Mode::Production).await;
        for g in gates {
            check(&r, &g);
        }
    }
}
