//! The quality benchmark: runs the synthetic season's game dates through every phase
//! (Production mode, the day after; `export-live` aside, it follows games being played) into a
//! local lake, then measures every prediction system against the best possible predictor.
//!
//! ```sh
//! cargo run --release -p tipoff-processors --example bench_accuracy            # the season
//! cargo run --release -p tipoff-processors --example bench_accuracy -- --dates 60
//! ```
//!
//! Options: `--dates N` (game dates from the season's first, default all), `--from-share F`
//! (evaluate the dates after this share of the season, default 0.5: the second half).
//!
//! Evaluated rows: the active prediction of every player who had a line and played, on the
//! evaluated dates; every system on the same rows. Printed per system: MAE, MAE relative to the
//! ceiling (`tipoff-season`'s expected points before tip-off: what a predictor knowing the
//! simulation's latents would say) and to the season-average baseline (the player's points per
//! game before D), the share of the gap between the season average and the ceiling the system
//! closes, OVER/UNDER calls with their hit rate and its 95% Wilson interval, and the return per
//! unit staked at the posted prices. The calls are the pipeline's own (line-shopped: OVER at the
//! lowest book's line, UNDER at the highest); `c.calls`/`c.hit` are calls against the books'
//! consensus at -110 with an edge of at least one point, where the books' disagreement gives no
//! edge: the fairer measure of the prediction itself.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::registry;
use tipoff_processors::runner::{self, Config};
use tipoff_processors::upstream::RetryPolicy;
use tipoff_season::Season;
use tipoff_season::server::{AppState, FaultConfig, router};
use tipoff_warehouse::{TableRef, Value, Warehouse};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn f(v: &Value) -> Option<f64> {
    match v {
        Value::Float(x) => Some(*x),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// Profit of one unit staked at American odds `price` when the call wins.
fn win_units(price: i64) -> f64 {
    if price > 0 {
        price as f64 / 100.0
    } else {
        100.0 / (-price) as f64
    }
}

/// The 95% Wilson interval of `k` successes in `n`.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.96);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (centre - half, centre + half)
}

#[derive(Default)]
struct Tally {
    abs_err: f64,
    n: usize,
    calls: usize,
    wins: usize,
    profit: f64,
    /// Calls against the consensus line at -110 (edge of at least [`CONSENSUS_EDGE`]).
    consensus_calls: usize,
    consensus_wins: usize,
}

/// The least edge, in points, over the consensus line that makes a consensus call.
const CONSENSUS_EDGE: f64 = 1.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let season = Arc::new(Season::generate(2025));
    let all: Vec<Date> = season.by_date.keys().copied().collect();
    let n: usize = arg("--dates").map_or(all.len(), |d| d.parse().unwrap());
    let from_share: f64 = arg("--from-share").map_or(0.5, |s| s.parse().unwrap());
    let dates: Vec<Date> = all.into_iter().take(n).collect();
    let last = *dates.last().unwrap();
    let clock = last
        .tomorrow()
        .unwrap()
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let state = AppState::new(Arc::clone(&season), clock, "bench-key", FaultConfig::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "bench-key").unwrap();
    let config = Config {
        warehouse_url: Some(format!("file://{}", dir.path().join("lake").display())),
        storage_url: Some(format!("file://{}", dir.path().join("objects").display())),
        upstream_url: Some(base),
        api_key_file: Some(key_file),
        retry: RetryPolicy {
            base_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..Config::default()
    };
    let processors: Vec<&str> = (1..=6)
        .flat_map(registry::names_in_phase)
        .filter(|p| *p != "export-live")
        .collect();
    eprintln!(
        "bench_accuracy: {} dates ({} .. {last}), {} processors each",
        dates.len(),
        dates[0],
        processors.len()
    );
    let started = Instant::now();
    for (i, d) in dates.iter().enumerate() {
        for p in &processors {
            let args = RunArgs {
                processor: (*p).to_owned(),
                date: *d,
                mode: Mode::Production,
            };
            let out = runner::run(args, config.clone()).await;
            assert!(out.failure.is_none(), "{p} {d}: {:?}", out.failure);
        }
        if (i + 1) % 20 == 0 {
            eprintln!(
                "  {}/{} dates, {:.0} s",
                i + 1,
                dates.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let pipeline_secs = started.elapsed().as_secs_f64();

    // The evaluation.
    let wh: Arc<dyn Warehouse> = tipoff_warehouse::open(config.warehouse_url.as_deref().unwrap())
        .await
        .unwrap();
    let eval_from = dates[((dates.len() as f64) * from_share) as usize];
    let truth: BTreeMap<(String, String), (f64, bool, f64)> =
        tipoff_season::truth::player_games(&season)
            .into_iter()
            .map(|t| {
                (
                    (t.game_id, t.player_lookup),
                    (t.expected_points, t.played, f64::from(t.points)),
                )
            })
            .collect();
    // Season average before D, from the warehouse's own summaries.
    let summaries = wh
        .read_range(
            &TableRef::new("nba_analytics", "player_game_summary"),
            dates[0],
            last,
            Some(&["player_lookup", "game_date", "points", "is_active"]),
        )
        .await
        .unwrap();
    let mut by_player: BTreeMap<String, Vec<(Date, f64)>> = BTreeMap::new();
    for r in &summaries {
        if r["is_active"] == Value::Bool(true) {
            let Value::Date(d) = r["game_date"] else {
                continue;
            };
            by_player
                .entry(s(&r["player_lookup"]))
                .or_default()
                .push((d, f(&r["points"]).unwrap()));
        }
    }
    let season_avg = |player: &str, d: Date| -> Option<f64> {
        let games: Vec<f64> = by_player
            .get(player)?
            .iter()
            .filter(|(g, _)| *g < d)
            .map(|(_, p)| *p)
            .collect();
        (!games.is_empty()).then(|| games.iter().sum::<f64>() / games.len() as f64)
    };
    let preds = wh
        .read_range(
            &TableRef::new("nba_predictions", "player_prop_predictions"),
            eval_from,
            last,
            None,
        )
        .await
        .unwrap();
    // The evaluated rows: players with a line who played and have a season average; each
    // system's active prediction for them.
    let mut rows: BTreeMap<(String, String), BTreeMap<String, &tipoff_warehouse::Row>> =
        BTreeMap::new();
    for r in preds.iter().filter(|r| r["is_active"] == Value::Bool(true)) {
        rows.entry((s(&r["game_id"]), s(&r["player_lookup"])))
            .or_default()
            .insert(s(&r["system_id"]), r);
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for key in ["ceiling", "season_average"] {
        tallies.insert(key.to_owned(), Tally::default());
    }
    let mut evaluated = 0;
    for ((game, player), systems) in &rows {
        let Some(&(expected, played, actual)) = truth.get(&(game.clone(), player.clone())) else {
            continue;
        };
        let Some(line_row) = systems.get("line_consensus_v1") else {
            continue;
        };
        let Value::Date(d) = line_row["game_date"] else {
            continue;
        };
        let Some(avg) = season_avg(player, d) else {
            continue;
        };
        if !played {
            continue;
        }
        evaluated += 1;
        for (name, predicted) in [("ceiling", expected), ("season_average", avg)] {
            let t = tallies.get_mut(name).unwrap();
            t.abs_err += (predicted - actual).abs();
            t.n += 1;
        }
        let consensus = f(&line_row["predicted_points"]).unwrap();
        for (system, r) in systems {
            let t = tallies.entry(system.clone()).or_default();
            let predicted = f(&r["predicted_points"]).unwrap();
            t.abs_err += (predicted - actual).abs();
            t.n += 1;
            // Against the consensus at -110: no line shopping, so the books' disagreement
            // gives no edge; pushes (a whole-number consensus) are neither.
            let edge = predicted - consensus;
            if edge.abs() >= CONSENSUS_EDGE && actual != consensus {
                t.consensus_calls += 1;
                if (actual > consensus) == (edge > 0.0) {
                    t.consensus_wins += 1;
                }
            }
            let line = f(&r["current_points_line"]);
            let (won, price) = match (s(&r["recommendation"]).as_str(), line) {
                ("OVER", Some(l)) if actual != l => (actual > l, r["over_price"].clone()),
                ("UNDER", Some(l)) if actual != l => (actual < l, r["under_price"].clone()),
                _ => continue,
            };
            t.calls += 1;
            if won {
                t.wins += 1;
                t.profit += win_units(match price {
                    Value::Int(p) => p,
                    _ => -110,
                });
            } else {
                t.profit -= 1.0;
            }
        }
    }
    let mae = |name: &str| {
        tallies
            .get(name)
            .map_or(f64::NAN, |t| t.abs_err / t.n.max(1) as f64)
    };
    let (ceiling, average) = (mae("ceiling"), mae("season_average"));
    println!(
        "bench_accuracy: {} dates through phases 1-6 in {pipeline_secs:.0} s; evaluated {evaluated} player-games with a line on the {} dates from {eval_from}",
        dates.len(),
        dates.iter().filter(|d| **d >= eval_from).count()
    );
    println!(
        "{:<20} {:>7} {:>9} {:>9} {:>8} {:>7} {:>8} {:>17} {:>9}   {:>7} {:>8} {:>17}",
        "system",
        "MAE",
        "/ceiling",
        "/average",
        "gap",
        "calls",
        "hit",
        "95% interval",
        "return",
        "c.calls",
        "c.hit",
        "c.95% interval"
    );
    for (name, t) in &tallies {
        let m = t.abs_err / t.n.max(1) as f64;
        let gap = (average - m) / (average - ceiling);
        let (lo, hi) = wilson(t.wins, t.calls);
        let hit = if t.calls > 0 {
            format!("{:.1}%", 100.0 * t.wins as f64 / t.calls as f64)
        } else {
            "-".to_owned()
        };
        let interval = if t.calls > 0 {
            format!("{:.1}%-{:.1}%", 100.0 * lo, 100.0 * hi)
        } else {
            "-".to_owned()
        };
        let ret = if t.calls > 0 {
            format!("{:+.1}%", 100.0 * t.profit / t.calls as f64)
        } else {
            "-".to_owned()
        };
        let (clo, chi) = wilson(t.consensus_wins, t.consensus_calls);
        let (chit, cint) = if t.consensus_calls > 0 {
            (
                format!(
                    "{:.1}%",
                    100.0 * t.consensus_wins as f64 / t.consensus_calls as f64
                ),
                format!("{:.1}%-{:.1}%", 100.0 * clo, 100.0 * chi),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        println!(
            "{name:<20} {m:>7.3} {:>9.4} {:>9.4} {:>7.1}% {:>7} {hit:>8} {interval:>17} {ret:>9}   {:>7} {chit:>8} {cint:>17}",
            m / ceiling,
            m / average,
            100.0 * gap,
            t.calls,
            t.consensus_calls
        );
    }
}
