//! Typed reads and rows of phase 5: the feature store's vectors, the books' quotes, and the
//! predictions table itself (a re-run reads it back to keep what it must not replace).

use jiff::Timestamp;
use jiff::civil::Date;
use tipoff_warehouse::{Row, Value};

use crate::features::FEATURES;
use crate::predict::calls::Quote;
use crate::tables::{Cells, Record, name, row};

/// One row of `nba_predictions.ml_feature_store_v2`, its vector in `FEATURES` order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// `feature_version`.
    pub feature_version: String,
    /// The vector; a feature missing from the JSON takes its default.
    pub features: Vec<f64>,
}

impl Record for FeatureRow {
    const TABLE: (&'static str, &'static str) = name::FEATURE_STORE;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "game_id",
        "game_date",
        "feature_version",
        "features_json",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        let json = c.str("features_json")?;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)
            .map_err(|e| format!("column `features_json` is not a JSON object: {e}"))?;
        let features = FEATURES
            .iter()
            .map(|f| {
                map.get(f.name)
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(f.default)
            })
            .collect();
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            feature_version: c.str("feature_version")?,
            features,
        })
    }
}

/// One book's quote for a player (`nba_raw.odds_api_player_points_props`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteRow {
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// The quote.
    pub quote: Quote,
}

impl Record for QuoteRow {
    const TABLE: (&'static str, &'static str) = name::PLAYER_PROPS;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "player_lookup",
        "bookmaker",
        "points_line",
        "over_price_american",
        "under_price_american",
        "snapshot_time",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            quote: Quote {
                bookmaker: c.str("bookmaker")?,
                line: c.float("points_line")?,
                over_price: c.int("over_price_american")?,
                under_price: c.int("under_price_american")?,
                snapshot: c.timestamp("snapshot_time")?,
            },
        })
    }
}

/// Whether a prediction was written before the date's first tip-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timing {
    /// Written before the first tip-off: actionable, and never replaced by a later one.
    PreTipoff,
    /// Reconstructed after the first tip-off from the pre-tip-off snapshots.
    AsOfTipoff,
}

impl Timing {
    /// The column's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::PreTipoff => "pre_tipoff",
            Timing::AsOfTipoff => "as_of_tipoff",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "pre_tipoff" => Ok(Timing::PreTipoff),
            "as_of_tipoff" => Ok(Timing::AsOfTipoff),
            other => Err(format!(
                "column `prediction_timing` is {other:?}, not pre_tipoff or as_of_tipoff"
            )),
        }
    }
}

/// One row of `nba_predictions.player_prop_predictions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Deterministic id.
    pub prediction_id: String,
    /// The system.
    pub system_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// The player's team.
    pub team_abbr: String,
    /// Predicted points.
    pub predicted_points: f64,
    /// The line of the call.
    pub current_points_line: Option<f64>,
    /// The books of that line.
    pub line_bookmakers: Option<String>,
    /// When they last updated it.
    pub line_snapshot_at: Option<Timestamp>,
    /// OVER's price.
    pub over_price: Option<i64>,
    /// UNDER's price.
    pub under_price: Option<i64>,
    /// Prediction minus line.
    pub line_margin: Option<f64>,
    /// OVER, UNDER or PASS.
    pub recommendation: String,
    /// Probability that the call is right.
    pub confidence_score: f64,
    /// Model or system version.
    pub model_version: String,
    /// Feature version.
    pub feature_version: Option<String>,
    /// Before or after the first tip-off.
    pub timing: Timing,
    /// The prediction graded for its system, player and game.
    pub is_active: bool,
    /// Shard bucket.
    pub player_bucket: i64,
    /// When written.
    pub created_at: Timestamp,
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
        "feature_version",
        "prediction_timing",
        "is_active",
        "player_bucket",
        "created_at",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            prediction_id: c.str("prediction_id")?,
            system_id: c.str("system_id")?,
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team_abbr: c.str("team_abbr")?,
            predicted_points: c.float("predicted_points")?,
            current_points_line: c.opt_float("current_points_line")?,
            line_bookmakers: c.opt_str("line_bookmakers")?,
            line_snapshot_at: c.opt_timestamp("line_snapshot_at")?,
            over_price: c.opt_int("over_price")?,
            under_price: c.opt_int("under_price")?,
            line_margin: c.opt_float("line_margin")?,
            recommendation: c.str("recommendation")?,
            confidence_score: c.float("confidence_score")?,
            model_version: c.str("model_version")?,
            feature_version: c.opt_str("feature_version")?,
            timing: Timing::parse(&c.str("prediction_timing")?)?,
            is_active: c.bool("is_active")?,
            player_bucket: c.int("player_bucket")?,
            created_at: c.timestamp("created_at")?,
        })
    }
}

impl Prediction {
    /// The row to write.
    pub fn to_row(&self) -> Row {
        row(vec![
            ("prediction_id", self.prediction_id.as_str().into()),
            ("system_id", self.system_id.as_str().into()),
            ("player_lookup", self.player_lookup.as_str().into()),
            ("game_id", self.game_id.as_str().into()),
            ("game_date", self.game_date.into()),
            ("team_abbr", self.team_abbr.as_str().into()),
            ("predicted_points", self.predicted_points.into()),
            ("current_points_line", self.current_points_line.into()),
            ("line_bookmakers", self.line_bookmakers.clone().into()),
            (
                "line_snapshot_at",
                self.line_snapshot_at.map_or(Value::Null, Value::timestamp),
            ),
            ("over_price", self.over_price.into()),
            ("under_price", self.under_price.into()),
            ("line_margin", self.line_margin.into()),
            ("recommendation", self.recommendation.as_str().into()),
            ("confidence_score", self.confidence_score.into()),
            ("model_version", self.model_version.as_str().into()),
            ("feature_version", self.feature_version.clone().into()),
            ("prediction_timing", self.timing.as_str().into()),
            ("is_active", self.is_active.into()),
            ("player_bucket", self.player_bucket.into()),
            ("created_at", Value::timestamp(self.created_at)),
        ])
    }
}
