//! The published JSON files (`docs/exports.md`): their shapes as typed structs, built from the
//! warehouse's rows by pure functions. Fields serialize in declaration order, lists are sorted
//! and floats are rounded to [`DECIMALS`] places, so the same rows always give the same bytes.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tipoff_warehouse::storage::ObjectKey;

use super::records::{DailyMetrics, Graded, Prediction};
use crate::contract::Failure;

/// Version segment of every export key (`exports/v1/...`): a breaking change of a file's shape
/// gets a new version beside the old one.
pub const VERSION: &str = "v1";

/// Decimal places of every float in an export.
pub const DECIMALS: i32 = 3;

/// The kinds of export files, `exports/v1/<kind>/<date>.json`.
pub mod kind {
    /// The date's active predictions.
    pub const PREDICTIONS: &str = "predictions";
    /// The date's graded predictions and daily metrics.
    pub const RESULTS: &str = "results";
    /// Scores so far, while the date's games are played.
    pub const LIVE: &str = "live";
    /// Active predictions against the points so far.
    pub const LIVE_GRADING: &str = "live-grading";
}

/// `exports/v1/<kind>/<date>.json`.
pub fn key(kind: &str, date: Date) -> Result<ObjectKey, Failure> {
    let file = format!("{date}.json");
    ObjectKey::from_segments(["exports", VERSION, kind, file.as_str()])
        .map_err(|e| Failure::Permanent(format!("export key {kind}/{file}: {e}")))
}

/// `x` rounded to [`DECIMALS`] places (and -0 written as 0).
pub fn round(x: f64) -> f64 {
    let scale = 10f64.powi(DECIMALS);
    let r = (x * scale).round() / scale;
    if r == 0.0 { 0.0 } else { r }
}

fn round_opt(x: Option<f64>) -> Option<f64> {
    x.map(round)
}

/// The file's bytes: pretty JSON and a final newline.
pub fn to_bytes<T: Serialize>(doc: &T) -> Result<bytes::Bytes, Failure> {
    let mut v = serde_json::to_vec_pretty(doc)
        .map_err(|e| Failure::Permanent(format!("serializing an export: {e}")))?;
    v.push(b'\n');
    Ok(v.into())
}

/// `exports/v1/predictions/<date>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionsFile {
    /// `predictions`.
    pub kind: String,
    /// Export format version (`v1`).
    pub version: String,
    /// The run's date.
    pub game_date: Date,
    /// One entry per system, by `system_id`.
    pub systems: Vec<SystemPredictions>,
}

/// One system's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemPredictions {
    /// The system.
    pub system_id: String,
    /// Counts of the calls.
    pub counts: CallCounts,
    /// By player, then game.
    pub predictions: Vec<ExportedPrediction>,
}

/// How many predictions and of which call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallCounts {
    /// All active predictions.
    pub predictions: u64,
    /// OVER calls.
    pub over: u64,
    /// UNDER calls.
    pub under: u64,
    /// PASS.
    pub pass: u64,
}

/// One active prediction as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedPrediction {
    /// Deterministic id.
    pub prediction_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// The player's team.
    pub team_abbr: String,
    /// Predicted points.
    pub predicted_points: f64,
    /// The line of the call (null: none posted).
    pub line: Option<f64>,
    /// The books of the line.
    pub line_bookmakers: Option<String>,
    /// When the books last updated the line (UTC).
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
    /// `pre_tipoff` or `as_of_tipoff`.
    pub prediction_timing: String,
    /// Model or system version.
    pub model_version: String,
}

impl ExportedPrediction {
    /// Back to a prediction (for live grading from the published file).
    pub fn to_prediction(&self, system_id: &str, date: Date) -> Prediction {
        Prediction {
            prediction_id: self.prediction_id.clone(),
            system_id: system_id.to_owned(),
            player_lookup: self.player_lookup.clone(),
            game_id: self.game_id.clone(),
            game_date: date,
            team: self.team_abbr.clone(),
            predicted_points: self.predicted_points,
            line: self.line,
            line_bookmakers: self.line_bookmakers.clone(),
            line_snapshot_at: self.line_snapshot_at,
            over_price: self.over_price,
            under_price: self.under_price,
            line_margin: self.line_margin,
            recommendation: self.recommendation.clone(),
            confidence: self.confidence,
            model_version: self.model_version.clone(),
            timing: self.prediction_timing.clone(),
            is_active: true,
        }
    }
}

fn sorted_by_system<T, K: Ord>(
    mut items: Vec<T>,
    system: impl Fn(&T) -> String,
    order: impl Fn(&T) -> K,
) -> Vec<(String, Vec<T>)> {
    items.sort_by_key(|a| (system(a), order(a)));
    let mut out: Vec<(String, Vec<T>)> = Vec::new();
    for it in items {
        let s = system(&it);
        match out.last_mut() {
            Some((last, v)) if *last == s => v.push(it),
            _ => out.push((s, vec![it])),
        }
    }
    out
}

/// The predictions file from D's active predictions.
pub fn predictions_file(date: Date, predictions: &[Prediction]) -> PredictionsFile {
    let active: Vec<&Prediction> = predictions.iter().filter(|p| p.is_active).collect();
    let groups = sorted_by_system(
        active,
        |p| p.system_id.clone(),
        |p| {
            (
                p.player_lookup.clone(),
                p.game_id.clone(),
                p.prediction_id.clone(),
            )
        },
    );
    let systems = groups
        .into_iter()
        .map(|(system_id, ps)| {
            let mut counts = CallCounts::default();
            let predictions = ps
                .into_iter()
                .map(|p| {
                    counts.predictions += 1;
                    match p.recommendation.as_str() {
                        "OVER" => counts.over += 1,
                        "UNDER" => counts.under += 1,
                        _ => counts.pass += 1,
                    }
                    ExportedPrediction {
                        prediction_id: p.prediction_id.clone(),
                        player_lookup: p.player_lookup.clone(),
                        game_id: p.game_id.clone(),
                        team_abbr: p.team.clone(),
                        predicted_points: round(p.predicted_points),
                        line: round_opt(p.line),
                        line_bookmakers: p.line_bookmakers.clone(),
                        line_snapshot_at: p.line_snapshot_at,
                        over_price: p.over_price,
                        under_price: p.under_price,
                        line_margin: round_opt(p.line_margin),
                        recommendation: p.recommendation.clone(),
                        confidence: round(p.confidence),
                        prediction_timing: p.timing.clone(),
                        model_version: p.model_version.clone(),
                    }
                })
                .collect();
            SystemPredictions {
                system_id,
                counts,
                predictions,
            }
        })
        .collect();
    PredictionsFile {
        kind: kind::PREDICTIONS.into(),
        version: VERSION.into(),
        game_date: date,
        systems,
    }
}

/// `exports/v1/results/<date>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsFile {
    /// `results`.
    pub kind: String,
    /// Export format version (`v1`).
    pub version: String,
    /// The run's date.
    pub game_date: Date,
    /// One entry per system, by `system_id`.
    pub systems: Vec<SystemResults>,
}

/// One system's graded day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemResults {
    /// The system.
    pub system_id: String,
    /// Its daily metrics.
    pub metrics: ExportedMetrics,
    /// Its graded predictions, by player then game.
    pub graded: Vec<ExportedGrade>,
}

/// A system's daily metrics as published (see `prediction_daily_metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedMetrics {
    /// Active predictions.
    pub predictions: i64,
    /// With a result.
    pub graded: i64,
    /// Voided by a DNP.
    pub voided: i64,
    /// Without a result.
    pub ungraded: i64,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Mean signed error.
    pub bias: Option<f64>,
    /// OVER/UNDER calls graded.
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
    /// Return in units at the posted prices.
    pub return_units: f64,
    /// Return per unit staked.
    pub return_per_unit: Option<f64>,
}

/// One graded prediction as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedGrade {
    /// The prediction.
    pub prediction_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Team.
    pub team_abbr: String,
    /// `pre_tipoff` or `as_of_tipoff`.
    pub prediction_timing: String,
    /// Predicted points.
    pub predicted_points: f64,
    /// The line.
    pub line: Option<f64>,
    /// OVER, UNDER or PASS.
    pub recommendation: String,
    /// Probability that the call is right.
    pub confidence: f64,
    /// Points scored (null for VOID).
    pub actual_points: Option<i64>,
    /// WIN, LOSS, PUSH, PASS or VOID.
    pub outcome: String,
    /// |predicted - actual|.
    pub absolute_error: Option<f64>,
    /// predicted - actual.
    pub signed_error: Option<f64>,
    /// American odds of the side called.
    pub price: Option<i64>,
    /// The 1-unit stake's return.
    pub profit_units: f64,
}

/// The results file from D's graded rows and metrics.
pub fn results_file(date: Date, graded: &[Graded], metrics: &[DailyMetrics]) -> ResultsFile {
    let groups = sorted_by_system(
        graded.to_vec(),
        |g| g.system_id.clone(),
        |g| {
            (
                g.player_lookup.clone(),
                g.game_id.clone(),
                g.prediction_id.clone(),
            )
        },
    );
    let mut systems: Vec<SystemResults> = metrics
        .iter()
        .map(|m| SystemResults {
            system_id: m.system_id.clone(),
            metrics: ExportedMetrics {
                predictions: m.predictions,
                graded: m.graded,
                voided: m.voided,
                ungraded: m.ungraded,
                mae: round_opt(m.mae),
                bias: round_opt(m.bias),
                calls: m.calls,
                wins: m.wins,
                losses: m.losses,
                pushes: m.pushes,
                hit_rate: round_opt(m.hit_rate),
                units_staked: round(m.units_staked),
                return_units: round(m.return_units),
                return_per_unit: round_opt(m.return_per_unit),
            },
            graded: Vec::new(),
        })
        .collect();
    systems.sort_by(|a, b| a.system_id.cmp(&b.system_id));
    for (system, rows) in groups {
        let Some(s) = systems.iter_mut().find(|s| s.system_id == system) else {
            continue;
        };
        s.graded = rows
            .into_iter()
            .map(|g| ExportedGrade {
                prediction_id: g.prediction_id,
                player_lookup: g.player_lookup,
                game_id: g.game_id,
                team_abbr: g.team,
                prediction_timing: g.timing,
                predicted_points: round(g.predicted_points),
                line: round_opt(g.line),
                recommendation: g.recommendation,
                confidence: round(g.confidence),
                actual_points: g.actual_points,
                outcome: g.outcome,
                absolute_error: round_opt(g.absolute_error),
                signed_error: round_opt(g.signed_error),
                price: g.price,
                profit_units: round(g.profit_units),
            })
            .collect();
    }
    ResultsFile {
        kind: kind::RESULTS.into(),
        version: VERSION.into(),
        game_date: date,
        systems,
    }
}

/// The `game_date` of an export file's bytes, whatever its kind.
pub fn game_date_of(bytes: &[u8]) -> Result<Date, String> {
    #[derive(Deserialize)]
    struct Head {
        game_date: Date,
    }
    serde_json::from_slice::<Head>(bytes)
        .map(|h| h.game_date)
        .map_err(|e| format!("no readable game_date: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_rounding_are_stable() {
        let d = jiff::civil::date(2026, 1, 14);
        assert_eq!(
            key(kind::LIVE_GRADING, d).unwrap().to_string(),
            "exports/v1/live-grading/2026-01-14.json"
        );
        assert_eq!(round(21.23456), 21.235);
        assert_eq!(round(-0.0001), 0.0);
        assert_eq!(round(2.0 / 3.0).to_string(), "0.667");
    }

    #[test]
    fn the_predictions_file_is_sorted_whatever_the_row_order() {
        let d = jiff::civil::date(2026, 1, 14);
        let p = |system: &str, player: &str, rec: &str| Prediction {
            prediction_id: format!("{system}{player}"),
            system_id: system.into(),
            player_lookup: player.into(),
            game_id: "g".into(),
            game_date: d,
            team: "BOS".into(),
            predicted_points: 20.123456,
            line: Some(19.5),
            line_bookmakers: None,
            line_snapshot_at: None,
            over_price: Some(-110),
            under_price: Some(-110),
            line_margin: Some(0.623456),
            recommendation: rec.into(),
            confidence: 0.5512,
            model_version: "v".into(),
            timing: "pre_tipoff".into(),
            is_active: true,
        };
        let rows = vec![
            p("b", "y", "OVER"),
            p("a", "z", "PASS"),
            p("b", "x", "UNDER"),
        ];
        let mut reversed = rows.clone();
        reversed.reverse();
        let one = to_bytes(&predictions_file(d, &rows)).unwrap();
        let two = to_bytes(&predictions_file(d, &reversed)).unwrap();
        assert_eq!(one, two);
        let f: PredictionsFile = serde_json::from_slice(&one).unwrap();
        assert_eq!(f.systems.len(), 2);
        assert_eq!(f.systems[1].predictions[0].player_lookup, "x");
        assert_eq!(
            f.systems[1].counts,
            CallCounts {
                predictions: 2,
                over: 1,
                under: 1,
                pass: 0
            }
        );
        assert_eq!(f.systems[0].predictions[0].predicted_points, 20.123);
        assert_eq!(game_date_of(&one).unwrap(), d);
    }
}
