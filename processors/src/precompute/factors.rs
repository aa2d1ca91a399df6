//! The composite factors of phase 4: four adjustments to a player's expected points, each in
//! points so they add up (`docs/features.md` gives each formula and why).

use std::collections::BTreeMap;

use super::records::{DailyCache, PlayerContext, PlayerZones, TeamContext, TeamZones};
use super::zones::zone_points;

/// Scoring multiplier on the second night of a back-to-back.
pub const BACK_TO_BACK_FACTOR: f64 = 0.97;
/// Scoring multiplier after three or more days of rest.
pub const RESTED_FACTOR: f64 = 1.01;

/// A player's four factors, in points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Factors {
    /// Rest: `baseline * (m - 1)`, `m` = 0.97 on a back-to-back, 1.01 after 3+ days' rest.
    pub fatigue: f64,
    /// Shot-zone mismatch: `sum_z FGA/game * share_z * (opp make rate allowed_z - league_z) *
    /// points_z`.
    pub shot_zone_mismatch: f64,
    /// Pace: `baseline * (mean(team pace, opponent pace) / league pace - 1)`.
    pub pace: f64,
    /// Usage spike: `sum over teammates listed Out of their last-10 points * the player's share
    /// of his available teammates' usage`.
    pub usage_spike: f64,
    /// Which inputs were missing (the factor is then 0).
    pub missing: Vec<&'static str>,
}

impl Factors {
    /// The sum of the four.
    pub fn total(&self) -> f64 {
        self.fatigue + self.shot_zone_mismatch + self.pace + self.usage_spike
    }
}

/// What the factors of one date are computed from.
pub struct Inputs<'a> {
    /// Daily cache by player.
    pub cache: &'a BTreeMap<String, DailyCache>,
    /// Player zones by player.
    pub player_zones: &'a BTreeMap<String, PlayerZones>,
    /// Team zones by team.
    pub team_zones: &'a BTreeMap<String, TeamZones>,
    /// Team contexts by team.
    pub team_context: &'a BTreeMap<String, TeamContext>,
    /// Last-10 points of the players listed Out, by team.
    pub out_points: &'a BTreeMap<String, Vec<f64>>,
    /// Total last-10 usage of each team's available players.
    pub team_usage: &'a BTreeMap<String, f64>,
}

/// The league's make rate allowed per zone: the mean over teams.
pub fn league_zone_pct(team_zones: &BTreeMap<String, TeamZones>) -> [Option<f64>; 3] {
    let mut out = [None; 3];
    for (z, slot) in out.iter_mut().enumerate() {
        let v: Vec<f64> = team_zones
            .values()
            .filter_map(|t| t.pct_allowed[z])
            .collect();
        *slot = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    }
    out
}

/// The league's pace on the date: the mean of the playing teams' last-10 pace.
pub fn league_pace(team_context: &BTreeMap<String, TeamContext>) -> Option<f64> {
    let v: Vec<f64> = team_context
        .values()
        .filter_map(|t| t.pace_last_10)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The factors of one player.
pub fn factors(p: &PlayerContext, inp: &Inputs<'_>) -> Factors {
    let mut f = Factors::default();
    let cache = inp.cache.get(&p.player_lookup);
    let baseline = cache.and_then(|c| c.points_avg_season.or(c.points_avg_last_10));
    let Some(baseline) = baseline else {
        f.missing.push("player_daily_cache");
        return f;
    };

    let m = if p.is_back_to_back || p.days_rest == Some(0) {
        BACK_TO_BACK_FACTOR
    } else if p.days_rest.is_some_and(|d| d >= 3) {
        RESTED_FACTOR
    } else {
        1.0
    };
    f.fatigue = baseline * (m - 1.0);

    let league = league_zone_pct(inp.team_zones);
    match (
        inp.player_zones.get(&p.player_lookup),
        inp.team_zones.get(&p.opponent),
    ) {
        (Some(pz), Some(tz)) => {
            let fga = pz.fga_per_game.unwrap_or(0.0);
            f.shot_zone_mismatch = (0..3)
                .filter_map(|z| {
                    Some(fga * pz.rates[z]? * (tz.pct_allowed[z]? - league[z]?) * zone_points(z))
                })
                .sum();
        }
        (None, _) => f.missing.push("player_shot_zone_analysis"),
        (_, None) => f.missing.push("team_defense_zone_analysis"),
    }

    match (inp.team_context.get(&p.team), league_pace(inp.team_context)) {
        (Some(tc), Some(lp)) if lp > 0.0 => match (tc.pace_last_10, tc.opponent_pace_last_10) {
            (Some(a), Some(b)) => f.pace = baseline * ((a + b) / 2.0 / lp - 1.0),
            _ => f.missing.push("upcoming_team_game_context"),
        },
        _ => f.missing.push("upcoming_team_game_context"),
    }

    let usage = cache.and_then(|c| c.usage_rate_last_10);
    let team_usage = inp.team_usage.get(&p.team).copied().unwrap_or(0.0);
    if let (Some(u), true) = (usage, team_usage > 0.0) {
        let out: f64 = inp
            .out_points
            .get(&p.team)
            .map(|v| v.iter().sum())
            .unwrap_or(0.0);
        f.usage_spike = out * u / team_usage;
    }
    f
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ctx(rest: Option<i64>) -> PlayerContext {
        PlayerContext {
            player_lookup: "a".into(),
            game_id: "g".into(),
            team: "BOS".into(),
            opponent: "NYK".into(),
            is_home: true,
            days_rest: rest,
            is_back_to_back: rest == Some(0),
            injury_status: None,
            current_points_line: None,
            game_spread: None,
            game_total: None,
            player_source: "expected".into(),
        }
    }

    fn cache(avg: f64, usage: f64) -> DailyCache {
        DailyCache {
            player_lookup: "a".into(),
            cache_date: jiff::civil::date(2026, 1, 2),
            games_played_season: 10,
            points_avg_last_5: Some(avg),
            points_avg_last_10: Some(avg),
            points_avg_season: Some(avg),
            points_std_last_10: Some(3.0),
            minutes_avg_last_10: Some(30.0),
            usage_rate_last_10: Some(usage),
        }
    }

    #[test]
    fn each_factor_follows_its_formula() {
        let caches = BTreeMap::from([("a".to_owned(), cache(20.0, 25.0))]);
        let pz = BTreeMap::from([(
            "a".to_owned(),
            PlayerZones {
                player_lookup: "a".into(),
                fga_per_game: Some(10.0),
                rates: [Some(0.5), Some(0.0), Some(0.5)],
            },
        )]);
        let tz = BTreeMap::from([
            (
                "NYK".to_owned(),
                TeamZones {
                    team: "NYK".into(),
                    pct_allowed: [Some(0.60), Some(0.40), Some(0.40)],
                },
            ),
            (
                "BOS".to_owned(),
                TeamZones {
                    team: "BOS".into(),
                    pct_allowed: [Some(0.50), Some(0.40), Some(0.30)],
                },
            ),
        ]);
        let tc = BTreeMap::from([
            (
                "BOS".to_owned(),
                TeamContext {
                    team: "BOS".into(),
                    implied_team_points: None,
                    pace_last_10: Some(100.0),
                    opponent_pace_last_10: Some(110.0),
                    opponent_defensive_rating_last_10: None,
                },
            ),
            (
                "NYK".to_owned(),
                TeamContext {
                    team: "NYK".into(),
                    implied_team_points: None,
                    pace_last_10: Some(110.0),
                    opponent_pace_last_10: Some(100.0),
                    opponent_defensive_rating_last_10: None,
                },
            ),
        ]);
        let out = BTreeMap::from([("BOS".to_owned(), vec![12.0])]);
        let usage = BTreeMap::from([("BOS".to_owned(), 100.0)]);
        let inp = Inputs {
            cache: &caches,
            player_zones: &pz,
            team_zones: &tz,
            team_context: &tc,
            out_points: &out,
            team_usage: &usage,
        };
        let f = factors(&ctx(Some(0)), &inp);
        assert!((f.fatigue - 20.0 * -0.03).abs() < 1e-9);
        // paint: 10 * .5 * (.60 - .55) * 2 = .5 ; three: 10 * .5 * (.40 - .35) * 3 = .75
        assert!((f.shot_zone_mismatch - 1.25).abs() < 1e-9, "{f:?}");
        // pace: 20 * (105 / 105 - 1) = 0
        assert!(f.pace.abs() < 1e-9);
        // usage: 12 * 25 / 100
        assert!((f.usage_spike - 3.0).abs() < 1e-9);
        assert!(f.missing.is_empty());
        assert!((f.total() - (-0.6 + 1.25 + 3.0)).abs() < 1e-9);

        let rested = factors(&ctx(Some(3)), &inp);
        assert!((rested.fatigue - 0.2).abs() < 1e-9);
        let unknown = factors(
            &PlayerContext {
                player_lookup: "nobody".into(),
                ..ctx(Some(1))
            },
            &inp,
        );
        assert_eq!(unknown.total(), 0.0);
        assert_eq!(unknown.missing, ["player_daily_cache"]);
    }
}
