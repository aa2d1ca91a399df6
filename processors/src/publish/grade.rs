//! Grading, as pure functions of D's active predictions and D's results: each prediction's
//! outcome, errors and return at the posted price, and each system's daily metrics. The rules
//! are in `docs/data.md` (`prediction_accuracy`, `prediction_daily_metrics`).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use tipoff_warehouse::{Row, Value};

use super::records::{DailyMetrics, GameResult, Prediction};
use crate::tables::row;

/// How a graded prediction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// An OVER/UNDER call that was right.
    Win,
    /// An OVER/UNDER call that was wrong.
    Loss,
    /// Actual points equal the line: the stake comes back.
    Push,
    /// No call.
    Pass,
    /// The player did not play: the prediction is void.
    Void,
}

impl Outcome {
    /// The `outcome` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Win => "WIN",
            Outcome::Loss => "LOSS",
            Outcome::Push => "PUSH",
            Outcome::Pass => "PASS",
            Outcome::Void => "VOID",
        }
    }

    /// `prediction_correct`: right or wrong only for WIN and LOSS.
    pub fn correct(self) -> Option<bool> {
        match self {
            Outcome::Win => Some(true),
            Outcome::Loss => Some(false),
            _ => None,
        }
    }
}

/// One prediction's grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// How it ended.
    pub outcome: Outcome,
    /// Points scored (None for VOID).
    pub actual_points: Option<i64>,
    /// Minutes played.
    pub minutes: f64,
    /// |predicted - actual| (None for VOID).
    pub absolute_error: Option<f64>,
    /// predicted - actual (None for VOID).
    pub signed_error: Option<f64>,
    /// American odds of the side called, if posted.
    pub price: Option<i64>,
    /// 1 for a priced call graded WIN, LOSS or PUSH, else 0.
    pub units_staked: f64,
    /// The stake's return.
    pub profit_units: f64,
}

/// The profit of a winning 1-unit stake at American odds `price`: `price / 100` for positive
/// odds, `100 / |price|` for negative odds. Odds between -100 and +100 do not exist.
pub fn payout(price: i64) -> Result<f64, String> {
    match price {
        p if p >= 100 => Ok(p as f64 / 100.0),
        p if p <= -100 => Ok(100.0 / (-p) as f64),
        p => Err(format!("price {p} is not American odds (|odds| >= 100)")),
    }
}

/// Grades one active prediction against the player's result. An error describes a malformed
/// prediction (an unknown recommendation, a call without a line, impossible odds).
pub fn grade(p: &Prediction, result: &GameResult) -> Result<Grade, String> {
    let call = match p.recommendation.as_str() {
        "OVER" | "UNDER" => true,
        "PASS" => false,
        other => {
            return Err(format!(
                "recommendation {other:?} is not OVER, UNDER or PASS"
            ));
        }
    };
    if call && p.line.is_none() {
        return Err(format!("{} without current_points_line", p.recommendation));
    }
    let price = match (p.recommendation.as_str(), call) {
        ("OVER", _) => p.over_price,
        ("UNDER", _) => p.under_price,
        _ => None,
    };
    let win_profit = price.map(payout).transpose()?;
    if result.is_dnp() {
        return Ok(Grade {
            outcome: Outcome::Void,
            actual_points: None,
            minutes: result.minutes.max(0.0),
            absolute_error: None,
            signed_error: None,
            price,
            units_staked: 0.0,
            profit_units: 0.0,
        });
    }
    let actual = result.points as f64;
    let signed = p.predicted_points - actual;
    let outcome = match (call, p.line) {
        (true, Some(line)) if actual == line => Outcome::Push,
        (true, Some(line)) => {
            let over = actual > line;
            if over == (p.recommendation == "OVER") {
                Outcome::Win
            } else {
                Outcome::Loss
            }
        }
        _ => Outcome::Pass,
    };
    let (units_staked, profit_units) = match (outcome, win_profit) {
        (Outcome::Win, Some(w)) => (1.0, w),
        (Outcome::Loss, Some(_)) => (1.0, -1.0),
        (Outcome::Push, Some(_)) => (1.0, 0.0),
        _ => (0.0, 0.0),
    };
    Ok(Grade {
        outcome,
        actual_points: Some(result.points),
        minutes: result.minutes,
        absolute_error: Some(signed.abs()),
        signed_error: Some(signed),
        price,
        units_staked,
        profit_units,
    })
}

/// D's grading: every active prediction graded or named as ungraded.
#[derive(Debug, Clone, Default)]
pub struct Grading {
    /// Graded (including VOID), in (system, player, game) order.
    pub graded: Vec<(Prediction, Grade)>,
    /// Active predictions without a result (no box-score line, no DNP).
    pub ungraded: Vec<Prediction>,
}

/// Grades D's active predictions (inactive ones are superseded and skipped). An error names
/// the malformed prediction; two active rows for one system, player and game are one.
pub fn grade_all(predictions: &[Prediction], results: &[GameResult]) -> Result<Grading, String> {
    let by_player: BTreeMap<(&str, &str), &GameResult> = results
        .iter()
        .map(|r| ((r.game_id.as_str(), r.player_lookup.as_str()), r))
        .collect();
    let mut active: Vec<&Prediction> = predictions.iter().filter(|p| p.is_active).collect();
    active.sort_by(|a, b| {
        (&a.system_id, &a.player_lookup, &a.game_id, &a.prediction_id).cmp(&(
            &b.system_id,
            &b.player_lookup,
            &b.game_id,
            &b.prediction_id,
        ))
    });
    let mut seen = BTreeSet::new();
    let mut out = Grading::default();
    for p in active {
        if !seen.insert((&p.system_id, &p.player_lookup, &p.game_id)) {
            return Err(format!(
                "{} has two active predictions for {} in game {}",
                p.system_id, p.player_lookup, p.game_id
            ));
        }
        match by_player.get(&(p.game_id.as_str(), p.player_lookup.as_str())) {
            Some(r) => {
                let g = grade(p, r).map_err(|e| format!("prediction {}: {e}", p.prediction_id))?;
                out.graded.push((p.clone(), g));
            }
            None => out.ungraded.push(p.clone()),
        }
    }
    Ok(out)
}

/// Each system's metrics for the date, in system order. Sums run in the graded rows' order,
/// so the same rows always give the same bytes.
pub fn daily_metrics(grading: &Grading) -> Vec<DailyMetrics> {
    let mut by: BTreeMap<&str, DailyMetrics> = BTreeMap::new();
    let blank = |system: &str| DailyMetrics {
        system_id: system.to_owned(),
        predictions: 0,
        graded: 0,
        voided: 0,
        ungraded: 0,
        mae: None,
        bias: None,
        calls: 0,
        wins: 0,
        losses: 0,
        pushes: 0,
        hit_rate: None,
        units_staked: 0.0,
        return_units: 0.0,
        return_per_unit: None,
    };
    let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (p, g) in &grading.graded {
        let m = by
            .entry(p.system_id.as_str())
            .or_insert_with(|| blank(&p.system_id));
        m.predictions += 1;
        match g.outcome {
            Outcome::Void => m.voided += 1,
            o => {
                m.graded += 1;
                let s = sums.entry(p.system_id.as_str()).or_default();
                s.0 += g.absolute_error.unwrap_or(0.0);
                s.1 += g.signed_error.unwrap_or(0.0);
                match o {
                    Outcome::Win => m.wins += 1,
                    Outcome::Loss => m.losses += 1,
                    Outcome::Push => m.pushes += 1,
                    _ => {}
                }
                if o != Outcome::Pass {
                    m.calls += 1;
                }
            }
        }
        m.units_staked += g.units_staked;
        m.return_units += g.profit_units;
    }
    for p in &grading.ungraded {
        let m = by
            .entry(p.system_id.as_str())
            .or_insert_with(|| blank(&p.system_id));
        m.predictions += 1;
        m.ungraded += 1;
    }
    for (system, m) in &mut by {
        if let Some((abs, signed)) = sums.get(system)
            && m.graded > 0
        {
            m.mae = Some(abs / m.graded as f64);
            m.bias = Some(signed / m.graded as f64);
        }
        let decided = m.wins + m.losses;
        m.hit_rate = (decided > 0).then(|| m.wins as f64 / decided as f64);
        m.return_per_unit = (m.units_staked > 0.0).then(|| m.return_units / m.units_staked);
    }
    by.into_values().collect()
}

/// `nba_predictions.prediction_accuracy` rows, in (system, player, game) order.
pub fn accuracy_rows(grading: &Grading, date: Date, processed_at: Timestamp) -> Vec<Row> {
    grading
        .graded
        .iter()
        .map(|(p, g)| {
            row(vec![
                ("prediction_id", p.prediction_id.as_str().into()),
                ("system_id", p.system_id.as_str().into()),
                ("player_lookup", p.player_lookup.as_str().into()),
                ("game_id", p.game_id.as_str().into()),
                ("game_date", date.into()),
                ("team_abbr", p.team.as_str().into()),
                ("prediction_timing", p.timing.as_str().into()),
                ("model_version", p.model_version.as_str().into()),
                ("predicted_points", p.predicted_points.into()),
                ("line_value", p.line.into()),
                ("recommendation", p.recommendation.as_str().into()),
                ("confidence_score", p.confidence.into()),
                ("actual_points", g.actual_points.into()),
                ("minutes_played", g.minutes.into()),
                ("outcome", g.outcome.as_str().into()),
                ("prediction_correct", g.outcome.correct().into()),
                ("absolute_error", g.absolute_error.into()),
                ("signed_error", g.signed_error.into()),
                ("price_american", g.price.into()),
                ("units_staked", g.units_staked.into()),
                ("profit_units", g.profit_units.into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect()
}

/// `nba_predictions.prediction_daily_metrics` rows, one per system.
pub fn metrics_rows(metrics: &[DailyMetrics], date: Date, processed_at: Timestamp) -> Vec<Row> {
    metrics
        .iter()
        .map(|m| {
            row(vec![
                ("game_date", date.into()),
                ("system_id", m.system_id.as_str().into()),
                ("predictions", m.predictions.into()),
                ("graded", m.graded.into()),
                ("voided", m.voided.into()),
                ("ungraded", m.ungraded.into()),
                ("mae", m.mae.into()),
                ("bias", m.bias.into()),
                ("calls", m.calls.into()),
                ("wins", m.wins.into()),
                ("losses", m.losses.into()),
                ("pushes", m.pushes.into()),
                ("hit_rate", m.hit_rate.into()),
                ("units_staked", m.units_staked.into()),
                ("return_units", m.return_units.into()),
                ("return_per_unit", m.return_per_unit.into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pred(
        system: &str,
        player: &str,
        rec: &str,
        predicted: f64,
        line: Option<f64>,
    ) -> Prediction {
        Prediction {
            prediction_id: format!("{system}-{player}"),
            system_id: system.into(),
            player_lookup: player.into(),
            game_id: "g1".into(),
            game_date: jiff::civil::date(2026, 1, 14),
            team: "BOS".into(),
            predicted_points: predicted,
            line,
            line_bookmakers: Some("draftkings,fanduel".into()),
            line_snapshot_at: None,
            over_price: Some(-110),
            under_price: Some(120),
            line_margin: line.map(|l| predicted - l),
            recommendation: rec.into(),
            confidence: 0.55,
            model_version: "v1".into(),
            timing: "pre_tipoff".into(),
            is_active: true,
        }
    }

    fn result(player: &str, points: i64, minutes: f64) -> GameResult {
        GameResult {
            player_lookup: player.into(),
            game_id: "g1".into(),
            minutes,
            points,
            dnp_reason: (minutes == 0.0).then(|| "DNP - Coach's Decision".into()),
        }
    }

    #[test]
    fn over_wins_above_the_line_and_loses_below_at_the_posted_price() {
        let p = pred("s", "a", "OVER", 24.0, Some(21.5));
        let win = grade(&p, &result("a", 25, 30.0)).unwrap();
        assert_eq!(win.outcome, Outcome::Win);
        assert_eq!(win.outcome.correct(), Some(true));
        assert_eq!(win.price, Some(-110));
        assert!((win.profit_units - 100.0 / 110.0).abs() < 1e-12);
        assert_eq!(win.units_staked, 1.0);
        assert_eq!(
            (win.absolute_error, win.signed_error),
            (Some(1.0), Some(-1.0))
        );
        let loss = grade(&p, &result("a", 18, 30.0)).unwrap();
        assert_eq!(loss.outcome, Outcome::Loss);
        assert_eq!(loss.outcome.correct(), Some(false));
        assert_eq!((loss.units_staked, loss.profit_units), (1.0, -1.0));
        assert_eq!(loss.signed_error, Some(6.0));
    }

    #[test]
    fn under_wins_below_the_line_at_plus_odds() {
        let p = pred("s", "a", "UNDER", 15.0, Some(17.5));
        let win = grade(&p, &result("a", 12, 28.0)).unwrap();
        assert_eq!(win.outcome, Outcome::Win);
        assert_eq!(win.price, Some(120));
        assert!((win.profit_units - 1.2).abs() < 1e-12);
        let loss = grade(&p, &result("a", 20, 28.0)).unwrap();
        assert_eq!((loss.outcome, loss.profit_units), (Outcome::Loss, -1.0));
    }

    #[test]
    fn pass_is_neither_right_nor_wrong_and_stakes_nothing() {
        let p = pred("s", "a", "PASS", 20.2, Some(20.5));
        let g = grade(&p, &result("a", 30, 30.0)).unwrap();
        assert_eq!(g.outcome, Outcome::Pass);
        assert_eq!(g.outcome.correct(), None);
        assert_eq!((g.units_staked, g.profit_units, g.price), (0.0, 0.0, None));
        // Still an error: a PASS counts in MAE.
        assert!((g.absolute_error.unwrap() - 9.8).abs() < 1e-9);
        // A PASS without a line is fine; a call without one is malformed.
        assert_eq!(
            grade(&pred("s", "a", "PASS", 20.0, None), &result("a", 1, 5.0))
                .unwrap()
                .outcome,
            Outcome::Pass
        );
        let err = grade(&pred("s", "a", "OVER", 20.0, None), &result("a", 1, 5.0)).unwrap_err();
        assert!(err.contains("OVER without current_points_line"), "{err}");
    }

    #[test]
    fn a_push_on_a_whole_line_returns_the_stake() {
        let p = pred("s", "a", "UNDER", 18.0, Some(20.0));
        let g = grade(&p, &result("a", 20, 33.0)).unwrap();
        assert_eq!(g.outcome, Outcome::Push);
        assert_eq!(g.outcome.correct(), None);
        assert_eq!((g.units_staked, g.profit_units), (1.0, 0.0));
        assert_eq!(g.absolute_error, Some(2.0));
    }

    #[test]
    fn a_dnp_voids_the_prediction() {
        let p = pred("s", "a", "OVER", 22.0, Some(19.5));
        let g = grade(&p, &result("a", 0, 0.0)).unwrap();
        assert_eq!(g.outcome, Outcome::Void);
        assert_eq!(g.outcome.correct(), None);
        assert_eq!((g.actual_points, g.absolute_error), (None, None));
        assert_eq!((g.units_staked, g.profit_units), (0.0, 0.0));
        // A reason alone voids too (minutes recorded, but flagged DNP).
        let mut r = result("a", 0, 2.0);
        r.dnp_reason = Some("DNP - Injury".into());
        assert_eq!(grade(&p, &r).unwrap().outcome, Outcome::Void);
    }

    #[test]
    fn odds_and_malformed_rows_are_refused() {
        assert_eq!(payout(150).unwrap(), 1.5);
        assert_eq!(payout(-200).unwrap(), 0.5);
        assert_eq!(payout(100).unwrap(), 1.0);
        assert!(payout(-99).is_err() && payout(0).is_err());
        let mut p = pred("s", "a", "OVER", 22.0, Some(19.5));
        p.over_price = Some(50);
        assert!(grade(&p, &result("a", 25, 30.0)).is_err());
        p.recommendation = "LEAN_OVER".into();
        let err = grade(&p, &result("a", 25, 30.0)).unwrap_err();
        assert!(err.contains("LEAN_OVER"), "{err}");
    }

    #[test]
    fn an_unpriced_call_is_graded_but_stakes_nothing() {
        let mut p = pred("s", "a", "OVER", 22.0, Some(19.5));
        p.over_price = None;
        let g = grade(&p, &result("a", 25, 30.0)).unwrap();
        assert_eq!(g.outcome, Outcome::Win);
        assert_eq!((g.units_staked, g.profit_units, g.price), (0.0, 0.0, None));
    }

    #[test]
    fn metrics_count_and_average_per_system() {
        let preds = vec![
            // m1: OVER win at -110, UNDER loss, push, PASS, DNP, one missing result.
            pred("m1", "a", "OVER", 24.0, Some(21.5)),
            pred("m1", "b", "UNDER", 10.0, Some(12.5)),
            pred("m1", "c", "UNDER", 18.0, Some(20.0)),
            pred("m1", "d", "PASS", 15.0, Some(15.5)),
            pred("m1", "e", "OVER", 9.0, Some(7.5)),
            pred("m1", "zz", "OVER", 9.0, Some(7.5)),
            // m2: one UNDER win at +120.
            pred("m2", "a", "UNDER", 20.0, Some(26.5)),
            // Superseded: never graded.
            Prediction {
                is_active: false,
                prediction_id: "old".into(),
                ..pred("m2", "b", "OVER", 30.0, Some(12.5))
            },
        ];
        let results = vec![
            result("a", 25, 30.0),
            result("b", 14, 25.0),
            result("c", 20, 33.0),
            result("d", 17, 20.0),
            result("e", 0, 0.0),
        ];
        let grading = grade_all(&preds, &results).unwrap();
        assert_eq!(grading.graded.len(), 6);
        assert_eq!(grading.ungraded.len(), 1);
        assert_eq!(grading.ungraded[0].player_lookup, "zz");
        let m = daily_metrics(&grading);
        assert_eq!(m.len(), 2);
        let m1 = &m[0];
        assert_eq!(m1.system_id, "m1");
        assert_eq!(
            (m1.predictions, m1.graded, m1.voided, m1.ungraded),
            (6, 4, 1, 1)
        );
        // Errors: a 24-25=-1, b 10-14=-4, c 18-20=-2, d 15-17=-2.
        assert!((m1.mae.unwrap() - 9.0 / 4.0).abs() < 1e-12);
        assert!((m1.bias.unwrap() + 9.0 / 4.0).abs() < 1e-12);
        assert_eq!((m1.calls, m1.wins, m1.losses, m1.pushes), (3, 1, 1, 1));
        assert_eq!(m1.hit_rate, Some(0.5));
        // Staked: win, loss, push = 3 units; return 100/110 - 1 + 0.
        assert_eq!(m1.units_staked, 3.0);
        let ret = 100.0 / 110.0 - 1.0;
        assert!((m1.return_units - ret).abs() < 1e-12);
        assert!((m1.return_per_unit.unwrap() - ret / 3.0).abs() < 1e-12);
        let m2 = &m[1];
        assert_eq!((m2.predictions, m2.calls, m2.wins), (1, 1, 1));
        assert_eq!(m2.hit_rate, Some(1.0));
        assert!((m2.return_units - 1.2).abs() < 1e-12);
        assert_eq!(m2.bias, Some(-5.0));
    }

    #[test]
    fn metrics_without_calls_or_results_leave_rates_null() {
        let preds = vec![
            pred("m", "a", "PASS", 20.0, None),
            pred("m", "b", "OVER", 5.0, Some(3.5)),
        ];
        let grading = grade_all(&preds, &[result("b", 0, 0.0)]).unwrap();
        let m = &daily_metrics(&grading)[0];
        assert_eq!((m.graded, m.voided, m.ungraded), (0, 1, 1));
        assert_eq!(
            (m.mae, m.bias, m.hit_rate, m.return_per_unit),
            (None, None, None, None)
        );
        assert_eq!(m.calls, 0);
    }

    #[test]
    fn two_active_predictions_for_one_player_are_refused() {
        let mut second = pred("m", "a", "OVER", 25.0, Some(21.5));
        second.prediction_id = "other".into();
        let err = grade_all(
            &[pred("m", "a", "OVER", 24.0, Some(21.5)), second],
            &[result("a", 25, 30.0)],
        )
        .unwrap_err();
        assert!(
            err.contains("two active predictions for a in game g1"),
            "{err}"
        );
    }
}
