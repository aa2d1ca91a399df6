//! Expected minutes from who is available: each player's season minutes, rescaled so that the
//! team's available players share the game's 240 minutes. A star listed `Out` (not among D's
//! players at all) leaves his minutes to the others; a `Questionable` player counts half. Pure
//! arithmetic over the season's summaries before D (`docs/features.md`, features 26-28).

use std::collections::BTreeMap;

use crate::tables::Summary;

/// Minutes in a regulation game for one team (5 players x 48).
pub const TEAM_MINUTES: f64 = 240.0;

/// Most minutes a player is expected to play.
pub const MAX_MINUTES: f64 = 44.0;

/// One player of D, as the minutes model needs him.
#[derive(Debug, Clone, PartialEq)]
pub struct Available<'a> {
    /// Player key.
    pub player_lookup: &'a str,
    /// His team on D.
    pub team: &'a str,
    /// D's injury-report status, if listed.
    pub injury_status: Option<&'a str>,
}

/// A player's season view.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MinutesView {
    /// Mean minutes over his active games this season before D.
    pub minutes_avg_season: Option<f64>,
    /// Points per minute over those games.
    pub points_per_minute_season: Option<f64>,
    /// His season minutes rescaled to the team's available minutes.
    pub expected_minutes: Option<f64>,
}

/// The share of a player's minutes his status leaves available: the chance he plays.
pub fn availability(status: Option<&str>) -> f64 {
    match status {
        Some("Out") => 0.0,
        Some("Questionable" | "Doubtful") => 0.5,
        _ => 1.0,
    }
}

/// Every player's view, keyed by player, from the season's summaries before D (`history`,
/// keyed by player; only active games before `date` count).
pub fn expected_minutes(
    players: &[Available<'_>],
    history: &BTreeMap<String, Vec<Summary>>,
    date: jiff::civil::Date,
) -> BTreeMap<String, MinutesView> {
    let season = |p: &str| -> (Option<f64>, Option<f64>) {
        let games: Vec<&Summary> = history
            .get(p)
            .map(|v| {
                v.iter()
                    .filter(|s| s.is_active && s.game_date < date && s.minutes > 0.0)
                    .collect()
            })
            .unwrap_or_default();
        if games.is_empty() {
            return (None, None);
        }
        let minutes: f64 = games.iter().map(|s| s.minutes).sum();
        let points: f64 = games.iter().map(|s| s.points as f64).sum();
        (Some(minutes / games.len() as f64), Some(points / minutes))
    };
    let views: Vec<(Option<f64>, Option<f64>)> =
        players.iter().map(|p| season(p.player_lookup)).collect();
    let mut mass: BTreeMap<&str, f64> = BTreeMap::new();
    for (p, (m, _)) in players.iter().zip(&views) {
        *mass.entry(p.team).or_default() += availability(p.injury_status) * m.unwrap_or(0.0);
    }
    players
        .iter()
        .zip(views)
        .map(|(p, (m, ppm))| {
            let team = mass.get(p.team).copied().unwrap_or(0.0);
            let expected = m
                .filter(|_| team > 0.0)
                .map(|m| (m * TEAM_MINUTES / team).min(MAX_MINUTES));
            (
                p.player_lookup.to_owned(),
                MinutesView {
                    minutes_avg_season: m,
                    points_per_minute_season: ppm,
                    expected_minutes: expected,
                },
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::Date;

    fn game(p: &str, day: i8, minutes: f64, points: i64) -> Summary {
        Summary {
            player_lookup: p.into(),
            game_id: format!("g{day}"),
            game_date: Date::constant(2026, 1, day),
            team: "BOS".into(),
            minutes,
            points,
            usage_rate: Some(20.0),
            is_active: minutes > 0.0,
        }
    }

    #[test]
    fn available_players_share_the_team_s_minutes() {
        let mut h: BTreeMap<String, Vec<Summary>> = BTreeMap::new();
        // Five players averaging 40, 40, 40, 40 and 40 minutes; a sixth averaging 40 too.
        for p in ["a", "b", "c", "d", "e", "f"] {
            h.insert(
                p.into(),
                vec![
                    game(p, 1, 30.0, 10),
                    game(p, 2, 50.0, 30),
                    game(p, 20, 10.0, 99),
                ],
            );
        }
        // A DNP does not count.
        h.get_mut("a").unwrap().push(game("a", 3, 0.0, 0));
        let d = Date::constant(2026, 1, 10);
        let all: Vec<Available> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|p| Available {
                player_lookup: p,
                team: "BOS",
                injury_status: None,
            })
            .collect();
        let v = expected_minutes(&all, &h, d);
        let a = v["a"];
        assert_eq!(a.minutes_avg_season, Some(40.0));
        assert_eq!(a.points_per_minute_season, Some(0.5));
        // 6 x 40 = 240: each keeps his 40.
        assert!((a.expected_minutes.unwrap() - 40.0).abs() < 1e-9);
        // "f" is out (not among D's players) and "e" questionable: 4.5 x 40 share 240.
        let mut five = all[..5].to_vec();
        five[4].injury_status = Some("Questionable");
        let v = expected_minutes(&five, &h, d);
        assert!((v["a"].expected_minutes.unwrap() - MAX_MINUTES.min(240.0 / 4.5)).abs() < 1e-9);
        // A player with no games this season has no view and adds nothing.
        let mut with_rookie = all.clone();
        with_rookie.push(Available {
            player_lookup: "rookie",
            team: "BOS",
            injury_status: None,
        });
        let v = expected_minutes(&with_rookie, &h, d);
        assert_eq!(v["rookie"], MinutesView::default());
        assert!((v["b"].expected_minutes.unwrap() - 40.0).abs() < 1e-9);
    }
}
