//! Phase 6 on the local lake: predictions written as fixtures into
//! `nba_predictions.player_prop_predictions` (phase 5's table), D's results from phases 1-3
//! against an in-process `tipoff-season` upstream, then `grade-predictions` and
//! `export-predictions` through `runner::run`: the graded rows and metrics, the checks, the
//! files against their JSON Schemas, SameDay, idempotent reruns (same rows, same bytes), a
//! missing result and missing predictions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use jiff::civil::Date;
use support::phase6::*;
use support::schema_check::assert_valid;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::Value;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_without_games_writes_nothing_and_reports_every_gate() {
    let s = season();
    let first = *s.by_date.keys().next().unwrap();
    let mut d = first;
    while s.by_date.contains_key(&d) {
        d = d.tomorrow().unwrap();
    }
    let w = World::start(next_day(d)).await;
    w.ok("scrape-schedule", d, Mode::Production).await;
    let r = w.ok("grade-predictions", d, Mode::Production).await;
    assert_eq!(check(&r, "rows-written").expected, Some(0));
    let g = check(&r, "predictions-graded");
    assert!(g.passed && g.expected == Some(0), "{g:?}");
    let r = w.ok("export-predictions", d, Mode::Production).await;
    let c = check(&r, "export-date-matches");
    assert!(c.passed && c.expected == Some(0), "{c:?}");
    assert!(!export_path(&w, "predictions", d).exists());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_night_has_nothing_to_grade_or_export_and_says_so() {
    // No team of the season's first date has played before it: nobody could be expected, the
    // feature store is empty by design and nothing was predicted, so phase 6 succeeds empty.
    let d = *season().by_date.keys().next().unwrap();
    let w = World::start(next_day(d)).await;
    results_of(&w, d).await;
    let lake = w.lake().await;
    let r = w.ok("grade-predictions", d, Mode::Production).await;
    assert!(check(&r, "predictions-graded").passed);
    assert_eq!(check(&r, "rows-written").expected, Some(0));
    assert!(
        r.warnings.iter().any(|m| m.contains("has played yet")),
        "{r:?}"
    );
    assert!(table_rows(lake.as_ref(), &accuracy(), d).await.is_empty());
    let r = w.ok("export-predictions", d, Mode::Production).await;
    assert!(check(&r, "export-date-matches").passed);
    assert!(!export_path(&w, "predictions", d).exists());
    // A later date: its teams have played, so a missing prediction is an error again.
    let second = *season().by_date.keys().nth(2).unwrap();
    w.ok("scrape-schedule", second, Mode::Production).await;
    let out = w.run("grade-predictions", second, Mode::Production).await;
    assert!(out.failure.is_some(), "{:?}", out.result);
}
