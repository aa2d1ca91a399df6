//! Shot zones as of D, as pure functions of play-by-play before D: each team's defence by zone
//! and each player's shot mix and efficiency. The five play-by-play areas fold into three
//! zones: `paint` (restricted area and paint), `mid_range`, and `three` (corner and above the
//! break).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use tipoff_warehouse::{Row, Value};

use crate::tables::{Shot, TeamDefense, row};

/// The three zones, in column order.
pub const ZONES: [&str; 3] = ["paint", "mid_range", "three"];

/// Team games in a team's zone sample.
pub const SAMPLE_GAMES: usize = 10;

/// Player games in a shot-zone sample.
pub const PLAYER_SAMPLE_GAMES: usize = 10;

/// Points a made shot from the zone is worth.
pub fn zone_points(zone: usize) -> f64 {
    if zone == 2 { 3.0 } else { 2.0 }
}

/// The zone index of a play-by-play area, or `None` for a free throw or an unknown area.
pub fn zone_of(area: Option<&str>) -> Option<usize> {
    match area? {
        "restricted_area" | "paint" => Some(0),
        "mid_range" => Some(1),
        "corner_three" | "above_break_three" => Some(2),
        _ => None,
    }
}

/// Attempts and makes per zone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ZoneCounts {
    /// Attempts per zone.
    pub attempts: [u32; 3],
    /// Makes per zone.
    pub makes: [u32; 3],
}

impl ZoneCounts {
    fn add(&mut self, zone: usize, made: bool) {
        self.attempts[zone] += 1;
        self.makes[zone] += u32::from(made);
    }

    /// Make rate in a zone (`None` without attempts).
    pub fn pct(&self, zone: usize) -> Option<f64> {
        (self.attempts[zone] > 0)
            .then(|| f64::from(self.makes[zone]) / f64::from(self.attempts[zone]))
    }

    /// Share of attempts in a zone (`None` without attempts at all).
    pub fn rate(&self, zone: usize) -> Option<f64> {
        let total: u32 = self.attempts.iter().sum();
        (total > 0).then(|| f64::from(self.attempts[zone]) / f64::from(total))
    }

    /// All attempts.
    pub fn total_attempts(&self) -> u32 {
        self.attempts.iter().sum()
    }
}

/// The league's make rate per zone over every shot given.
pub fn league_pct(shots: &[Shot]) -> [Option<f64>; 3] {
    let mut c = ZoneCounts::default();
    for s in shots {
        if let Some(z) = zone_of(s.zone.as_deref()) {
            c.add(z, s.made);
        }
    }
    [c.pct(0), c.pct(1), c.pct(2)]
}

fn last_games<'a>(games: impl Iterator<Item = (&'a str, Date)>, n: usize) -> BTreeSet<&'a str> {
    let mut v: Vec<(&str, Date)> = games.collect::<BTreeSet<_>>().into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(n).map(|(g, _)| g).collect()
}

/// `nba_precompute.team_defense_zone_analysis` rows, one per team with games in the sample:
/// opponents' make rate per zone over the team's last [`SAMPLE_GAMES`] games, points allowed,
/// defensive rating, and the weakest zone (the largest make rate above the league's).
pub fn team_defense_rows(
    shots: &[Shot],
    defense: &[TeamDefense],
    teams_of: &BTreeMap<&str, (&str, &str)>,
    date: Date,
    processed_at: Timestamp,
) -> Vec<Row> {
    let league = league_pct(shots);
    // One pass over the shots: attempts and makes per (game, shooting team), and game dates.
    let mut by_side: BTreeMap<(&str, &str), ZoneCounts> = BTreeMap::new();
    let mut game_dates: BTreeMap<&str, Date> = BTreeMap::new();
    for s in shots {
        if let Some(z) = zone_of(s.zone.as_deref()) {
            by_side
                .entry((s.game_id.as_str(), s.team.as_str()))
                .or_default()
                .add(z, s.made);
        }
        game_dates.insert(s.game_id.as_str(), s.game_date);
    }
    // Games each team defended, with their dates.
    let mut games_of: BTreeMap<&str, BTreeSet<(&str, Date)>> = BTreeMap::new();
    for (game, date) in &game_dates {
        if let Some((home, away)) = teams_of.get(game) {
            for t in [*home, *away] {
                games_of.entry(t).or_default().insert((game, *date));
            }
        }
    }
    let mut out = Vec::new();
    for (team, games) in &games_of {
        let sample = last_games(games.iter().copied(), SAMPLE_GAMES);
        // The opponents' shots in the sample's games.
        let mut c = ZoneCounts::default();
        for game in &sample {
            for ((_, shooter), counts) in by_side
                .range((*game, "")..)
                .take_while(|((g, _), _)| g == game)
            {
                if shooter != team {
                    for z in 0..3 {
                        c.attempts[z] += counts.attempts[z];
                        c.makes[z] += counts.makes[z];
                    }
                }
            }
        }
        let def: Vec<&TeamDefense> = defense
            .iter()
            .filter(|d| d.team == *team && sample.contains(d.game_id.as_str()))
            .collect();
        let avg = |f: &dyn Fn(&TeamDefense) -> f64| -> Option<f64> {
            (!def.is_empty()).then(|| def.iter().map(|d| f(d)).sum::<f64>() / def.len() as f64)
        };
        let weakest = (0..3)
            .filter_map(|z| Some((z, c.pct(z)? - league[z]?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(z, _)| ZONES[z]);
        out.push(row(vec![
            ("team_abbr", (*team).into()),
            ("analysis_date", date.into()),
            (
                "games_in_sample",
                i64::try_from(sample.len()).unwrap_or(i64::MAX).into(),
            ),
            ("paint_pct_allowed", c.pct(0).into()),
            ("mid_range_pct_allowed", c.pct(1).into()),
            ("three_pt_pct_allowed", c.pct(2).into()),
            (
                "points_allowed_avg",
                avg(&|d| d.points_allowed as f64).into(),
            ),
            ("defensive_rating", avg(&|d| d.defensive_rating).into()),
            ("weakest_zone", weakest.into()),
            ("processed_at", Value::timestamp(processed_at)),
        ]));
    }
    out
}

/// `nba_precompute.player_shot_zone_analysis` rows, one per player with field-goal attempts
/// in his last [`PLAYER_SAMPLE_GAMES`] games of the sample: attempts per game, the share and
/// make rate per zone, and the zone he scores most from.
pub fn player_rows(shots: &[Shot], date: Date, processed_at: Timestamp) -> Vec<Row> {
    let mut by_player: BTreeMap<&str, Vec<&Shot>> = BTreeMap::new();
    for s in shots {
        if zone_of(s.zone.as_deref()).is_some() {
            by_player
                .entry(s.player_lookup.as_str())
                .or_default()
                .push(s);
        }
    }
    let mut out = Vec::new();
    for (player, shots) in by_player {
        let sample = last_games(
            shots.iter().map(|s| (s.game_id.as_str(), s.game_date)),
            PLAYER_SAMPLE_GAMES,
        );
        let mut c = ZoneCounts::default();
        let mut points = [0.0f64; 3];
        for s in shots.iter().filter(|s| sample.contains(s.game_id.as_str())) {
            if let Some(z) = zone_of(s.zone.as_deref()) {
                c.add(z, s.made);
                if s.made {
                    points[z] += zone_points(z);
                }
            }
        }
        let games = sample.len();
        let primary = (0..3)
            .filter(|z| c.attempts[*z] > 0)
            .max_by(|a, b| points[*a].total_cmp(&points[*b]).then(b.cmp(a)))
            .map(|z| ZONES[z]);
        out.push(row(vec![
            ("player_lookup", player.into()),
            ("analysis_date", date.into()),
            (
                "games_in_sample",
                i64::try_from(games).unwrap_or(i64::MAX).into(),
            ),
            (
                "fga_per_game",
                (games > 0)
                    .then(|| f64::from(c.total_attempts()) / games as f64)
                    .into(),
            ),
            ("paint_rate", c.rate(0).into()),
            ("mid_range_rate", c.rate(1).into()),
            ("three_pt_rate", c.rate(2).into()),
            ("paint_pct", c.pct(0).into()),
            ("mid_range_pct", c.pct(1).into()),
            ("three_pt_pct", c.pct(2).into()),
            ("primary_scoring_zone", primary.into()),
            ("processed_at", Value::timestamp(processed_at)),
        ]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn shot(game: &str, day: i8, player: &str, team: &str, zone: &str, made: bool) -> Shot {
        Shot {
            game_id: game.into(),
            game_date: jiff::civil::date(2026, 1, day),
            player_lookup: player.into(),
            team: team.into(),
            event_type: "shot".into(),
            zone: Some(zone.into()),
            made,
            points: 0,
        }
    }

    #[test]
    fn areas_fold_into_three_zones() {
        assert_eq!(zone_of(Some("restricted_area")), Some(0));
        assert_eq!(zone_of(Some("corner_three")), Some(2));
        assert_eq!(zone_of(None), None);
    }

    #[test]
    fn team_defence_counts_only_the_opponents_shots() {
        let shots = [
            shot("g1", 1, "a", "NYK", "paint", true),
            shot("g1", 1, "b", "NYK", "paint", false),
            shot("g1", 1, "c", "BOS", "paint", true), // BOS's own shot: not BOS's defence
        ];
        let teams = BTreeMap::from([("g1", ("BOS", "NYK"))]);
        let rows = team_defense_rows(
            &shots,
            &[],
            &teams,
            jiff::civil::date(2026, 1, 2),
            Timestamp::UNIX_EPOCH,
        );
        let bos = rows
            .iter()
            .find(|r| r["team_abbr"] == Value::from("BOS"))
            .unwrap();
        assert_eq!(bos["paint_pct_allowed"], Value::Float(0.5));
        assert_eq!(bos["three_pt_pct_allowed"], Value::Null);
    }

    #[test]
    fn player_zones_use_his_last_games_and_name_the_primary_zone() {
        let shots = [
            shot("g1", 1, "a", "BOS", "above_break_three", true),
            shot("g1", 1, "a", "BOS", "paint", true),
            shot("g2", 2, "a", "BOS", "corner_three", true),
            shot("g2", 2, "a", "BOS", "mid_range", false),
        ];
        let rows = player_rows(&shots, jiff::civil::date(2026, 1, 3), Timestamp::UNIX_EPOCH);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r["fga_per_game"], Value::Float(2.0));
        assert_eq!(r["three_pt_rate"], Value::Float(0.5));
        assert_eq!(r["primary_scoring_zone"], Value::from("three"));
    }
}
