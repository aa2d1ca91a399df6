//! The pre-game contexts of phase 3, as pure functions: per expected player and per team
//! playing on D, from history before D, D's injury report and D's pre-tip-off markets.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use tipoff_warehouse::{Row, Value};

use crate::schedule::Game;
use crate::tables::{InjuryLine, LineOutcome, Prop, Summary, TeamDefense, TeamOffense, row};

use super::asof::{Calendar, ExpectedPlayer, PlayerSource, rolling};
use super::summary::consensus;

/// Team games that make a team's rolling ratings.
pub const TEAM_WINDOW_GAMES: usize = 10;

/// D's markets: consensus player lines, and spread and total per game.
#[derive(Debug, Default)]
pub struct Market {
    /// Consensus points line per player.
    lines: BTreeMap<String, f64>,
    /// Consensus spread per (game, team tricode), from that team's side.
    spreads: BTreeMap<(String, String), f64>,
    /// Consensus total per game.
    totals: BTreeMap<String, f64>,
}

impl Market {
    /// The consensus of D's props and game lines.
    pub fn new(games: &[&Game], props: &[Prop], lines: &[LineOutcome]) -> Self {
        let mut by_player: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for p in props {
            by_player
                .entry(p.player_lookup.clone())
                .or_default()
                .push(p.line);
        }
        let mut spreads: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        let mut totals: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for l in lines {
            let Some(g) = games.iter().find(|g| g.game_id == l.game_id) else {
                continue;
            };
            match l.market.as_str() {
                "spreads" => {
                    let team = if l.outcome == g.home_full {
                        &g.home
                    } else if l.outcome == g.away_full {
                        &g.away
                    } else {
                        continue;
                    };
                    spreads
                        .entry((g.game_id.clone(), team.clone()))
                        .or_default()
                        .push(l.point);
                }
                "totals" if l.outcome == "Over" => {
                    totals.entry(g.game_id.clone()).or_default().push(l.point);
                }
                _ => {}
            }
        }
        Self {
            lines: by_player
                .into_iter()
                .filter_map(|(k, v)| consensus(v).map(|c| (k, c)))
                .collect(),
            spreads: spreads
                .into_iter()
                .filter_map(|(k, v)| consensus(v).map(|c| (k, c)))
                .collect(),
            totals: totals
                .into_iter()
                .filter_map(|(k, v)| consensus(v).map(|c| (k, c)))
                .collect(),
        }
    }

    /// The player's consensus points line.
    pub fn player_line(&self, player: &str) -> Option<f64> {
        self.lines.get(player).copied()
    }

    /// The team's spread (negative: favoured).
    pub fn spread(&self, game: &str, team: &str) -> Option<f64> {
        self.spreads
            .get(&(game.to_owned(), team.to_owned()))
            .copied()
    }

    /// The game's total.
    pub fn total(&self, game: &str) -> Option<f64> {
        self.totals.get(game).copied()
    }

    /// Points the market implies for the team: `(total - spread) / 2`.
    pub fn implied_points(&self, game: &str, team: &str) -> Option<f64> {
        Some((self.total(game)? - self.spread(game, team)?) / 2.0)
    }
}

/// `nba_analytics.upcoming_player_game_context` rows, one per player, in the players' order.
#[allow(clippy::too_many_arguments)]
pub fn player_rows(
    players: &[ExpectedPlayer],
    history: &BTreeMap<String, Vec<Summary>>,
    cal: &Calendar,
    market: &Market,
    source: PlayerSource,
    date: Date,
    processed_at: Timestamp,
) -> Vec<Row> {
    players
        .iter()
        .map(|p| {
            let games: Vec<&Summary> = history
                .get(&p.player_lookup)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            let r = rolling(&games, date);
            let rest = cal.days_rest(&p.team, date);
            row(vec![
                ("player_lookup", p.player_lookup.as_str().into()),
                ("game_id", p.game_id.as_str().into()),
                ("game_date", date.into()),
                ("team_abbr", p.team.as_str().into()),
                ("opponent_team_abbr", p.opponent.as_str().into()),
                ("is_home", p.is_home.into()),
                ("days_rest", rest.into()),
                ("is_back_to_back", (rest == Some(0)).into()),
                ("injury_status", p.injury_status.clone().into()),
                (
                    "current_points_line",
                    market.player_line(&p.player_lookup).into(),
                ),
                ("game_spread", market.spread(&p.game_id, &p.team).into()),
                ("game_total", market.total(&p.game_id).into()),
                ("points_avg_last_5", r.points_avg_last_5.into()),
                ("points_avg_last_10", r.points_avg_last_10.into()),
                ("points_avg_season", r.points_avg_season.into()),
                ("games_played_season", r.games_played_season.into()),
                ("player_source", source.as_str().into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect()
}

/// A team's rolling ratings over its last [`TEAM_WINDOW_GAMES`] games before D.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamForm {
    /// Games this season before D.
    pub games_played_season: i64,
    /// Mean possessions (pace).
    pub pace: Option<f64>,
    /// Mean offensive rating.
    pub offensive_rating: Option<f64>,
    /// Mean defensive rating.
    pub defensive_rating: Option<f64>,
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The form of `team` from its summaries before `date`.
pub fn team_form(
    team: &str,
    offense: &[TeamOffense],
    defense: &[TeamDefense],
    date: Date,
) -> TeamForm {
    let mut off: Vec<&TeamOffense> = offense
        .iter()
        .filter(|o| o.team == team && o.game_date < date)
        .collect();
    off.sort_by_key(|o| std::cmp::Reverse(o.game_date));
    let mut def: Vec<&TeamDefense> = defense
        .iter()
        .filter(|d| d.team == team && d.game_date < date)
        .collect();
    def.sort_by_key(|d| std::cmp::Reverse(d.game_date));
    TeamForm {
        games_played_season: i64::try_from(off.len()).unwrap_or(i64::MAX),
        pace: mean(off.iter().take(TEAM_WINDOW_GAMES).map(|o| o.possessions)),
        offensive_rating: mean(
            off.iter()
                .take(TEAM_WINDOW_GAMES)
                .map(|o| o.offensive_rating),
        ),
        defensive_rating: mean(
            def.iter()
                .take(TEAM_WINDOW_GAMES)
                .map(|d| d.defensive_rating),
        ),
    }
}

/// `nba_analytics.upcoming_team_game_context` rows: two per game of D.
#[allow(clippy::too_many_arguments)]
pub fn team_rows(
    games: &[&Game],
    offense: &[TeamOffense],
    defense: &[TeamDefense],
    injuries: &[InjuryLine],
    cal: &Calendar,
    market: &Market,
    date: Date,
    processed_at: Timestamp,
) -> Vec<Row> {
    let mut out = Vec::new();
    for g in games {
        for (team, opp, home) in [(&g.home, &g.away, true), (&g.away, &g.home, false)] {
            let form = team_form(team, offense, defense, date);
            let opp_form = team_form(opp, offense, defense, date);
            let rest = cal.days_rest(team, date);
            let out_players = injuries
                .iter()
                .filter(|i| i.team == *team && i.status == "Out")
                .count();
            out.push(row(vec![
                ("team_abbr", team.as_str().into()),
                ("game_id", g.game_id.as_str().into()),
                ("game_date", date.into()),
                ("opponent_team_abbr", opp.as_str().into()),
                ("is_home", home.into()),
                ("days_rest", rest.into()),
                ("is_back_to_back", (rest == Some(0)).into()),
                ("game_spread", market.spread(&g.game_id, team).into()),
                ("game_total", market.total(&g.game_id).into()),
                (
                    "implied_team_points",
                    market.implied_points(&g.game_id, team).into(),
                ),
                ("pace_last_10", form.pace.into()),
                ("offensive_rating_last_10", form.offensive_rating.into()),
                ("defensive_rating_last_10", form.defensive_rating.into()),
                ("opponent_pace_last_10", opp_form.pace.into()),
                (
                    "opponent_defensive_rating_last_10",
                    opp_form.defensive_rating.into(),
                ),
                ("games_played_season", form.games_played_season.into()),
                (
                    "players_out",
                    i64::try_from(out_players).unwrap_or(i64::MAX).into(),
                ),
                ("processed_at", Value::timestamp(processed_at)),
            ]));
        }
    }
    out
}
