//! Phases 3 and 4 on the local lake, against an in-process `tipoff-season` upstream: every
//! table written, the as-of rule (D's results change nothing computed for D), the player source
//! per mode, the coverage gate with DNPs and missing players, a missing feature source, a
//! missing raw partition, and idempotent reruns.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::collections::BTreeSet;

use jiff::civil::Date;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::{Row, TableRef, Value, Warehouse};

/// An early date of the season (a short history keeps the tests quick): the seventh game date,
/// and the six before it.
fn early() -> (Vec<Date>, Date) {
    let dates = game_dates_from(jiff::civil::date(2025, 10, 21), 7);
    let d = dates[6];
    (dates[..6].to_vec(), d)
}

fn t(dataset: &str, table: &str) -> TableRef {
    TableRef::new(dataset, table)
}

async fn rows(wh: &dyn Warehouse, table: &TableRef, date: Date) -> Vec<Row> {
    wh.read_range(table, date, date, None)
        .await
        .unwrap_or_default()
}

fn s(r: &Row, col: &str) -> String {
    match &r[col] {
        Value::String(s) => s.clone(),
        v => panic!("{col} is {v:?}"),
    }
}

/// Replaces a raw partition with `f` applied to its rows.
async fn rewrite(
    wh: &dyn Warehouse,
    table: &TableRef,
    date: Date,
    f: impl Fn(Vec<Row>) -> Vec<Row>,
) {
    let before = rows(wh, table, date).await;
    assert!(!before.is_empty(), "{table} {date} is empty");
    wh.replace_partition(table, date, &f(before)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_date_writes_all_ten_tables_with_every_gate_passing_and_reruns_are_identical()
{
    let (history, d) = early();
    let w = World::start(next_day(d)).await;
    w.history(&history).await;
    let results = w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;

    // Every table of phases 3 and 4 holds the date.
    let mut first = Vec::new();
    for table in analytics_tables() {
        let r = table_rows(lake.as_ref(), &table, d).await;
        assert!(!r.is_empty(), "{table} has no rows for {d}");
        first.push(r);
    }
    // Every check of phases 3 and 4 passed (history complete, every player covered, every
    // feature source present).
    for p in phase(3).into_iter().chain(phase(4)) {
        let r = &results[p];
        for c in &r.checks {
            assert!(c.passed, "{p}: {c:?}");
        }
        check(r, "rows-written");
    }
    assert_eq!(
        check(&results["ml-feature-store"], "history-gap").expected,
        Some(6)
    );

    // player_game_summary's points and minutes equal the raw box scores, player by player.
    let raw = rows(lake.as_ref(), &t("nba_raw", "bdl_player_boxscores"), d).await;
    let pgs = rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d).await;
    assert_eq!(raw.len(), pgs.len());
    for r in &raw {
        let p = pgs
            .iter()
            .find(|p| {
                s(p, "player_lookup") == s(r, "player_lookup") && s(p, "game_id") == s(r, "game_id")
            })
            .unwrap_or_else(|| panic!("no summary for {r:?}"));
        assert_eq!(p["points"], r["points"]);
        assert_eq!(p["minutes_played"], r["minutes"]);
        assert_eq!(
            p["is_active"],
            Value::Bool(r["minutes"] != Value::Float(0.0))
        );
    }

    // The feature store: one row per expected player, version and count fixed, good quality.
    let fs = rows(
        lake.as_ref(),
        &t("nba_predictions", "ml_feature_store_v2"),
        d,
    )
    .await;
    let ctx = rows(
        lake.as_ref(),
        &t("nba_analytics", "upcoming_player_game_context"),
        d,
    )
    .await;
    assert_eq!(fs.len(), ctx.len());
    for r in &fs {
        assert_eq!(r["feature_version"], Value::from("v2.2"));
        assert_eq!(r["feature_count"], Value::Int(28));
        assert!(
            s(r, "data_source").starts_with("players=expected,"),
            "{r:?}"
        );
        let features: serde_json::Value = serde_json::from_str(&s(r, "features_json")).unwrap();
        assert_eq!(features.as_object().unwrap().len(), 28);
    }
    let quality: Vec<f64> = fs
        .iter()
        .map(|r| match r["feature_quality_score"] {
            Value::Float(q) => q,
            _ => panic!(),
        })
        .collect();
    assert!(
        quality.iter().sum::<f64>() / quality.len() as f64 > 80.0,
        "{quality:?}"
    );

    // A rerun of phases 3 and 4 replaces, never appends: the same rows.
    w.phases(d, Mode::Production, &[3, 4]).await;
    for (table, before) in analytics_tables().iter().zip(&first) {
        assert_eq!(
            &table_rows(lake.as_ref(), table, d).await,
            before,
            "{table} changed on rerun"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_d_results_changes_no_context_or_feature_row() {
    let (history, d) = early();
    let w = World::start(next_day(d)).await;
    w.history(&history).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;
    let as_of: Vec<TableRef> = analytics_tables()
        .into_iter()
        .filter(|t| !t.table.ends_with("game_summary"))
        .collect();
    assert_eq!(as_of.len(), 7);
    let mut before = Vec::new();
    for table in &as_of {
        before.push(table_rows(lake.as_ref(), table, d).await);
    }
    let pgs_before = table_rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d).await;

    // D's results change: every player scores 7 more in 3 more minutes, every shot flips.
    rewrite(
        lake.as_ref(),
        &t("nba_raw", "bdl_player_boxscores"),
        d,
        |rows| {
            rows.into_iter()
                .map(|mut r| {
                    if let Value::Int(p) = r["points"] {
                        r.insert("points".into(), Value::Int(p + 7));
                    }
                    if let Value::Float(m) = r["minutes"] {
                        r.insert("minutes".into(), Value::Float(m + 3.0));
                    }
                    r
                })
                .collect()
        },
    )
    .await;
    rewrite(
        lake.as_ref(),
        &t("nba_raw", "nbac_play_by_play"),
        d,
        |rows| {
            rows.into_iter()
                .map(|mut r| {
                    if let Value::Bool(m) = r["shot_made"] {
                        r.insert("shot_made".into(), Value::Bool(!m));
                    }
                    r
                })
                .collect()
        },
    )
    .await;
    w.phases(d, Mode::Production, &[3, 4]).await;

    let pgs_after = table_rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d).await;
    assert_ne!(
        pgs_before, pgs_after,
        "D's summary must reflect D's changed results"
    );
    for (table, before) in as_of.iter().zip(&before) {
        assert!(!before.is_empty());
        let after = table_rows(lake.as_ref(), table, d).await;
        let changed = after.iter().filter(|r| !before.contains(r)).count();
        assert!(
            after == *before,
            "{table} for {d} changed when only {d}'s results did: {changed} of {} rows differ",
            after.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_takes_its_player_source() {
    let (history, d) = early();
    // SameDay: before tip-off, players are expected (recent box scores minus the Out list);
    // D's summaries are not written, and nothing needs them.
    let w = World::start(same_day(d)).await;
    w.history(&history).await;
    let r = w.phases(d, Mode::SameDay, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;
    // Every gate the catalog attaches is reported, except the one it turns off in SameDay for
    // the summaries (`player-coverage` of `player-game-summary`: no box scores yet).
    for (p, gates) in catalog_gates() {
        // Phases 5 and 6 are checked by their own tests (predictions.rs, publish.rs).
        if !r.contains_key(p.as_str()) {
            continue;
        }
        for g in gates {
            if (p.as_str(), g.as_str()) != ("player-game-summary", "player-coverage") {
                check(&r[p.as_str()], &g);
            }
        }
    }
    let pgs = &r["player-game-summary"];
    assert!(check(pgs, "rows-written").passed);
    assert_eq!(check(pgs, "rows-written").expected, Some(0));
    assert!(
        rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d)
            .await
            .is_empty()
    );
    let ctx = rows(
        lake.as_ref(),
        &t("nba_analytics", "upcoming_player_game_context"),
        d,
    )
    .await;
    assert!(!ctx.is_empty());
    assert!(ctx.iter().all(|r| s(r, "player_source") == "expected"));
    let fs = rows(
        lake.as_ref(),
        &t("nba_predictions", "ml_feature_store_v2"),
        d,
    )
    .await;
    assert_eq!(fs.len(), ctx.len());
    let expected_players: BTreeSet<String> = ctx.iter().map(|r| s(r, "player_lookup")).collect();
    // The injury report's Out players are not expected.
    let out: BTreeSet<String> = rows(lake.as_ref(), &t("nba_raw", "nbac_injury_report"), d)
        .await
        .iter()
        .filter(|r| s(r, "status") == "Out")
        .map(|r| s(r, "player_lookup"))
        .collect();
    assert!(!out.is_empty(), "pick a date with Out players");
    assert!(expected_players.is_disjoint(&out));

    // Production the next day: the same expected players (the as-of rule), now with D's
    // results in phase 3.
    w.set_clock(next_day(d)).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let prod = rows(
        lake.as_ref(),
        &t("nba_analytics", "upcoming_player_game_context"),
        d,
    )
    .await;
    let prod_players: BTreeSet<String> = prod.iter().map(|r| s(r, "player_lookup")).collect();
    assert_eq!(prod_players, expected_players);
    assert!(
        !rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d)
            .await
            .is_empty()
    );

    // Backfill: who actually played (minutes on D), and the rows say so.
    w.phases(d, Mode::Backfill, &[3, 4]).await;
    let back = rows(
        lake.as_ref(),
        &t("nba_analytics", "upcoming_player_game_context"),
        d,
    )
    .await;
    assert!(
        back.iter()
            .all(|r| s(r, "player_source") == "player_game_summary")
    );
    let played: BTreeSet<String> = rows(lake.as_ref(), &t("nba_raw", "bdl_player_boxscores"), d)
        .await
        .iter()
        .filter(|r| r["minutes"] != Value::Float(0.0))
        .map(|r| s(r, "player_lookup"))
        .collect();
    let back_players: BTreeSet<String> = back.iter().map(|r| s(r, "player_lookup")).collect();
    assert_eq!(back_players, played);
    assert_ne!(back_players, expected_players);
    let fs = rows(
        lake.as_ref(),
        &t("nba_predictions", "ml_feature_store_v2"),
        d,
    )
    .await;
    assert!(
        fs.iter()
            .all(|r| s(r, "data_source").starts_with("players=player_game_summary,"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_names_missing_players_but_not_dnps_and_missing_inputs_are_named() {
    let (history, d) = early();
    let w = World::start(next_day(d)).await;
    w.history(&history).await;
    let r = w.phases(d, Mode::Production, &[1, 2]).await;
    assert!(r.values().all(|r| !r.checks.is_empty()));
    let lake = w.lake().await;

    // With the real box scores: DNP players have 0 minutes and are not missing.
    let r = w.ok("player-game-summary", d, Mode::Production).await;
    let c = check(&r, "player-coverage");
    assert!(c.passed, "{c:?}");
    assert!(
        check(&r, "dnp-players").observed.unwrap() > 0,
        "pick a date with DNPs"
    );
    let pgs = rows(lake.as_ref(), &t("nba_analytics", "player_game_summary"), d).await;
    let dnp: Vec<&Row> = pgs
        .iter()
        .filter(|r| r["is_active"] == Value::Bool(false))
        .collect();
    assert!(!dnp.is_empty());
    assert!(
        dnp.iter()
            .all(|r| r["minutes_played"] == Value::Float(0.0) && r["dnp_reason"] != Value::Null)
    );

    // Three expected players vanish from the box scores: the check fails and names them.
    let box_t = t("nba_raw", "bdl_player_boxscores");
    let all = rows(lake.as_ref(), &box_t, d).await;
    let mut gone: Vec<String> = all
        .iter()
        .filter(|r| r["minutes"] != Value::Float(0.0))
        .map(|r| s(r, "player_lookup"))
        .take(3)
        .collect();
    gone.sort();
    let keep = gone.clone();
    rewrite(lake.as_ref(), &box_t, d, move |rows| {
        rows.into_iter()
            .filter(|r| !keep.contains(&s(r, "player_lookup")))
            .collect()
    })
    .await;
    let r = w.ok("player-game-summary", d, Mode::Production).await;
    let c = check(&r, "player-coverage");
    assert!(!c.passed);
    assert_eq!(c.expected.unwrap() - c.observed.unwrap(), 3, "{c:?}");
    let mut named = c.missing.clone();
    named.sort();
    assert_eq!(named, gone);

    // A source of the feature store is empty: the store still writes, with lower quality,
    // and the warning check names the source.
    w.phases(d, Mode::Production, &[3, 4]).await;
    let fs_t = t("nba_predictions", "ml_feature_store_v2");
    let full = rows(lake.as_ref(), &fs_t, d).await;
    let zones = t("nba_precompute", "team_defense_zone_analysis");
    lake.replace_partition(&zones, d, &[]).await.unwrap();
    let r = w.ok("ml-feature-store", d, Mode::Production).await;
    let c = check(&r, "feature-sources");
    assert!(!c.passed);
    assert_eq!(c.missing, ["nba_precompute.team_defense_zone_analysis"]);
    let thin = rows(lake.as_ref(), &fs_t, d).await;
    assert_eq!(thin.len(), full.len());
    let q = |rows: &[Row]| -> f64 {
        rows.iter()
            .map(|r| match r["feature_quality_score"] {
                Value::Float(q) => q,
                _ => panic!(),
            })
            .sum::<f64>()
    };
    assert!(q(&thin) < q(&full));
    assert!(
        thin.iter()
            .all(|r| !s(r, "data_source").contains("team_defense_zone_analysis"))
    );

    // No box scores at all for a date: a permanent failure naming the table and its writer,
    // and nothing written.
    let next = game_dates_from(d.tomorrow().unwrap(), 1)[0];
    w.set_clock(next_day(next)).await;
    w.ok("scrape-schedule", next, Mode::Production).await;
    let out = w.run("player-game-summary", next, Mode::Production).await;
    let f = out.failure.expect("must fail without box scores");
    assert_eq!(f.exit_code(), 65);
    assert!(
        f.to_string()
            .contains("nba_raw.bdl_player_boxscores has no rows for"),
        "{f}"
    );
    assert!(f.to_string().contains("raw-boxscores"), "{f}");
    assert!(
        rows(
            lake.as_ref(),
            &t("nba_analytics", "player_game_summary"),
            next
        )
        .await
        .is_empty()
    );
}
