//! Typed reads of the tables phase 4 builds on: the phase 3 contexts and the phase 4 tables the
//! composite factors and the feature store join.

use jiff::civil::Date;

use crate::tables::{Cells, Record, name};

/// One row of `nba_analytics.upcoming_player_game_context`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerContext {
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Team.
    pub team: String,
    /// Opponent.
    pub opponent: String,
    /// Home game.
    pub is_home: bool,
    /// Days of rest.
    pub days_rest: Option<i64>,
    /// Back-to-back.
    pub is_back_to_back: bool,
    /// Injury-report status.
    pub injury_status: Option<String>,
    /// Consensus line.
    pub current_points_line: Option<f64>,
    /// Team's spread.
    pub game_spread: Option<f64>,
    /// Game total.
    pub game_total: Option<f64>,
    /// `expected` or `player_game_summary`.
    pub player_source: String,
}

impl Record for PlayerContext {
    const TABLE: (&'static str, &'static str) = name::UPCOMING_PLAYER;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "game_id",
        "team_abbr",
        "opponent_team_abbr",
        "is_home",
        "days_rest",
        "is_back_to_back",
        "injury_status",
        "current_points_line",
        "game_spread",
        "game_total",
        "player_source",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            team: c.str("team_abbr")?,
            opponent: c.str("opponent_team_abbr")?,
            is_home: c.bool("is_home")?,
            days_rest: c.opt_int("days_rest")?,
            is_back_to_back: c.bool("is_back_to_back")?,
            injury_status: c.opt_str("injury_status")?,
            current_points_line: c.opt_float("current_points_line")?,
            game_spread: c.opt_float("game_spread")?,
            game_total: c.opt_float("game_total")?,
            player_source: c.str("player_source")?,
        })
    }
}

/// One row of `nba_analytics.upcoming_team_game_context`.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamContext {
    /// Team.
    pub team: String,
    /// Implied points.
    pub implied_team_points: Option<f64>,
    /// Pace over the last 10.
    pub pace_last_10: Option<f64>,
    /// Opponent's pace over the last 10.
    pub opponent_pace_last_10: Option<f64>,
    /// Opponent's defensive rating over the last 10.
    pub opponent_defensive_rating_last_10: Option<f64>,
}

impl Record for TeamContext {
    const TABLE: (&'static str, &'static str) = name::UPCOMING_TEAM;
    const COLUMNS: &'static [&'static str] = &[
        "team_abbr",
        "implied_team_points",
        "pace_last_10",
        "opponent_pace_last_10",
        "opponent_defensive_rating_last_10",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            team: c.str("team_abbr")?,
            implied_team_points: c.opt_float("implied_team_points")?,
            pace_last_10: c.opt_float("pace_last_10")?,
            opponent_pace_last_10: c.opt_float("opponent_pace_last_10")?,
            opponent_defensive_rating_last_10: c.opt_float("opponent_defensive_rating_last_10")?,
        })
    }
}

/// One row of `nba_precompute.player_daily_cache`.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCache {
    /// Player key.
    pub player_lookup: String,
    /// The cache date.
    pub cache_date: Date,
    /// Active games this season before the date.
    pub games_played_season: i64,
    /// Mean points, last 5.
    pub points_avg_last_5: Option<f64>,
    /// Mean points, last 10.
    pub points_avg_last_10: Option<f64>,
    /// Mean points, season.
    pub points_avg_season: Option<f64>,
    /// Standard deviation of points, last 10.
    pub points_std_last_10: Option<f64>,
    /// Mean minutes, last 10.
    pub minutes_avg_last_10: Option<f64>,
    /// Mean usage rate, last 10.
    pub usage_rate_last_10: Option<f64>,
}

impl Record for DailyCache {
    const TABLE: (&'static str, &'static str) = name::PLAYER_DAILY_CACHE;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "cache_date",
        "games_played_season",
        "points_avg_last_5",
        "points_avg_last_10",
        "points_avg_season",
        "points_std_last_10",
        "minutes_avg_last_10",
        "usage_rate_last_10",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            cache_date: c.date("cache_date")?,
            games_played_season: c.int("games_played_season")?,
            points_avg_last_5: c.opt_float("points_avg_last_5")?,
            points_avg_last_10: c.opt_float("points_avg_last_10")?,
            points_avg_season: c.opt_float("points_avg_season")?,
            points_std_last_10: c.opt_float("points_std_last_10")?,
            minutes_avg_last_10: c.opt_float("minutes_avg_last_10")?,
            usage_rate_last_10: c.opt_float("usage_rate_last_10")?,
        })
    }
}

/// One row of `nba_precompute.player_shot_zone_analysis`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerZones {
    /// Player key.
    pub player_lookup: String,
    /// Attempts per game.
    pub fga_per_game: Option<f64>,
    /// Share of attempts per zone (paint, mid-range, three).
    pub rates: [Option<f64>; 3],
}

impl Record for PlayerZones {
    const TABLE: (&'static str, &'static str) = name::PLAYER_SHOT_ZONES;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "fga_per_game",
        "paint_rate",
        "mid_range_rate",
        "three_pt_rate",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            fga_per_game: c.opt_float("fga_per_game")?,
            rates: [
                c.opt_float("paint_rate")?,
                c.opt_float("mid_range_rate")?,
                c.opt_float("three_pt_rate")?,
            ],
        })
    }
}

/// One row of `nba_precompute.team_defense_zone_analysis`.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamZones {
    /// Team.
    pub team: String,
    /// Opponents' make rate per zone (paint, mid-range, three).
    pub pct_allowed: [Option<f64>; 3],
}

impl Record for TeamZones {
    const TABLE: (&'static str, &'static str) = name::TEAM_DEFENSE_ZONES;
    const COLUMNS: &'static [&'static str] = &[
        "team_abbr",
        "paint_pct_allowed",
        "mid_range_pct_allowed",
        "three_pt_pct_allowed",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            team: c.str("team_abbr")?,
            pct_allowed: [
                c.opt_float("paint_pct_allowed")?,
                c.opt_float("mid_range_pct_allowed")?,
                c.opt_float("three_pt_pct_allowed")?,
            ],
        })
    }
}

/// One row of `nba_precompute.player_composite_factors`.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    /// Player key.
    pub player_lookup: String,
    /// Fatigue, in points.
    pub fatigue_score: f64,
    /// Shot-zone mismatch, in points.
    pub shot_zone_mismatch_score: f64,
    /// Pace, in points.
    pub pace_score: f64,
    /// Usage spike, in points.
    pub usage_spike_score: f64,
}

impl Record for Composite {
    const TABLE: (&'static str, &'static str) = name::COMPOSITE_FACTORS;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "fatigue_score",
        "shot_zone_mismatch_score",
        "pace_score",
        "usage_spike_score",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            fatigue_score: c.float("fatigue_score")?,
            shot_zone_mismatch_score: c.float("shot_zone_mismatch_score")?,
            pace_score: c.float("pace_score")?,
            usage_spike_score: c.float("usage_spike_score")?,
        })
    }
}
