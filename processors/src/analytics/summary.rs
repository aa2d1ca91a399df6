//! The post-game summaries of phase 3, as pure functions of D's box-score lines: one row per
//! player-game and per team-game. Formulas are documented in `docs/features.md`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use tipoff_warehouse::{Row, Value};

use crate::contract::Failure;
use crate::tables::{BoxLine, Prop, row};

/// Share of possessions assumed to end in a turnover. The box scores carry no turnovers (nor
/// offensive rebounds), so possessions are estimated from field-goal and free-throw attempts:
/// `(FGA + 0.44 * FTA) / (1 - TURNOVER_SHARE)`.
pub const TURNOVER_SHARE: f64 = 0.13;

/// Free throws that end a possession, per attempt (the usual 0.44).
pub const FT_POSSESSION_FACTOR: f64 = 0.44;

/// A team's totals in one game.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamTotals {
    /// Minutes of all its players.
    pub minutes: f64,
    /// Points.
    pub points: i64,
    /// Field goals made.
    pub fgm: i64,
    /// Field goals attempted.
    pub fga: i64,
    /// Threes made.
    pub fg3m: i64,
    /// Threes attempted.
    pub fg3a: i64,
    /// Free throws attempted.
    pub fta: i64,
}

impl TeamTotals {
    /// Possessions this team used, estimated (see [`TURNOVER_SHARE`]).
    pub fn possessions_estimate(&self) -> f64 {
        (self.fga as f64 + FT_POSSESSION_FACTOR * self.fta as f64) / (1.0 - TURNOVER_SHARE)
    }
}

/// Totals per (game, team).
pub fn team_totals(lines: &[BoxLine]) -> BTreeMap<(String, String), TeamTotals> {
    let mut out: BTreeMap<(String, String), TeamTotals> = BTreeMap::new();
    for l in lines {
        let t = out.entry((l.game_id.clone(), l.team.clone())).or_default();
        t.minutes += l.minutes;
        t.points += l.points;
        t.fgm += l.fgm;
        t.fga += l.fga;
        t.fg3m += l.fg3m;
        t.fg3a += l.fg3a;
        t.fta += l.fta;
    }
    out
}

/// Usage rate without turnovers: the share of the team's shooting possessions a player used
/// while on the floor, in percent:
/// `100 * (FGA + 0.44 FTA) * (team minutes / 5) / (minutes * (team FGA + 0.44 team FTA))`.
/// `None` for a player without minutes or a team without attempts.
pub fn usage_rate(fga: i64, fta: i64, minutes: f64, team: &TeamTotals) -> Option<f64> {
    let team_plays = team.fga as f64 + FT_POSSESSION_FACTOR * team.fta as f64;
    if minutes <= 0.0 || team_plays <= 0.0 {
        return None;
    }
    let plays = fga as f64 + FT_POSSESSION_FACTOR * fta as f64;
    Some(100.0 * plays * (team.minutes / 5.0) / (minutes * team_plays))
}

/// The consensus line: the median of the bookmakers' lines (the mean of the middle two for an
/// even count).
pub fn consensus(mut lines: Vec<f64>) -> Option<f64> {
    if lines.is_empty() {
        return None;
    }
    lines.sort_by(f64::total_cmp);
    let n = lines.len();
    Some(if n % 2 == 1 {
        lines[n / 2]
    } else {
        (lines[n / 2 - 1] + lines[n / 2]) / 2.0
    })
}

/// Consensus points line per (game, player).
pub fn consensus_lines(props: &[Prop]) -> BTreeMap<(String, String), f64> {
    let mut by: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for p in props {
        by.entry((p.game_id.clone(), p.player_lookup.clone()))
            .or_default()
            .push(p.line);
    }
    by.into_iter()
        .filter_map(|(k, v)| consensus(v).map(|c| (k, c)))
        .collect()
}

/// `OVER`, `UNDER` or `PUSH` of points against a line.
pub fn over_under(points: i64, line: f64) -> &'static str {
    let p = points as f64;
    if p > line {
        "OVER"
    } else if p < line {
        "UNDER"
    } else {
        "PUSH"
    }
}

/// `nba_analytics.player_game_summary` rows, in (game, team, player) order.
pub fn player_rows(
    lines: &[BoxLine],
    props: &[Prop],
    date: Date,
    processed_at: Timestamp,
) -> Result<Vec<Row>, Failure> {
    let totals = team_totals(lines);
    let consensus = consensus_lines(props);
    let mut sorted: Vec<&BoxLine> = lines.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.game_id, &a.team, &a.player_lookup).cmp(&(&b.game_id, &b.team, &b.player_lookup))
    });
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(sorted.len());
    for l in sorted {
        if !seen.insert((&l.game_id, &l.player_lookup)) {
            return Err(Failure::Permanent(format!(
                "nba_raw.bdl_player_boxscores {date}: {} has two lines in game {}",
                l.player_lookup, l.game_id
            )));
        }
        let team = totals
            .get(&(l.game_id.clone(), l.team.clone()))
            .cloned()
            .unwrap_or_default();
        let active = l.minutes > 0.0;
        let line = consensus
            .get(&(l.game_id.clone(), l.player_lookup.clone()))
            .copied();
        let result = match (active, line) {
            (true, Some(line)) => Value::from(over_under(l.points, line)),
            _ => Value::Null,
        };
        out.push(row(vec![
            ("player_lookup", l.player_lookup.as_str().into()),
            ("game_id", l.game_id.as_str().into()),
            ("game_date", date.into()),
            ("team_abbr", l.team.as_str().into()),
            ("opponent_team_abbr", l.opponent.as_str().into()),
            ("is_home", l.is_home.into()),
            ("minutes_played", l.minutes.into()),
            ("points", l.points.into()),
            ("fg_makes", l.fgm.into()),
            ("fg_attempts", l.fga.into()),
            ("three_pt_makes", l.fg3m.into()),
            ("three_pt_attempts", l.fg3a.into()),
            ("ft_makes", l.ftm.into()),
            ("ft_attempts", l.fta.into()),
            ("rebounds", l.rebounds.into()),
            ("assists", l.assists.into()),
            (
                "usage_rate",
                usage_rate(l.fga, l.fta, l.minutes, &team).into(),
            ),
            ("points_line", line.into()),
            ("over_under_result", result),
            ("is_active", active.into()),
            ("dnp_reason", l.dnp_reason.clone().into()),
            ("processed_at", Value::timestamp(processed_at)),
        ]));
    }
    Ok(out)
}

/// One game's two sides: (game, team, opponent, is_home, team totals, opponent totals).
type Side<'a> = (
    &'a str,
    &'a str,
    &'a str,
    bool,
    &'a TeamTotals,
    &'a TeamTotals,
);

fn sides<'a>(
    lines: &'a [BoxLine],
    totals: &'a BTreeMap<(String, String), TeamTotals>,
) -> Vec<Side<'a>> {
    let mut keys: BTreeMap<(&str, &str), (&str, bool)> = BTreeMap::new();
    for l in lines {
        keys.insert(
            (l.game_id.as_str(), l.team.as_str()),
            (l.opponent.as_str(), l.is_home),
        );
    }
    keys.into_iter()
        .filter_map(|((game, team), (opp, home))| {
            let t = totals.get(&(game.to_owned(), team.to_owned()))?;
            let o = totals.get(&(game.to_owned(), opp.to_owned()))?;
            Some((game, team, opp, home, t, o))
        })
        .collect()
}

/// A game's possessions: the mean of both teams' estimates (possessions alternate, so both
/// teams have about as many).
pub fn game_possessions(team: &TeamTotals, opponent: &TeamTotals) -> f64 {
    (team.possessions_estimate() + opponent.possessions_estimate()) / 2.0
}

fn per_100(points: i64, possessions: f64) -> f64 {
    if possessions > 0.0 {
        100.0 * points as f64 / possessions
    } else {
        0.0
    }
}

/// `nba_analytics.team_offense_game_summary` rows.
pub fn team_offense_rows(lines: &[BoxLine], date: Date, processed_at: Timestamp) -> Vec<Row> {
    let totals = team_totals(lines);
    sides(lines, &totals)
        .into_iter()
        .map(|(game, team, opp, home, t, o)| {
            let poss = game_possessions(t, o);
            row(vec![
                ("game_id", game.into()),
                ("game_date", date.into()),
                ("team_abbr", team.into()),
                ("opponent_team_abbr", opp.into()),
                ("is_home", home.into()),
                ("points_scored", t.points.into()),
                ("fg_attempts", t.fga.into()),
                ("fg_makes", t.fgm.into()),
                ("three_pt_attempts", t.fg3a.into()),
                ("three_pt_makes", t.fg3m.into()),
                ("ft_attempts", t.fta.into()),
                ("possessions", poss.into()),
                ("possessions_estimated", true.into()),
                ("offensive_rating", per_100(t.points, poss).into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect()
}

/// `nba_analytics.team_defense_game_summary` rows.
pub fn team_defense_rows(lines: &[BoxLine], date: Date, processed_at: Timestamp) -> Vec<Row> {
    let totals = team_totals(lines);
    sides(lines, &totals)
        .into_iter()
        .map(|(game, team, opp, _home, t, o)| {
            let poss = game_possessions(t, o);
            row(vec![
                ("game_id", game.into()),
                ("game_date", date.into()),
                ("team_abbr", team.into()),
                ("opponent_team_abbr", opp.into()),
                ("points_allowed", o.points.into()),
                ("opp_fg_attempts", o.fga.into()),
                ("opp_fg_makes", o.fgm.into()),
                ("opp_three_pt_makes", o.fg3m.into()),
                ("defensive_rating", per_100(o.points, poss).into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn usage_rate_is_the_share_of_team_plays_per_minute_on_the_floor() {
        let team = TeamTotals {
            minutes: 240.0,
            fga: 80,
            fta: 25,
            ..TeamTotals::default()
        };
        // A player who takes a fifth of the plays in a fifth of the minutes: 20 %.
        let u = usage_rate(16, 5, 48.0, &team).unwrap();
        assert!((u - 20.0).abs() < 1e-9, "{u}");
        assert_eq!(usage_rate(0, 0, 0.0, &team), None);
    }

    #[test]
    fn consensus_is_the_median_and_over_under_compares_points() {
        assert_eq!(consensus(vec![20.5, 21.5]), Some(21.0));
        assert_eq!(consensus(vec![19.5, 22.5, 20.5]), Some(20.5));
        assert_eq!(consensus(vec![]), None);
        assert_eq!(over_under(21, 20.5), "OVER");
        assert_eq!(over_under(20, 20.5), "UNDER");
        assert_eq!(over_under(21, 21.0), "PUSH");
    }

    #[test]
    fn possessions_are_estimated_without_turnovers() {
        let t = TeamTotals {
            fga: 87,
            fta: 25,
            ..TeamTotals::default()
        };
        let p = t.possessions_estimate();
        assert!((p - (87.0 + 11.0) / 0.87).abs() < 1e-9, "{p}");
    }
}
