//! The rows phase 6 reads: predictions (phase 5's table), D's results (phase 3's summary) and
//! its own graded rows and daily metrics (for the exports), as typed [`Record`]s.

use jiff::Timestamp;
use jiff::civil::Date;

use crate::tables::{Cells, Record, name};

/// One prediction (`nba_predictions.player_prop_predictions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Deterministic id.
    pub prediction_id: String,
    /// System.
    pub system_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// The player's team.
    pub team: String,
    /// Predicted points.
    pub predicted_points: f64,
    /// The line the call is made against.
    pub line: Option<f64>,
    /// The books of the line.
    pub line_bookmakers: Option<String>,
    /// When the books last updated the line.
    pub line_snapshot_at: Option<Timestamp>,
    /// American odds of OVER.
    pub over_price: Option<i64>,
    /// American odds of UNDER.
    pub under_price: Option<i64>,
    /// predicted - line.
    pub line_margin: Option<f64>,
    /// OVER, UNDER or PASS.
    pub recommendation: String,
    /// Probability (0-1) that the call is right.
    pub confidence: f64,
    /// Model or system version.
    pub model_version: String,
    /// `pre_tipoff` or `as_of_tipoff`.
    pub timing: String,
    /// The row to grade.
    pub is_active: bool,
}

impl Record for Prediction {
    const TABLE: (&'static str, &'static str) = name::PREDICTIONS;
    const COLUMNS: &'static [&'static str] = &[
        "prediction_id",
        "system_id",
        "player_lookup",
        "game_id",
        "game_date",
        "team_abbr",
        "predicted_points",
        "current_points_line",
        "line_bookmakers",
        "line_snapshot_at",
        "over_price",
        "under_price",
        "line_margin",
        "recommendation",
        "confidence_score",
        "model_version",
        "prediction_timing",
        "is_active",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            prediction_id: c.str("prediction_id")?,
            system_id: c.str("system_id")?,
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team: c.str("team_abbr")?,
            predicted_points: c.float("predicted_points")?,
            line: c.opt_float("current_points_line")?,
            line_bookmakers: c.opt_str("line_bookmakers")?,
            line_snapshot_at: c.opt_timestamp("line_snapshot_at")?,
            over_price: c.opt_int("over_price")?,
            under_price: c.opt_int("under_price")?,
            line_margin: c.opt_float("line_margin")?,
            recommendation: c.str("recommendation")?,
            confidence: c.float("confidence_score")?,
            model_version: c.str("model_version")?,
            timing: c.str("prediction_timing")?,
            is_active: c.bool("is_active")?,
        })
    }
}

/// D's result for one player-game (`nba_analytics.player_game_summary`).
#[derive(Debug, Clone, PartialEq)]
pub struct GameResult {
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Minutes (0 for a DNP).
    pub minutes: f64,
    /// Points.
    pub points: i64,
    /// Why he did not play.
    pub dnp_reason: Option<String>,
}

impl GameResult {
    /// A DNP: a reason is given, or no minutes were played.
    pub fn is_dnp(&self) -> bool {
        self.dnp_reason.is_some() || self.minutes <= 0.0
    }
}

impl Record for GameResult {
    const TABLE: (&'static str, &'static str) = name::PLAYER_GAME_SUMMARY;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "game_id",
        "minutes_played",
        "points",
        "dnp_reason",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            minutes: c.float("minutes_played")?,
            points: c.int("points")?,
            dnp_reason: c.opt_str("dnp_reason")?,
        })
    }
}

/// One graded prediction (`nba_predictions.prediction_accuracy`).
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    /// The prediction.
    pub prediction_id: String,
    /// System.
    pub system_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Team.
    pub team: String,
    /// `pre_tipoff` or `as_of_tipoff`.
    pub timing: String,
    /// Predicted points.
    pub predicted_points: f64,
    /// The line.
    pub line: Option<f64>,
    /// OVER, UNDER or PASS.
    pub recommendation: String,
    /// Probability that the call is right.
    pub confidence: f64,
    /// Points scored (None for VOID).
    pub actual_points: Option<i64>,
    /// WIN, LOSS, PUSH, PASS or VOID.
    pub outcome: String,
    /// |predicted - actual|.
    pub absolute_error: Option<f64>,
    /// predicted - actual.
    pub signed_error: Option<f64>,
    /// The price of the side called.
    pub price: Option<i64>,
    /// Units staked.
    pub units_staked: f64,
    /// Return.
    pub profit_units: f64,
}

impl Record for Graded {
    const TABLE: (&'static str, &'static str) = name::PREDICTION_ACCURACY;
    const COLUMNS: &'static [&'static str] = &[
        "prediction_id",
        "system_id",
        "player_lookup",
        "game_id",
        "game_date",
        "team_abbr",
        "prediction_timing",
        "predicted_points",
        "line_value",
        "recommendation",
        "confidence_score",
        "actual_points",
        "outcome",
        "absolute_error",
        "signed_error",
        "price_american",
        "units_staked",
        "profit_units",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            prediction_id: c.str("prediction_id")?,
            system_id: c.str("system_id")?,
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team: c.str("team_abbr")?,
            timing: c.str("prediction_timing")?,
            predicted_points: c.float("predicted_points")?,
            line: c.opt_float("line_value")?,
            recommendation: c.str("recommendation")?,
            confidence: c.float("confidence_score")?,
            actual_points: c.opt_int("actual_points")?,
            outcome: c.str("outcome")?,
            absolute_error: c.opt_float("absolute_error")?,
            signed_error: c.opt_float("signed_error")?,
            price: c.opt_int("price_american")?,
            units_staked: c.float("units_staked")?,
            profit_units: c.float("profit_units")?,
        })
    }
}

/// One system's day (`nba_predictions.prediction_daily_metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyMetrics {
    /// System.
    pub system_id: String,
    /// Active predictions.
    pub predictions: i64,
    /// With a result.
    pub graded: i64,
    /// DNPs.
    pub voided: i64,
    /// Without a result.
    pub ungraded: i64,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Mean signed error.
    pub bias: Option<f64>,
    /// OVER/UNDER calls graded WIN, LOSS or PUSH.
    pub calls: i64,
    /// WIN.
    pub wins: i64,
    /// LOSS.
    pub losses: i64,
    /// PUSH.
    pub pushes: i64,
    /// wins / (wins + losses).
    pub hit_rate: Option<f64>,
    /// Units staked.
    pub units_staked: f64,
    /// Return in units.
    pub return_units: f64,
    /// Return per unit staked.
    pub return_per_unit: Option<f64>,
}

impl Record for DailyMetrics {
    const TABLE: (&'static str, &'static str) = name::DAILY_METRICS;
    const COLUMNS: &'static [&'static str] = &[
        "system_id",
        "predictions",
        "graded",
        "voided",
        "ungraded",
        "mae",
        "bias",
        "calls",
        "wins",
        "losses",
        "pushes",
        "hit_rate",
        "units_staked",
        "return_units",
        "return_per_unit",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            system_id: c.str("system_id")?,
            predictions: c.int("predictions")?,
            graded: c.int("graded")?,
            voided: c.int("voided")?,
            ungraded: c.int("ungraded")?,
            mae: c.opt_float("mae")?,
            bias: c.opt_float("bias")?,
            calls: c.int("calls")?,
            wins: c.int("wins")?,
            losses: c.int("losses")?,
            pushes: c.int("pushes")?,
            hit_rate: c.opt_float("hit_rate")?,
            units_staked: c.float("units_staked")?,
            return_units: c.float("return_units")?,
            return_per_unit: c.opt_float("return_per_unit")?,
        })
    }
}
