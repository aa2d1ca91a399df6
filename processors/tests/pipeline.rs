//! Phases 1 and 2 end to end against an in-process `tipoff-season` upstream and the local lake:
//! every scraper and raw processor, upstream faults (429 with Retry-After, 5xx bursts, a key
//! that expires mid-run, malformed and truncated payloads, a game with no box score yet) and
//! idempotency (objects byte for byte, tables row for row).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::time::Duration;

use jiff::civil::Date;
use serde_json::json;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::TableRef;

struct Expected {
    games: usize,
    box_rows: usize,
    pbp_rows: usize,
    injury_rows: usize,
    prop_rows: usize,
    line_rows: usize,
}

fn expected(date: Date) -> Expected {
    let s = season();
    let games = &s.by_date[&date];
    let pgs = || games.iter().flat_map(|&g| s.player_games_of(g).iter());
    Expected {
        games: games.len(),
        box_rows: pgs().count(),
        pbp_rows: pgs().map(|pg| pg.shots.len() + pg.fta as usize).sum(),
        injury_rows: s
            .injuries
            .iter()
            .filter(|e| games.contains(&e.game))
            .count(),
        prop_rows: s.props.iter().filter(|p| games.contains(&p.game)).count(),
        line_rows: 4 * s
            .game_lines
            .iter()
            .filter(|l| games.contains(&l.game))
            .count(),
    }
}

async fn lake_rows(w: &World, table: &str, date: Date) -> Vec<String> {
    let wh = tipoff_warehouse::open(&w.warehouse_url).await.unwrap();
    table_rows(wh.as_ref(), &TableRef::new("nba_raw", table), date).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_date_loads_every_source_with_full_coverage() {
    let date = busy_date();
    let e = expected(date);
    let w = World::start(next_day(date)).await;
    let mut results = std::collections::BTreeMap::new();
    for p in PHASE1 {
        let r = w.ok(p, date, Mode::Production).await;
        assert_eq!(check(&r, "upstream-retries").observed, Some(0), "{p}");
        results.insert(p, r);
    }
    for p in PHASE2 {
        results.insert(p, w.ok(p, date, Mode::Production).await);
    }
    // Every gate the production catalog attaches to a processor is reported by it (the
    // operator treats a gate that was not reported as failed).
    for (p, gates) in catalog_gates() {
        let Some(r) = results.get(p.as_str()) else {
            continue; // phases 3 and 4: tests/analytics.rs
        };
        for g in gates {
            check(r, &g);
        }
    }
    let r = w.ok("raw-boxscores", date, Mode::Production).await;
    let c = check(&r, "boxscore-coverage");
    assert!(c.passed, "{c:?}");
    assert_eq!(c.expected, Some(e.games as i64));
    assert_eq!(r.rows["nba_raw.bdl_player_boxscores"], e.box_rows as i64);
    assert!(check(&r, "payloads-valid").passed);

    assert_eq!(lake_rows(&w, "nbac_schedule", date).await.len(), e.games);
    assert_eq!(
        lake_rows(&w, "bdl_player_boxscores", date).await.len(),
        e.box_rows
    );
    assert_eq!(
        lake_rows(&w, "nbac_play_by_play", date).await.len(),
        e.pbp_rows
    );
    assert_eq!(
        lake_rows(&w, "nbac_injury_report", date).await.len(),
        e.injury_rows
    );
    assert_eq!(
        lake_rows(&w, "odds_api_player_points_props", date)
            .await
            .len(),
        e.prop_rows
    );
    // Schedule rows are final with scores that match the box scores.
    let sched = lake_rows(&w, "nbac_schedule", date).await;
    assert!(sched.iter().all(|r| r.contains("\"final\"")), "{sched:?}");

    // Props come from the historical endpoint the next day.
    let r = w.ok("scrape-player-props", date, Mode::Production).await;
    assert!(check(&r, "props-coverage").passed);
    assert_eq!(check(&r, "props-historical").observed, Some(e.games as i64));
    // Game lines are closed the next day: they come from the historical snapshot an hour
    // before the first tip-off, which holds every game of the date.
    let r = w.ok("scrape-game-lines", date, Mode::Production).await;
    let c = check(&r, "game-lines-coverage");
    assert!(c.passed, "{c:?}");
    assert_eq!(check(&r, "game-lines-historical").observed, Some(1));
    let r = w.ok("raw-game-lines", date, Mode::Production).await;
    assert!(check(&r, "game-lines-coverage").passed);
    assert_eq!(
        lake_rows(&w, "odds_api_game_lines", date).await.len(),
        e.line_rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_scrapes_a_historical_date_with_props_and_lines() {
    // A date a month in the past: every market closed long ago.
    let date = busy_date();
    let e = expected(date);
    let w = World::start(next_day(
        date.checked_add(jiff::Span::new().days(30)).unwrap(),
    ))
    .await;
    for p in PHASE1 {
        w.ok(p, date, Mode::Backfill).await;
    }
    let r = w.ok("scrape-player-props", date, Mode::Backfill).await;
    assert_eq!(check(&r, "props-historical").observed, Some(e.games as i64));
    let r = w.ok("scrape-game-lines", date, Mode::Backfill).await;
    assert_eq!(check(&r, "game-lines-historical").observed, Some(1));
    for p in PHASE2 {
        let r = w.ok(p, date, Mode::Backfill).await;
        assert!(r.checks.iter().all(|c| c.passed), "{p}: {:#?}", r.checks);
    }
    assert_eq!(
        lake_rows(&w, "bdl_player_boxscores", date).await.len(),
        e.box_rows
    );
    assert_eq!(
        lake_rows(&w, "nbac_play_by_play", date).await.len(),
        e.pbp_rows
    );
    assert_eq!(
        lake_rows(&w, "nbac_injury_report", date).await.len(),
        e.injury_rows
    );
    assert_eq!(
        lake_rows(&w, "odds_api_player_points_props", date)
            .await
            .len(),
        e.prop_rows
    );
    assert_eq!(
        lake_rows(&w, "odds_api_game_lines", date).await.len(),
        e.line_rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_day_loads_props_lines_and_injuries_before_tipoff() {
    let date = busy_date();
    let e = expected(date);
    let w = World::start(same_day(date)).await;
    for p in PHASE1 {
        w.ok(p, date, Mode::SameDay).await;
    }
    for p in PHASE2 {
        w.ok(p, date, Mode::SameDay).await;
    }
    let r = w.ok("raw-player-props", date, Mode::SameDay).await;
    assert!(check(&r, "props-coverage").passed);
    assert_eq!(check(&r, "props-coverage").observed, Some(e.games as i64));
    let r = w.ok("raw-game-lines", date, Mode::SameDay).await;
    assert!(check(&r, "game-lines-coverage").passed);
    assert_eq!(
        lake_rows(&w, "odds_api_game_lines", date).await.len(),
        e.line_rows
    );
    assert_eq!(
        lake_rows(&w, "odds_api_player_points_props", date)
            .await
            .len(),
        e.prop_rows
    );
    assert_eq!(
        lake_rows(&w, "nbac_injury_report", date).await.len(),
        e.injury_rows
    );
    // No game is final yet: nothing is expected of box scores in SameDay.
    let r = w.ok("raw-boxscores", date, Mode::SameDay).await;
    let c = check(&r, "boxscore-coverage");
    assert_eq!((c.passed, c.expected), (true, Some(0)));
    // A check the catalog turns off for the mode (TIPOFF_DISABLED_CHECKS) is not reported.
    let mut cfg = w.config();
    cfg.disabled_checks = vec!["boxscore-coverage".into()];
    let out = w.run_with("raw-boxscores", date, Mode::SameDay, cfg).await;
    assert!(
        out.result
            .checks
            .iter()
            .all(|c| c.name != "boxscore-coverage")
    );
    assert!(out.result.checks.iter().any(|c| c.name == "payloads-valid"));
    let sched = lake_rows(&w, "nbac_schedule", date).await;
    assert!(sched.iter().all(|r| r.contains("\"scheduled\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_without_a_box_score_is_named() {
    let date = busy_date();
    let s = season();
    let games = &s.by_date[&date];
    let last_end = games.iter().map(|&g| s.games[g].end).max().unwrap();
    let late: Vec<String> = {
        let mut v: Vec<(String, String)> = games
            .iter()
            .filter(|&&g| s.games[g].end == last_end)
            .map(|&g| (s.games[g].game_id.clone(), matchup(g)))
            .collect();
        v.sort();
        v.into_iter().map(|(_, m)| m).collect()
    };
    // Production-style run while the last game is still being played.
    let w = World::start(last_end - jiff::Span::new().minutes(1)).await;
    w.ok("scrape-schedule", date, Mode::Production).await;
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    let c = check(&r, "boxscore-coverage");
    assert!(!c.passed);
    assert_eq!(c.missing, late);
    assert_eq!(c.expected, Some(games.len() as i64));
    assert_eq!(c.observed, Some((games.len() - late.len()) as i64));
    w.ok("raw-schedule", date, Mode::Production).await;
    let r = w.ok("raw-boxscores", date, Mode::Production).await;
    let c = check(&r, "boxscore-coverage");
    assert!(!c.passed);
    assert_eq!(c.missing, late);
    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    assert!(!check(&r, "payload-present").passed);
    let r = w.ok("scrape-play-by-play", date, Mode::Production).await;
    assert_eq!(check(&r, "pbp-coverage").missing, late);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_5xx_bursts_are_retried_and_nothing_is_lost() {
    let date = busy_date();
    let e = expected(date);
    let w = World::start(next_day(date)).await;
    w.set_faults(json!({
        "schedule": { "fail_first": 2, "error_status": 502 },
        "boxscores": { "fail_first": 3, "error_status": 503 },
        "pbp": { "rate_limit": 3, "rate_window_secs": 1, "error_rate": 0.2 },
        "odds": { "rate_limit": 4, "rate_window_secs": 1, "fail_first": 1 },
        "injuries": { "fail_first": 1, "error_status": 500 }
    }))
    .await;
    let started = std::time::Instant::now();
    let r = w.ok("scrape-schedule", date, Mode::Production).await;
    assert_eq!(check(&r, "upstream-retries").observed, Some(2));
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    assert_eq!(check(&r, "upstream-retries").observed, Some(3));
    assert!(check(&r, "boxscore-coverage").passed);
    let r = w.ok("scrape-play-by-play", date, Mode::Production).await;
    assert!(check(&r, "pbp-coverage").passed, "{r:#?}");
    assert!(check(&r, "upstream-retries").observed.unwrap() >= 2);
    // More games than the limit per second: Retry-After (1 s) was honoured at least once.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let r = w.ok("scrape-player-props", date, Mode::Production).await;
    assert!(check(&r, "props-coverage").passed);
    assert!(
        r.warnings.iter().any(|w| w.contains("rate-limited")),
        "{r:#?}"
    );
    w.ok("scrape-injury-report", date, Mode::Production).await;
    for p in PHASE2 {
        w.ok(p, date, Mode::Production).await;
    }
    assert_eq!(
        lake_rows(&w, "nbac_play_by_play", date).await.len(),
        e.pbp_rows
    );
    assert_eq!(
        lake_rows(&w, "bdl_player_boxscores", date).await.len(),
        e.box_rows
    );
    assert_eq!(
        lake_rows(&w, "odds_api_player_points_props", date)
            .await
            .len(),
        e.prop_rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_stays_down_is_a_transient_failure() {
    let date = busy_date();
    let w = World::start(next_day(date)).await;
    w.set_faults(json!({ "schedule": { "fail_first": 100 } }))
        .await;
    let out = w.run("scrape-schedule", date, Mode::Production).await;
    assert_eq!(out.exit_code(), 75, "{:?}", out.failure);
    assert!(format!("{:?}", out.failure).contains("503"));
    assert_eq!(check(&out.result, "upstream-requests").observed, Some(6));
    assert_eq!(check(&out.result, "files-written").observed, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_expires_mid_run_is_refreshed_from_the_key_file() {
    let date = busy_date();
    let e = expected(date);
    let w = World::start(next_day(date)).await;
    w.ok("scrape-schedule", date, Mode::Production).await;
    // The odds key dies mid-run; the rotated key reaches the mounted file a little
    // later (as a Secret update does), while the scraper waits and re-reads it.
    // Each key serves `games` requests; the run needs games + 1 (events, then one per game).
    w.set_faults(json!({ "odds": { "key_expires_after": e.games } }))
        .await;
    w.add_key("key-2").await;
    let key_file = w.key_file.clone();
    let rotate = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Atomically, as the kubelet swaps a mounted Secret: a plain write truncates first,
        // and a client reading in between saw an empty file (a flaky failure under load).
        let tmp = key_file.with_extension("new");
        std::fs::write(&tmp, "key-2\n").unwrap();
        std::fs::rename(tmp, key_file).unwrap();
    });
    let r = w.ok("scrape-player-props", date, Mode::Production).await;
    rotate.await.unwrap();
    assert_eq!(check(&r, "upstream-key-refreshes").observed, Some(1));
    assert!(check(&r, "props-coverage").passed, "{r:#?}");
    assert_eq!(check(&r, "files-written").observed, Some(e.games as i64));
    w.ok("raw-player-props", date, Mode::Production).await;
    assert_eq!(
        lake_rows(&w, "odds_api_player_points_props", date)
            .await
            .len(),
        e.prop_rows
    );

    // A key that is never rotated: transient, so the operator retries after the rotation.
    w.set_faults(json!({ "boxscores": { "key_expires_after": 0 } }))
        .await;
    let out = w.run("scrape-boxscores", date, Mode::Production).await;
    assert_eq!(out.exit_code(), 75, "{:?}", out.failure);
    assert!(format!("{:?}", out.failure).contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_truncated_payloads_are_quarantined_and_the_rest_loads() {
    let date = busy_date();
    let s = season();
    let mut games: Vec<usize> = s.by_date[&date].clone();
    games.sort_by_key(|&g| s.games[g].game_id.clone());
    let w = World::start(next_day(date)).await;
    // The scraper asks for games in game-id order: the first is malformed (HTML), the second
    // truncated.
    w.set_faults(json!({ "pbp": { "malformed_first": 1, "truncated_first": 1 } }))
        .await;
    w.ok("scrape-schedule", date, Mode::Production).await;
    w.ok("scrape-play-by-play", date, Mode::Production).await;
    let bad_ids: Vec<String> = games[..2]
        .iter()
        .map(|&g| s.games[g].game_id.clone())
        .collect();
    let good_rows: usize = games[2..]
        .iter()
        .flat_map(|&g| s.player_games_of(g))
        .map(|pg| pg.shots.len() + pg.fta as usize)
        .sum();

    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    let c = check(&r, "payloads-valid");
    assert!(!c.passed);
    let names: Vec<String> = bad_ids.iter().map(|id| format!("{id}.json")).collect();
    assert_eq!(c.missing, names);
    assert_eq!(
        (c.observed, c.expected),
        (Some(games.len() as i64 - 2), Some(games.len() as i64))
    );
    let c = check(&r, "pbp-coverage");
    assert!(!c.passed);
    let mut bad_matchups: Vec<String> = games[..2].iter().map(|&g| matchup(g)).collect();
    bad_matchups.sort_by_key(|m| games.iter().position(|&g| matchup(g) == *m).unwrap());
    assert_eq!(c.missing, bad_matchups);
    assert_eq!(r.rows["nba_raw.nbac_play_by_play"], good_rows as i64);
    assert_eq!(
        lake_rows(&w, "nbac_play_by_play", date).await.len(),
        good_rows
    );

    // Moved, not dropped: the payload bytes and a reason sit under quarantine/.
    let objects = w.objects().await;
    for id in &bad_ids {
        let q = format!("quarantine/play-by-play/{date}/{id}.json");
        assert!(
            objects.contains_key(&q),
            "{q} missing: {:?}",
            objects.keys()
        );
        let reason = String::from_utf8(objects[&format!("{q}.reason.txt")].clone()).unwrap();
        assert!(
            reason.contains("reason: not the expected JSON shape"),
            "{reason}"
        );
        assert!(!objects.contains_key(&format!("raw/play-by-play/{date}/{id}.json")));
    }
    let first = objects[&format!("quarantine/play-by-play/{date}/{}.json", bad_ids[0])].clone();
    assert!(String::from_utf8_lossy(&first).contains("<html>"));

    // A rerun loads the same rows and still reports the quarantined payloads.
    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    assert_eq!(check(&r, "payloads-valid").missing, names);
    assert_eq!(
        lake_rows(&w, "nbac_play_by_play", date).await.len(),
        good_rows
    );

    // A box-score payload that is the date's only one: quarantined, table left alone.
    w.set_faults(json!({ "boxscores": { "truncated_first": 1 } }))
        .await;
    w.ok("scrape-boxscores", date, Mode::Production).await;
    w.ok("raw-schedule", date, Mode::Production).await;
    let r = w.ok("raw-boxscores", date, Mode::Production).await;
    assert!(!check(&r, "payloads-valid").passed);
    assert!(!check(&r, "payload-present").passed);
    assert!(!check(&r, "boxscore-coverage").passed);
    assert!(lake_rows(&w, "bdl_player_boxscores", date).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_a_date_gives_identical_objects_and_tables() {
    let date = busy_date();
    let w = World::start(same_day(date)).await;
    let wh = tipoff_warehouse::open(&w.warehouse_url).await.unwrap();
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        // The day as it happens: SameDay before tip-off (props, lines, injuries), then
        // Production the next morning (box scores, play-by-play, final schedule).
        for (clock, mode) in [
            (same_day(date), Mode::SameDay),
            (next_day(date), Mode::Production),
        ] {
            w.set_clock(clock).await;
            for p in PHASE1.iter().chain(PHASE2.iter()) {
                w.ok(p, date, mode).await;
            }
        }
        let mut tables = Vec::new();
        for t in raw_tables() {
            tables.push(table_rows(wh.as_ref(), &t, date).await);
        }
        snapshots.push((w.objects().await, tables));
    }
    let (a, b) = (&mut snapshots[0].clone(), &mut snapshots[1].clone());
    // The second round's SameDay box-score answer (no game final yet) holds fewer games than
    // the Production payload of the first round: it is kept under held/, never over it.
    assert!(!a.0.keys().any(|k| k.starts_with("held/")));
    let held: Vec<String> =
        b.0.keys()
            .filter(|k| k.starts_with("held/"))
            .cloned()
            .collect();
    assert_eq!(held, [format!("held/boxscores/{date}/box_scores.json")]);
    b.0.retain(|k, _| !k.starts_with("held/"));
    assert!(a.0.len() > 10);
    assert_eq!(
        a.0.keys().collect::<Vec<_>>(),
        b.0.keys().collect::<Vec<_>>()
    );
    for (k, v) in &a.0 {
        assert!(b.0[k] == *v, "{k} differs between runs");
    }
    for (i, t) in raw_tables().iter().enumerate() {
        assert!(!a.1[i].is_empty(), "{t} is empty");
        assert_eq!(a.1[i], b.1[i], "{t} differs between runs");
    }
    // And the partition holds each row once (a replace, not an append).
    let counts = wh
        .partition_row_counts(&TableRef::new("nba_raw", "nbac_schedule"), date, date)
        .await
        .unwrap();
    assert_eq!(counts[&date] as usize, expected(date).games);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_for_one_game_scrapes_only_that_game_and_raw_loads_keep_the_whole_date() {
    let date = busy_date();
    let s = season();
    let games = &s.by_date[&date];
    let w = World::start(next_day(date)).await;
    w.ok("scrape-schedule", date, Mode::Production).await;
    let one = matchup(games[0]);
    let mut config = w.config();
    config.game = Some(one.clone());
    let out = w
        .run_with(
            "scrape-play-by-play",
            date,
            Mode::Production,
            config.clone(),
        )
        .await;
    assert!(out.failure.is_none(), "{:?}", out.failure);
    let c = check(&out.result, "pbp-coverage");
    assert_eq!((c.observed, c.expected), (Some(1), Some(1)));
    let objects = w.objects().await;
    let pbp: Vec<&String> = objects
        .keys()
        .filter(|k| k.starts_with(&format!("raw/play-by-play/{date}/")))
        .collect();
    assert_eq!(pbp.len(), 1, "{pbp:?}");
    assert!(
        out.result.warnings.iter().any(|w| w.contains(&one)),
        "{:?}",
        out.result.warnings
    );

    // A raw load with a game still replaces the whole date's partition (and says so).
    w.ok("raw-schedule", date, Mode::Production).await;
    let out = w
        .run_with("raw-schedule", date, Mode::Production, config.clone())
        .await;
    assert!(out.failure.is_none());
    assert!(out.result.warnings.iter().any(|w| w.contains("ignored")));
    assert_eq!(
        out.result.rows.values().sum::<i64>(),
        i64::try_from(games.len()).unwrap()
    );

    // A game that is not on the date is bad input.
    config.game = Some("AAA@BBB".into());
    let out = w
        .run_with("scrape-boxscores", date, Mode::Production, config)
        .await;
    assert_eq!(out.exit_code(), 65);
}
