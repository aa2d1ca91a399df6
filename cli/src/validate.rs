//! `tipoff validate DATE [--sample N]`: the spot check the seeds' validation did by hand
//! ("rolling_avg, usage_rate: 100% (5/5)"). For N players of the date it recomputes, from the
//! raw box scores and with this module's own arithmetic (not the processors' functions), the
//! usage rate of D's game and the rolling averages before D, and compares them with what
//! phases 3 and 4 wrote. It prints every comparison and fails on any mismatch.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;
use tipoff_warehouse::{Row, TableRef, Value, Warehouse};

use crate::error::{CliError, Result};

/// The largest difference that still counts as equal (both sides are f64 sums of the same
/// integers; anything above this is a different computation).
pub const TOLERANCE: f64 = 1e-6;

/// One comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The player.
    pub player: String,
    /// `table.column`.
    pub metric: String,
    /// Recomputed from the raw box scores.
    pub recomputed: Option<f64>,
    /// As phases 3-4 wrote it.
    pub stored: Option<f64>,
    /// Whether they agree.
    pub ok: bool,
}

/// The outcome of a validation.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The date.
    pub date: String,
    /// The players sampled.
    pub players: Vec<String>,
    /// Every comparison.
    pub comparisons: Vec<Comparison>,
}

impl Report {
    /// Comparisons that failed.
    pub fn mismatches(&self) -> usize {
        self.comparisons.iter().filter(|c| !c.ok).count()
    }
}

/// One raw box-score line, as this module reads it.
struct Line {
    game: String,
    date: Date,
    player: String,
    team: String,
    minutes: f64,
    points: f64,
    fga: f64,
    fta: f64,
}

fn num(r: &Row, col: &str) -> Option<f64> {
    match r.get(col)? {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn text(r: &Row, col: &str) -> Option<String> {
    match r.get(col)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn day(r: &Row, col: &str) -> Option<Date> {
    match r.get(col)? {
        Value::Date(d) => Some(*d),
        _ => None,
    }
}

async fn read(wh: &dyn Warehouse, t: &TableRef, from: Date, to: Date) -> Result<Vec<Row>> {
    match wh.read_range(t, from, to, None).await {
        Ok(r) => Ok(r),
        Err(e) if e.category() == "TableNotFound" => Ok(Vec::new()),
        Err(e) => Err(CliError::Other(format!("reading {t}: {e}"))),
    }
}

fn lines(rows: &[Row]) -> Result<Vec<Line>> {
    rows.iter()
        .map(|r| {
            Some(Line {
                game: text(r, "game_id")?,
                date: day(r, "game_date")?,
                player: text(r, "player_lookup")?,
                team: text(r, "team_abbr")?,
                minutes: num(r, "minutes")?,
                points: num(r, "points")?,
                fga: num(r, "fga")?,
                fta: num(r, "fta")?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            CliError::Other("nba_raw.bdl_player_boxscores has a row without a needed column".into())
        })
}

/// Usage per (game, player): the share of the team's field-goal and free-throw plays the
/// player used per minute on the floor (no turnovers in the box score).
fn usage_by_game(lines: &[Line]) -> BTreeMap<(String, String), f64> {
    // (game, team) -> (minutes, plays)
    let mut team: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
    for l in lines {
        let e = team.entry((&l.game, &l.team)).or_insert((0.0, 0.0));
        e.0 += l.minutes;
        e.1 += l.fga + 0.44 * l.fta;
    }
    let mut out = BTreeMap::new();
    for l in lines {
        let (team_minutes, team_plays) = team[&(l.game.as_str(), l.team.as_str())];
        if l.minutes > 0.0 && team_plays > 0.0 {
            let mine = l.fga + 0.44 * l.fta;
            out.insert(
                (l.game.clone(), l.player.clone()),
                100.0 * mine * team_minutes / 5.0 / (l.minutes * team_plays),
            );
        }
    }
    out
}

fn avg(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// The start of the NBA season `date` belongs to: seasons tip off in October, so 1 August of the
/// autumn's year bounds it without reaching into the previous season.
pub fn season_start(date: Date) -> Date {
    let year = if date.month() >= 8 {
        date.year()
    } else {
        date.year() - 1
    };
    jiff::civil::date(year, 8, 1)
}

/// A deterministic pick of `n` players: ordered by a hash of the seed and the name.
fn sample(mut players: Vec<String>, n: usize, seed: u64) -> Vec<String> {
    let key = |p: &str| {
        // FNV-1a: stable across builds and platforms, unlike the std hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    players.sort_by_key(|p| (key(p), p.clone()));
    players.truncate(n);
    players.sort();
    players
}

fn compare(
    out: &mut Vec<Comparison>,
    player: &str,
    metric: &str,
    mine: Option<f64>,
    stored: Option<f64>,
) {
    let ok = match (mine, stored) {
        (Some(a), Some(b)) => (a - b).abs() <= TOLERANCE,
        (None, None) => true,
        _ => false,
    };
    out.push(Comparison {
        player: player.to_owned(),
        metric: metric.to_owned(),
        recomputed: mine,
        stored,
        ok,
    });
}

/// Validates `date` in the warehouse: N players of D (those of `upcoming_player_game_context`,
/// sampled with `seed`).
pub async fn validate(wh: &dyn Warehouse, date: Date, n: usize, seed: u64) -> Result<Report> {
    let ctx_t = TableRef::new("nba_analytics", "upcoming_player_game_context");
    let cache_t = TableRef::new("nba_precompute", "player_daily_cache");
    let pgs_t = TableRef::new("nba_analytics", "player_game_summary");
    let raw_t = TableRef::new("nba_raw", "bdl_player_boxscores");
    let ctx = read(wh, &ctx_t, date, date).await?;
    if ctx.is_empty() {
        return Err(CliError::NotFound(format!(
            "{ctx_t} has no rows for {date}: phases 3-4 have not run for it"
        )));
    }
    let players = sample(
        ctx.iter()
            .filter_map(|r| text(r, "player_lookup"))
            .collect(),
        n,
        seed,
    );
    let before = date
        .yesterday()
        .map_err(|e| CliError::Usage(format!("{date}: {e}")))?;
    let history = lines(&read(wh, &raw_t, season_start(date), before).await?)?;
    let today = lines(&read(wh, &raw_t, date, date).await?)?;
    let usage_hist = usage_by_game(&history);
    let usage_today = usage_by_game(&today);
    let by_player = |rows: &[Row]| -> BTreeMap<String, Row> {
        rows.iter()
            .filter_map(|r| Some((text(r, "player_lookup")?, r.clone())))
            .collect()
    };
    let ctx = by_player(&ctx);
    let cache = by_player(&read(wh, &cache_t, date, date).await?);
    let pgs = by_player(&read(wh, &pgs_t, date, date).await?);

    let mut comparisons = Vec::new();
    for p in &players {
        let mut games: Vec<&Line> = history
            .iter()
            .filter(|l| &l.player == p && l.minutes > 0.0)
            .collect();
        games.sort_by(|a, b| b.date.cmp(&a.date).then(a.game.cmp(&b.game)));
        let pts: Vec<f64> = games.iter().map(|l| l.points).collect();
        let last = |k: usize| avg(&pts[..pts.len().min(k)]);
        let minutes: Vec<f64> = games.iter().take(10).map(|l| l.minutes).collect();
        let usage: Vec<f64> = games
            .iter()
            .take(10)
            .filter_map(|l| usage_hist.get(&(l.game.clone(), l.player.clone())).copied())
            .collect();
        let c = ctx.get(p);
        compare(
            &mut comparisons,
            p,
            "upcoming_player_game_context.points_avg_last_5",
            last(5),
            c.and_then(|r| num(r, "points_avg_last_5")),
        );
        compare(
            &mut comparisons,
            p,
            "upcoming_player_game_context.points_avg_last_10",
            last(10),
            c.and_then(|r| num(r, "points_avg_last_10")),
        );
        compare(
            &mut comparisons,
            p,
            "upcoming_player_game_context.points_avg_season",
            avg(&pts),
            c.and_then(|r| num(r, "points_avg_season")),
        );
        let k = cache.get(p);
        compare(
            &mut comparisons,
            p,
            "player_daily_cache.points_avg_last_10",
            last(10),
            k.and_then(|r| num(r, "points_avg_last_10")),
        );
        compare(
            &mut comparisons,
            p,
            "player_daily_cache.minutes_avg_last_10",
            avg(&minutes),
            k.and_then(|r| num(r, "minutes_avg_last_10")),
        );
        compare(
            &mut comparisons,
            p,
            "player_daily_cache.usage_rate_last_10",
            avg(&usage),
            k.and_then(|r| num(r, "usage_rate_last_10")),
        );
        // D's own usage rate exists once D's results are loaded (Production, Backfill).
        if let Some(row) = pgs.get(p) {
            let game = text(row, "game_id").unwrap_or_default();
            compare(
                &mut comparisons,
                p,
                "player_game_summary.usage_rate",
                usage_today.get(&(game, p.clone())).copied(),
                num(row, "usage_rate"),
            );
        }
    }
    Ok(Report {
        date: date.to_string(),
        players,
        comparisons,
    })
}

/// Prints a report as text.
pub fn print(report: &Report) {
    println!(
        "validate {}: {} players, {} comparisons",
        report.date,
        report.players.len(),
        report.comparisons.len()
    );
    let f = |v: Option<f64>| v.map_or_else(|| "NULL".to_owned(), |v| format!("{v:.4}"));
    for c in &report.comparisons {
        println!(
            "  {:<4} {:<24} {:<48} recomputed {:>10}  stored {:>10}",
            if c.ok { "ok" } else { "FAIL" },
            c.player,
            c.metric,
            f(c.recomputed),
            f(c.stored)
        );
    }
    let total = report.comparisons.len();
    let ok = total - report.mismatches();
    println!("{ok} of {total} match");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_bounded() {
        let all: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let a = sample(all.clone(), 5, 7);
        assert_eq!(a, sample(all.clone(), 5, 7));
        assert_eq!(a.len(), 5);
        assert_ne!(a, sample(all.clone(), 5, 8));
        assert_eq!(sample(all, 50, 1).len(), 20);
    }

    #[test]
    fn seasons_start_in_august_of_the_autumn_year() {
        assert_eq!(
            season_start(jiff::civil::date(2026, 1, 14)),
            jiff::civil::date(2025, 8, 1)
        );
        assert_eq!(
            season_start(jiff::civil::date(2025, 11, 2)),
            jiff::civil::date(2025, 8, 1)
        );
    }
}
