//! The as-of view of a date D that phases 3 and 4 share: the season calendar (from D's stored
//! league schedule), who is expected to play on D, rolling player statistics before D, and the
//! `history-gap` check. Everything here reads games played before D and what was published
//! before D's first tip-off; D's own results enter only through [`PlayerSource::Played`], which
//! Backfill asks for and every row it feeds says so.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{Span, ToSpan};
use tipoff_crds::Mode;
use tipoff_warehouse::Warehouse;

use crate::contract::Failure;
use crate::runner::Ctx;
use crate::schedule::{self, Game, SCHEDULE_FILE};
use crate::scrape::{self, source};
use crate::tables::{self, InjuryLine, Summary};

/// Days of box scores that make a player part of a team's roster for D.
pub const ROSTER_WINDOW_DAYS: i64 = 30;

/// The season's games, from D's stored league schedule (one document for the whole season).
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Every game of the season, in date order.
    pub games: Vec<Game>,
}

impl Calendar {
    /// Reads `raw/schedule/<D>/scheduleLeagueV2.json` (phase 1 stored it).
    pub async fn load(ctx: &Ctx) -> Result<Self, Failure> {
        let k = scrape::key(source::SCHEDULE, ctx, SCHEDULE_FILE)?;
        let Some(payload) = ctx.get(&k).await? else {
            return Err(Failure::Permanent(format!(
                "no schedule payload at {k}: run scrape-schedule for {} first",
                ctx.args.date
            )));
        };
        let games = schedule::season_games(&payload)
            .map_err(|e| Failure::Permanent(format!("the stored schedule {k} is unusable: {e}")))?;
        Ok(Self { games })
    }

    /// The games of `date`.
    pub fn on(&self, date: Date) -> Vec<&Game> {
        self.games.iter().filter(|g| g.game_date == date).collect()
    }

    /// The season's first game date (or `date` itself for an empty schedule).
    pub fn season_start(&self, date: Date) -> Date {
        self.games.first().map_or(date, |g| g.game_date.min(date))
    }

    /// The dates before `date` that had games.
    pub fn game_dates_before(&self, date: Date) -> BTreeSet<Date> {
        self.games
            .iter()
            .map(|g| g.game_date)
            .filter(|d| *d < date)
            .collect()
    }

    /// The teams of a game (`home`, `away`), by id.
    pub fn teams_of(&self) -> BTreeMap<&str, (&str, &str)> {
        self.games
            .iter()
            .map(|g| (g.game_id.as_str(), (g.home.as_str(), g.away.as_str())))
            .collect()
    }

    /// Days of rest before `date` for `team` (0 on a back-to-back), from the schedule; `None`
    /// for its first game of the season.
    pub fn days_rest(&self, team: &str, date: Date) -> Option<i64> {
        let prev = self
            .games
            .iter()
            .filter(|g| g.game_date < date && (g.home == team || g.away == team))
            .map(|g| g.game_date)
            .max()?;
        let days = (date - prev).get_days();
        Some(i64::from(days) - 1)
    }
}

/// Whether players can be known for `date` before tip-off: Backfill takes who played; the
/// other modes need a team of the date that has played before it this season. On opening night
/// no box score exists yet, so nobody can be expected and the player tables stay empty (the
/// `rows-written` checks expect no rows then).
pub fn players_knowable(cal: &Calendar, date: Date, mode: Mode) -> bool {
    mode == Mode::Backfill
        || cal.on(date).iter().any(|g| {
            cal.days_rest(&g.home, date).is_some() || cal.days_rest(&g.away, date).is_some()
        })
}

/// The day before `date`.
pub fn day_before(date: Date) -> Date {
    date.checked_sub(1.day()).unwrap_or(date)
}

/// `date` minus `days`.
pub fn days_before(date: Date, days: i64) -> Date {
    date.checked_sub(Span::new().days(days)).unwrap_or(date)
}

/// Where a date's player list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerSource {
    /// Expected before tip-off: recent box scores, minus players listed Out (SameDay,
    /// Production).
    Expected,
    /// Who actually played on D (`player_game_summary`, Backfill): availability leaks from D's
    /// results into the features, so every row says so.
    Played,
}

impl PlayerSource {
    /// The source for a mode (docs/modes.md).
    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Backfill => Self::Played,
            Mode::Production | Mode::SameDay => Self::Expected,
        }
    }

    /// The value written to `player_source` and `data_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expected => "expected",
            Self::Played => "player_game_summary",
        }
    }
}

/// A player expected on D.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedPlayer {
    /// Player key.
    pub player_lookup: String,
    /// His team.
    pub team: String,
    /// The opponent.
    pub opponent: String,
    /// The game.
    pub game_id: String,
    /// Home game.
    pub is_home: bool,
    /// His status on D's injury report, if listed (never `Out`).
    pub injury_status: Option<String>,
}

/// The players expected to play on D before tip-off: each player whose latest box-score line
/// in the [`ROSTER_WINDOW_DAYS`] before D is for a team that plays on D, minus the players
/// D's injury report lists as `Out`. DNP lines count: a player who sat out with a coach's
/// decision is still on the roster. Sorted by game, team and player.
pub fn expected_players(
    games: &[&Game],
    recent: &[Summary],
    injuries: &[InjuryLine],
) -> Vec<ExpectedPlayer> {
    let mut latest: BTreeMap<&str, (&Summary, Date)> = BTreeMap::new();
    for s in recent {
        let e = latest
            .entry(s.player_lookup.as_str())
            .or_insert((s, s.game_date));
        if s.game_date > e.1 {
            *e = (s, s.game_date);
        }
    }
    let status: BTreeMap<&str, &str> = injuries
        .iter()
        .map(|i| (i.player_lookup.as_str(), i.status.as_str()))
        .collect();
    let mut out = Vec::new();
    for g in games {
        for (team, opponent, is_home) in [(&g.home, &g.away, true), (&g.away, &g.home, false)] {
            for (player, (s, _)) in &latest {
                if s.team != *team {
                    continue;
                }
                let st = status.get(player).copied();
                if st == Some("Out") {
                    continue;
                }
                out.push(ExpectedPlayer {
                    player_lookup: (*player).to_owned(),
                    team: team.clone(),
                    opponent: opponent.clone(),
                    game_id: g.game_id.clone(),
                    is_home,
                    injury_status: st.map(str::to_owned),
                });
            }
        }
    }
    out
}

/// The players who actually played on D (minutes > 0), from D's `player_game_summary`
/// (Backfill's player source).
pub fn played_players(
    games: &[&Game],
    summaries_on_d: &[Summary],
    injuries: &[InjuryLine],
) -> Vec<ExpectedPlayer> {
    let status: BTreeMap<&str, &str> = injuries
        .iter()
        .map(|i| (i.player_lookup.as_str(), i.status.as_str()))
        .collect();
    let mut out: Vec<ExpectedPlayer> = summaries_on_d
        .iter()
        .filter(|s| s.is_active)
        .filter_map(|s| {
            let g = games.iter().find(|g| g.game_id == s.game_id)?;
            let is_home = g.home == s.team;
            Some(ExpectedPlayer {
                player_lookup: s.player_lookup.clone(),
                team: s.team.clone(),
                opponent: if is_home {
                    g.away.clone()
                } else {
                    g.home.clone()
                },
                game_id: s.game_id.clone(),
                is_home,
                injury_status: status
                    .get(s.player_lookup.as_str())
                    .map(|s| (*s).to_owned()),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.game_id, &a.team, &a.player_lookup).cmp(&(&b.game_id, &b.team, &b.player_lookup))
    });
    out
}

/// Rolling statistics of one player before D, from his active games this season.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rolling {
    /// Active games this season before D.
    pub games_played_season: i64,
    /// Mean points over the last 5 active games.
    pub points_avg_last_5: Option<f64>,
    /// Mean points over the last 10.
    pub points_avg_last_10: Option<f64>,
    /// Mean points over the season.
    pub points_avg_season: Option<f64>,
    /// Population standard deviation of points over the last 10 (at least 2 games).
    pub points_std_last_10: Option<f64>,
    /// Mean minutes over the last 10.
    pub minutes_avg_last_10: Option<f64>,
    /// Mean usage rate over the last 10.
    pub usage_rate_last_10: Option<f64>,
    /// His latest team.
    pub team: Option<String>,
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Rolling statistics from one player's summaries (any order; inactive games are skipped;
/// only games before `date` count).
pub fn rolling(games: &[&Summary], date: Date) -> Rolling {
    let mut active: Vec<&Summary> = games
        .iter()
        .copied()
        .filter(|s| s.is_active && s.game_date < date)
        .collect();
    active.sort_by(|a, b| {
        b.game_date
            .cmp(&a.game_date)
            .then(a.game_id.cmp(&b.game_id))
    });
    let pts = |n: usize| -> Vec<f64> { active.iter().take(n).map(|s| s.points as f64).collect() };
    let last10 = pts(10);
    let std10 = (last10.len() >= 2).then(|| {
        let m = last10.iter().sum::<f64>() / last10.len() as f64;
        (last10.iter().map(|x| (x - m).powi(2)).sum::<f64>() / last10.len() as f64).sqrt()
    });
    let minutes: Vec<f64> = active.iter().take(10).map(|s| s.minutes).collect();
    let usage: Vec<f64> = active
        .iter()
        .take(10)
        .filter_map(|s| s.usage_rate)
        .collect();
    let latest_team = games
        .iter()
        .filter(|s| s.game_date < date)
        .max_by_key(|s| s.game_date)
        .map(|s| s.team.clone());
    Rolling {
        games_played_season: i64::try_from(active.len()).unwrap_or(i64::MAX),
        points_avg_last_5: mean(&pts(5)),
        points_avg_last_10: mean(&last10),
        points_avg_season: mean(&pts(usize::MAX)),
        points_std_last_10: std10,
        minutes_avg_last_10: mean(&minutes),
        usage_rate_last_10: mean(&usage),
        team: latest_team,
    }
}

/// Every player's summaries before D this season, by player.
pub async fn season_history(
    wh: &dyn Warehouse,
    cal: &Calendar,
    date: Date,
) -> Result<BTreeMap<String, Vec<Summary>>, Failure> {
    let rows = tables::read::<Summary>(wh, cal.season_start(date), day_before(date)).await?;
    Ok(tables::by_key(rows, |s| s.player_lookup.as_str()))
}

/// The `history-gap` check: dates before D with games but no `player_game_summary`
/// partition, named. Rolling features computed over a gap would silently use fewer games.
pub async fn history_gap_check(
    ctx: &mut Ctx,
    wh: &dyn Warehouse,
    cal: &Calendar,
) -> Result<(), Failure> {
    let date = ctx.args.date;
    let expected = cal.game_dates_before(date);
    let Some(first) = expected.first().copied() else {
        ctx.check("history-gap", true, Some(0), Some(0), vec![]);
        return Ok(());
    };
    let present = tables::dates_with_rows(
        wh,
        tables::name::PLAYER_GAME_SUMMARY,
        first,
        day_before(date),
    )
    .await?;
    let missing: Vec<String> = expected
        .iter()
        .filter(|d| !present.contains(d))
        .map(ToString::to_string)
        .collect();
    let n = i64::try_from(expected.len()).unwrap_or(i64::MAX);
    let observed = n - i64::try_from(missing.len()).unwrap_or(i64::MAX);
    ctx.check(
        "history-gap",
        missing.is_empty(),
        Some(observed),
        Some(n),
        missing,
    );
    Ok(())
}

/// The `player-coverage` check: players with a row among the expected ones, naming the
/// missing.
pub fn player_coverage_check(ctx: &mut Ctx, expected: &[String], covered: &BTreeSet<String>) {
    let missing: Vec<String> = expected
        .iter()
        .filter(|p| !covered.contains(*p))
        .cloned()
        .collect();
    let n = i64::try_from(expected.len()).unwrap_or(i64::MAX);
    let observed = n - i64::try_from(missing.len()).unwrap_or(i64::MAX);
    ctx.check(
        "player-coverage",
        missing.is_empty(),
        Some(observed),
        Some(n),
        missing,
    );
}

/// The `rows-written` check: a table that must not be empty for a date with games.
pub fn rows_written_check(ctx: &mut Ctx, table: &str, written: u64, expected_rows: bool) {
    let n = i64::try_from(written).unwrap_or(i64::MAX);
    let passed = written > 0 || !expected_rows;
    let missing = if passed {
        vec![]
    } else {
        vec![format!("{table} {}", ctx.args.date)]
    };
    // Expected is 0 when no rows are expected (SameDay's post-game summaries, a date without
    // games) and unset otherwise: any positive count will do.
    let expected = (!expected_rows).then_some(0);
    ctx.check("rows-written", passed, Some(n), expected, missing);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn s(player: &str, team: &str, day: i8, pts: i64, active: bool) -> Summary {
        Summary {
            player_lookup: player.into(),
            game_id: format!("g{day}"),
            game_date: jiff::civil::date(2026, 1, day),
            team: team.into(),
            minutes: if active { 30.0 } else { 0.0 },
            points: pts,
            usage_rate: active.then_some(20.0),
            is_active: active,
        }
    }

    #[test]
    fn rolling_uses_only_active_games_before_the_date() {
        let rows = [
            s("a", "BOS", 1, 10, true),
            s("a", "BOS", 2, 20, true),
            s("a", "BOS", 3, 0, false),
            s("a", "BOS", 4, 30, true),
            s("a", "BOS", 9, 99, true), // on or after D: never counted
        ];
        let refs: Vec<&Summary> = rows.iter().collect();
        let r = rolling(&refs, jiff::civil::date(2026, 1, 9));
        assert_eq!(r.games_played_season, 3);
        assert_eq!(r.points_avg_season, Some(20.0));
        assert_eq!(r.points_avg_last_5, Some(20.0));
        let sd = ((100.0 + 0.0 + 100.0) / 3.0f64).sqrt();
        assert!((r.points_std_last_10.unwrap() - sd).abs() < 1e-12);
        assert_eq!(r.team.as_deref(), Some("BOS"));
        let none = rolling(&[], jiff::civil::date(2026, 1, 9));
        assert_eq!(none.points_avg_season, None);
        assert_eq!(none.games_played_season, 0);
    }

    #[test]
    fn expected_players_are_the_recent_roster_minus_the_out_list() {
        let game = Game {
            game_id: "g".into(),
            game_date: jiff::civil::date(2026, 1, 9),
            status: 1,
            tipoff: jiff::Timestamp::UNIX_EPOCH,
            home: "BOS".into(),
            away: "NYK".into(),
            home_full: "Boston Celtics".into(),
            away_full: "New York Knicks".into(),
            home_score: None,
            away_score: None,
            arena: None,
        };
        let recent = [
            s("a", "BOS", 1, 10, true),
            s("b", "BOS", 1, 0, false), // DNP: still on the roster
            s("c", "BOS", 1, 5, true),
            s("d", "LAL", 1, 5, true), // not playing on D
            s("e", "NYK", 2, 5, true),
        ];
        let injuries = [
            InjuryLine {
                game_id: "g".into(),
                team: "BOS".into(),
                player_lookup: "c".into(),
                status: "Out".into(),
            },
            InjuryLine {
                game_id: "g".into(),
                team: "NYK".into(),
                player_lookup: "e".into(),
                status: "Questionable".into(),
            },
        ];
        let got = expected_players(&[&game], &recent, &injuries);
        let names: Vec<(&str, bool, Option<&str>)> = got
            .iter()
            .map(|p| {
                (
                    p.player_lookup.as_str(),
                    p.is_home,
                    p.injury_status.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a", true, None),
                ("b", true, None),
                ("e", false, Some("Questionable"))
            ]
        );
    }
}
