//! The points model: training, the artifact, and the four prediction systems' arithmetic.
//! Pure: it sees only the [`Example`]s it is given (the `train-points-model` processor passes
//! feature-store rows of dates before D joined with their outcomes), touches no warehouse or
//! object store, and is deterministic (same examples and [`TrainConfig`], same artifact bytes).
//! `docs/model.md` says why it is built this way and how it compares with the alternatives.
//!
//! The model is a ridge regression on the feature vector (plus inputs derived from the line
//! and the minutes view), one for players with a line and one for those without, aimed at the
//! median; boosted trees ([`gbm`], `tipoff-gbm`) can be fitted to its residuals
//! ([`TrainConfig::trees`], 0 by default: they lost accuracy on this data). Training holds
//! out the last share of dates, measures every system there, fits the ensemble weights and
//! each system's [`Dispersion`] there, then refits the model on every date.

pub mod gbm;
pub mod linear;

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::features::{FEATURE_COUNT, FEATURE_VERSION, FEATURES};

/// Object storage: `models/points/<version>/`.
pub const MODEL_NAME: &str = "points";

/// The library that trained the artifact (written here: `gbm` and `linear`).
pub const LIBRARY: &str = "tipoff-gbm 1";

/// The artifact's format; [`Artifact::from_bytes`] refuses any other.
pub const FORMAT: &str = "tipoff-points-model 1";

/// One training row: a feature-store vector and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The game date.
    pub game_date: Date,
    /// The player.
    pub player_lookup: String,
    /// One `ml_feature_store_v2` vector in [`crate::features::FEATURES`] order.
    pub features: Vec<f64>,
    /// The books' consensus line, `None` when no book posted one.
    pub line: Option<f64>,
    /// Points actually scored (DNPs are never examples).
    pub points: f64,
}

/// A prediction system, with its stable `system_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    /// The books' consensus line.
    Line,
    /// [`rolling_baseline`].
    Rolling,
    /// [`Artifact::predict_model`].
    Model,
    /// [`Artifact::predict_ensemble`].
    Ensemble,
}

impl System {
    /// Every system, in `system_id` order of the catalog.
    pub const ALL: [System; 4] = [
        System::Line,
        System::Rolling,
        System::Model,
        System::Ensemble,
    ];

    /// The `system_id` written with each prediction.
    pub fn id(&self) -> &'static str {
        match self {
            System::Line => "line_consensus_v1",
            System::Rolling => "rolling_avg_v1",
            System::Model => "points_model_v1",
            System::Ensemble => "ensemble_v1",
        }
    }
}

/// Hyper-parameters of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    /// The share of the latest dates held out for validation (at least one date).
    pub validation_share: f64,
    /// Ridge penalty of the linear base (per row, on standardised inputs).
    pub ridge_alpha: f64,
    /// Boosted trees on the ridge's residuals (0 = the ridge alone).
    pub trees: usize,
    /// Shrinkage of each tree.
    pub learning_rate: f64,
    /// Depth of each tree.
    pub max_depth: usize,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Most histogram bins per input.
    pub max_bins: usize,
    /// Share of rows each tree sees.
    pub subsample: f64,
    /// Seed of the row subsampling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            validation_share: 0.2,
            ridge_alpha: 0.001,
            // The walk-forward comparison (docs/model.md): trees on the residuals lost accuracy.
            trees: 0,
            learning_rate: 0.05,
            max_depth: 3,
            min_leaf: 100,
            lambda: 50.0,
            max_bins: 64,
            subsample: 0.8,
            seed: 17,
        }
    }
}

/// MAE of one system on the validation rows with a line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemMae {
    /// The `system_id`.
    pub system_id: &'static str,
    /// Mean absolute error.
    pub mae: f64,
    /// Rows it was measured on.
    pub rows: usize,
}

/// What [`train`] did, written beside the artifact as `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingReport {
    /// The first training date.
    pub first_date: Date,
    /// The last training date (always before the run's date).
    pub last_date: Date,
    /// Distinct training dates.
    pub dates: usize,
    /// Training rows.
    pub rows: usize,
    /// The first held-out date.
    pub validation_from: Date,
    /// Held-out rows.
    pub validation_rows: usize,
    /// The model's MAE on every held-out row (fitted on the earlier dates only).
    pub validation_mae: f64,
    /// Each system's MAE on the held-out rows that have a line (the ensemble's weights are
    /// fitted on those same rows, so its figure is slightly optimistic).
    pub validation_mae_by_system: Vec<SystemMae>,
    /// The ensemble's weights, as in the artifact.
    pub ensemble: Ensemble,
    /// Each system's dispersion, as in the artifact.
    pub dispersion: BTreeMap<&'static str, Dispersion>,
    /// [`crate::features::FEATURE_VERSION`].
    pub feature_version: &'static str,
    /// [`LIBRARY`].
    pub library: &'static str,
    /// The hyper-parameters.
    pub config: TrainConfig,
}

/// `ensemble_v1`: a convex blend of the other systems (weights >= 0 summing to 1, fitted by
/// least squares on the held-out rows), plus an intercept: the median of the blend's residuals
/// there, so that like the model it aims at the median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    /// Intercept, line, rolling, model: for a player with a line.
    pub with_line: [f64; 4],
    /// Intercept, rolling, model: for a player without one.
    pub without_line: [f64; 3],
}

impl Default for Ensemble {
    fn default() -> Self {
        Self {
            with_line: [0.0, 0.5, 0.0, 0.5],
            without_line: [0.0, 0.0, 1.0],
        }
    }
}

/// A system's residual spread and over/under calibration:
/// `sd(p) = sqrt(max(var_intercept + var_slope * p, 1))` and
/// `P(points > line) = sigmoid(cal_intercept + cal_slope * (p - line) / sd(p))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dispersion {
    /// Residual variance at a prediction of 0.
    pub var_intercept: f64,
    /// Residual variance per predicted point.
    pub var_slope: f64,
    /// Calibration intercept (negative when overs are rarer than a symmetric spread implies).
    pub cal_intercept: f64,
    /// Calibration slope on the standardised margin (1.702 is a normal's).
    pub cal_slope: f64,
}

impl Default for Dispersion {
    /// Before any model exists: points roughly twice as variable as a Poisson count (each
    /// basket is 2 or 3), and a normal residual.
    fn default() -> Self {
        Self {
            var_intercept: 4.0,
            var_slope: 2.0,
            cal_intercept: 0.0,
            cal_slope: 1.702,
        }
    }
}

impl Dispersion {
    /// The residual standard deviation at `predicted`.
    pub fn sd(&self, predicted: f64) -> f64 {
        (self.var_intercept + self.var_slope * predicted)
            .max(1.0)
            .sqrt()
    }

    /// The calibrated probability that points > `line` (lines are x.5, so no push).
    pub fn p_over(&self, predicted: f64, line: f64) -> f64 {
        let z = (predicted - line) / self.sd(predicted);
        linear::sigmoid(self.cal_intercept + self.cal_slope * z)
    }

    /// Fits the spread and the calibration to `(predicted, line, points)` rows; the default
    /// when there are too few rows to say anything.
    pub fn fit(rows: &[(f64, f64, f64)]) -> Self {
        let d = Self::default();
        if rows.len() < 50 {
            return d;
        }
        let x: Vec<Vec<f64>> = rows.iter().map(|(p, _, _)| vec![*p]).collect();
        let r2: Vec<f64> = rows.iter().map(|(p, _, y)| (y - p).powi(2)).collect();
        let (var_intercept, var_slope) = match linear::least_squares(&x, &r2) {
            Some(w) if w[1] >= 0.0 => (w[0], w[1]),
            // Spread falling with the prediction: fall back to a constant.
            _ => (r2.iter().sum::<f64>() / r2.len() as f64, 0.0),
        };
        let spread = Self {
            var_intercept,
            var_slope,
            ..d
        };
        let z: Vec<f64> = rows
            .iter()
            .map(|(p, l, _)| (p - l) / spread.sd(*p))
            .collect();
        let over: Vec<bool> = rows.iter().map(|(_, l, y)| y > l).collect();
        let (cal_intercept, cal_slope) = linear::fit_logistic(&z, &over, (0.0, d.cal_slope));
        Self {
            cal_intercept,
            cal_slope,
            ..spread
        }
    }
}

/// Each system's dispersion.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Dispersions {
    /// `line_consensus_v1`.
    pub line: Dispersion,
    /// `rolling_avg_v1`.
    pub rolling: Dispersion,
    /// `points_model_v1`.
    pub model: Dispersion,
    /// `ensemble_v1`.
    pub ensemble: Dispersion,
}

impl Dispersions {
    fn get(&self, s: System) -> Dispersion {
        match s {
            System::Line => self.line,
            System::Rolling => self.rolling,
            System::Model => self.model,
            System::Ensemble => self.ensemble,
        }
    }
}

/// The trained model, the ensemble's weights and every system's dispersion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// [`FORMAT`].
    pub format: String,
    /// [`LIBRARY`].
    pub library: String,
    /// The feature version the model was trained on.
    pub feature_version: String,
    /// The inputs' names: the features, then the derived inputs.
    pub inputs: Vec<String>,
    /// The linear base for a player with a line.
    pub ridge: linear::Ridge,
    /// The linear base for a player without one.
    pub ridge_no_line: linear::Ridge,
    /// Boosted trees on the base's residuals.
    pub gbm: gbm::Gbm,
    /// `ensemble_v1`'s weights.
    pub ensemble: Ensemble,
    /// Each system's dispersion.
    pub dispersion: Dispersions,
}

fn feature_index(name: &str) -> usize {
    FEATURES
        .iter()
        .position(|f| f.name == name)
        .unwrap_or(usize::MAX)
}

fn feature(features: &[f64], name: &str) -> f64 {
    features
        .get(feature_index(name))
        .copied()
        .unwrap_or_else(|| {
            FEATURES
                .iter()
                .find(|f| f.name == name)
                .map_or(0.0, |f| f.default)
        })
}

/// `rolling_avg_v1`: the player's average over his last 10 games (the feature
/// `points_avg_last_10`; its default, 10, for a player with no games yet).
pub fn rolling_baseline(features: &[f64]) -> f64 {
    feature(features, "points_avg_last_10")
}

/// The names of the derived inputs appended to the features.
const DERIVED: [&str; 4] = [
    "has_line",
    "line_or_season_avg",
    "rate_x_expected_minutes",
    "rate_x_expected_minutes_x_implied",
];

/// The model's inputs: the features, whether a line exists (the feature store writes the
/// default 0 when none does; a posted line is at least 0.5), and the line or, without one, the
/// season average, so that the linear base is not pulled by the default, and the season's
/// points per minute times
/// the expected minutes (a product neither the ridge nor shallow trees form well). Public so that other learners can be
/// compared on the same inputs.
pub fn inputs(features: &[f64]) -> Vec<f64> {
    let line = feature(features, "current_points_line");
    let has_line = line > 0.0;
    let mut x: Vec<f64> = (0..FEATURE_COUNT)
        .map(|i| features.get(i).copied().unwrap_or(FEATURES[i].default))
        .collect();
    x.push(f64::from(u8::from(has_line)));
    x.push(if has_line {
        line
    } else {
        feature(features, "points_avg_season")
    });
    let rate_minutes =
        feature(features, "points_per_minute_season") * feature(features, "expected_minutes");
    x.push(rate_minutes);
    // The books' team total scales the player's rate: matchup, pace and home in one number.
    x.push(rate_minutes * feature(features, "implied_team_points") / 112.5);
    x
}

struct Fitted {
    ridge: linear::Ridge,
    ridge_no_line: linear::Ridge,
    gbm: gbm::Gbm,
}

/// The input `has_line`'s index.
const HAS_LINE: usize = FEATURE_COUNT;

fn linear_part(with_line: &linear::Ridge, no_line: &linear::Ridge, x: &[f64]) -> f64 {
    if x.get(HAS_LINE).copied().unwrap_or(0.0) > 0.5 {
        with_line.predict(x)
    } else {
        no_line.predict(x)
    }
}

impl Fitted {
    fn predict(&self, x: &[f64]) -> f64 {
        linear_part(&self.ridge, &self.ridge_no_line, x) + self.gbm.predict(x)
    }
}

fn fit_model(rows: &[&Example], cfg: &TrainConfig) -> Result<Fitted, String> {
    let x: Vec<Vec<f64>> = rows.iter().map(|e| inputs(&e.features)).collect();
    let y: Vec<f64> = rows.iter().map(|e| e.points).collect();
    // Players with a line and players without one are different populations (the books skip
    // bench players and doubtful starters): one linear base each.
    let part = |lined: bool| -> Result<linear::Ridge, String> {
        let (xs, ys): (Vec<Vec<f64>>, Vec<f64>) = x
            .iter()
            .zip(&y)
            .filter(|(r, _)| (r[HAS_LINE] > 0.5) == lined)
            .map(|(r, y)| (r.clone(), *y))
            .unzip();
        if xs.len() < 2 * x[0].len() {
            // Too few rows of this kind: the base of every row.
            return linear::fit_ridge(&x, &y, cfg.ridge_alpha);
        }
        linear::fit_ridge(&xs, &ys, cfg.ridge_alpha)
    };
    let ridge = part(true)?;
    let ridge_no_line = part(false)?;
    let resid: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(r, y)| y - linear_part(&ridge, &ridge_no_line, r))
        .collect();
    let gbm = gbm::fit(
        &x,
        &resid,
        &gbm::GbmParams {
            trees: cfg.trees,
            learning_rate: cfg.learning_rate,
            max_depth: cfg.max_depth,
            min_leaf: cfg.min_leaf,
            lambda: cfg.lambda,
            max_bins: cfg.max_bins,
            subsample: cfg.subsample,
            seed: cfg.seed,
        },
    )?;
    let mut fitted = Fitted {
        ridge,
        ridge_no_line,
        gbm,
    };
    // Points are skewed (a bad night is 0, a good one 40), so the mean sits above the median
    // and the median is what minimises the absolute error: move each base by the median of
    // its rows' residuals.
    for lined in [true, false] {
        let mut r: Vec<f64> = x
            .iter()
            .zip(&y)
            .filter(|(r, _)| (r[HAS_LINE] > 0.5) == lined)
            .map(|(r, y)| y - fitted.predict(r))
            .collect();
        if r.is_empty() {
            continue;
        }
        let median = median(&mut r);
        if lined {
            fitted.ridge.intercept += median;
        } else {
            fitted.ridge_no_line.intercept += median;
        }
    }
    Ok(fitted)
}

/// The median (sorts `v`); 0 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mae(xs: impl Iterator<Item = (f64, f64)>) -> (f64, usize) {
    let (mut s, mut n) = (0.0, 0usize);
    for (p, y) in xs {
        s += (p - y).abs();
        n += 1;
    }
    (if n == 0 { f64::NAN } else { s / n as f64 }, n)
}

/// Trains on `examples` (every one of them: the caller passes only dates before D), holding
/// out the last [`TrainConfig::validation_share`] of dates for validation, the ensemble
/// weights and the dispersions, then refitting the model on all rows.
pub fn train(
    examples: &[Example],
    cfg: &TrainConfig,
) -> Result<(Artifact, TrainingReport), String> {
    for e in examples {
        if e.features.len() != FEATURE_COUNT {
            return Err(format!(
                "{} {}: {} features, expected {FEATURE_COUNT}",
                e.game_date,
                e.player_lookup,
                e.features.len()
            ));
        }
        if !e.points.is_finite()
            || e.features.iter().any(|v| !v.is_finite())
            || e.line.is_some_and(|l| !l.is_finite())
        {
            return Err(format!(
                "{} {}: a value that is not a finite number",
                e.game_date, e.player_lookup
            ));
        }
    }
    // The order the caller passes must not matter.
    let mut rows: Vec<&Example> = examples.iter().collect();
    rows.sort_by(|a, b| {
        (a.game_date, &a.player_lookup)
            .cmp(&(b.game_date, &b.player_lookup))
            .then_with(|| a.points.total_cmp(&b.points))
    });
    let mut dates: Vec<Date> = rows.iter().map(|e| e.game_date).collect();
    dates.dedup();
    if dates.len() < 2 {
        return Err(format!(
            "{} training dates: at least 2 are needed (one to fit, one to validate)",
            dates.len()
        ));
    }
    let held =
        ((dates.len() as f64 * cfg.validation_share).ceil() as usize).clamp(1, dates.len() - 1);
    let validation_from = dates[dates.len() - held];
    let (fit_rows, val_rows): (Vec<&Example>, Vec<&Example>) =
        rows.iter().partition(|e| e.game_date < validation_from);

    let early = fit_model(&fit_rows, cfg)?;
    let model_pred: Vec<f64> = val_rows
        .iter()
        .map(|e| early.predict(&inputs(&e.features)))
        .collect();
    let rolling: Vec<f64> = val_rows
        .iter()
        .map(|e| rolling_baseline(&e.features))
        .collect();
    let (validation_mae, _) = mae(model_pred
        .iter()
        .zip(&val_rows)
        .map(|(p, e)| (*p, e.points)));

    // Ensemble weights on the held-out rows: a convex blend (no intercept), two weights at
    // most, so that a few thousand rows pin them down.
    let lined: Vec<usize> = (0..val_rows.len())
        .filter(|&i| val_rows[i].line.is_some())
        .collect();
    let unlined: Vec<usize> = (0..val_rows.len())
        .filter(|&i| val_rows[i].line.is_none())
        .collect();
    let mut ensemble = Ensemble::default();
    if lined.len() >= 30 {
        let pts: Vec<BlendRow> = lined
            .iter()
            .map(|&i| {
                let e = val_rows[i];
                (
                    e.line.unwrap_or_default(),
                    rolling[i],
                    model_pred[i],
                    e.points,
                )
            })
            .collect();
        let [w_line, w_rolling, w_model] = convex_blend(&pts);
        ensemble.with_line = [0.0, w_line, w_rolling, w_model];
    }
    if unlined.len() >= 30 {
        // Without a line: the model and the rolling average, the model as the anchor.
        let pts: Vec<BlendRow> = unlined
            .iter()
            .map(|&i| (model_pred[i], rolling[i], model_pred[i], val_rows[i].points))
            .collect();
        let [a, b, c] = convex_blend(&pts);
        ensemble.without_line = [0.0, b, a + c];
    }
    // Like the model, the blend aims at the median: its intercept is the median residual.
    for lined_rows in [true, false] {
        let idx = if lined_rows { &lined } else { &unlined };
        if idx.len() < 30 {
            continue;
        }
        let mut r: Vec<f64> = idx
            .iter()
            .map(|&i| {
                let e = val_rows[i];
                e.points - ensemble_of(&ensemble, e.line, rolling[i], model_pred[i])
            })
            .collect();
        let m = median(&mut r);
        if lined_rows {
            ensemble.with_line[0] = m;
        } else {
            ensemble.without_line[0] = m;
        }
    }
    let blend = |line: Option<f64>, r: f64, m: f64| ensemble_of(&ensemble, line, r, m);

    // Each system on the held-out rows with a line: MAE and dispersion.
    let mut validation_mae_by_system = Vec::new();
    let mut dispersion = Dispersions::default();
    let mut by_id = BTreeMap::new();
    for s in System::ALL {
        let triples: Vec<(f64, f64, f64)> = lined
            .iter()
            .map(|&i| {
                let e = val_rows[i];
                let l = e.line.unwrap_or_default();
                let p = match s {
                    System::Line => l,
                    System::Rolling => rolling[i],
                    System::Model => model_pred[i],
                    System::Ensemble => blend(e.line, rolling[i], model_pred[i]),
                };
                (p, l, e.points)
            })
            .collect();
        let (m, n) = mae(triples.iter().map(|(p, _, y)| (*p, *y)));
        validation_mae_by_system.push(SystemMae {
            system_id: s.id(),
            mae: m,
            rows: n,
        });
        let d = Dispersion::fit(&triples);
        match s {
            System::Line => dispersion.line = d,
            System::Rolling => dispersion.rolling = d,
            System::Model => dispersion.model = d,
            System::Ensemble => dispersion.ensemble = d,
        }
        by_id.insert(s.id(), d);
    }

    let last = fit_model(&rows, cfg)?;
    let artifact = Artifact {
        format: FORMAT.into(),
        library: LIBRARY.into(),
        feature_version: FEATURE_VERSION.into(),
        inputs: FEATURES
            .iter()
            .map(|f| f.name)
            .chain(DERIVED)
            .map(String::from)
            .collect(),
        ridge: last.ridge,
        ridge_no_line: last.ridge_no_line,
        gbm: last.gbm,
        ensemble: ensemble.clone(),
        dispersion,
    };
    if serde_json::to_string(&artifact).is_err() || !all_finite(&artifact) {
        return Err("training produced a value that is not a finite number".into());
    }
    let report = TrainingReport {
        first_date: dates[0],
        last_date: dates[dates.len() - 1],
        dates: dates.len(),
        rows: rows.len(),
        validation_from,
        validation_rows: val_rows.len(),
        validation_mae,
        validation_mae_by_system,
        ensemble,
        dispersion: by_id,
        feature_version: FEATURE_VERSION,
        library: LIBRARY,
        config: cfg.clone(),
    };
    Ok((artifact, report))
}

fn all_finite(a: &Artifact) -> bool {
    let d = &a.dispersion;
    let disp = [d.line, d.rolling, d.model, d.ensemble]
        .into_iter()
        .all(|d| {
            [d.var_intercept, d.var_slope, d.cal_intercept, d.cal_slope]
                .iter()
                .all(|v| v.is_finite())
        });
    disp && a
        .ensemble
        .with_line
        .iter()
        .chain(&a.ensemble.without_line)
        .all(|v| v.is_finite())
        && a.ridge
            .coef
            .iter()
            .chain(&a.ridge.mean)
            .chain(&a.ridge.scale)
            .all(|v| v.is_finite())
        && a.ridge.intercept.is_finite()
        && a.ridge_no_line
            .coef
            .iter()
            .chain(&a.ridge_no_line.mean)
            .chain(&a.ridge_no_line.scale)
            .all(|v| v.is_finite())
        && a.ridge_no_line.intercept.is_finite()
        && a.gbm.base.is_finite()
        && a.gbm
            .trees
            .iter()
            .flat_map(|t| &t.nodes)
            .all(|n| n.value.is_finite() && n.threshold.is_finite())
}

const BITS_PREFIX: &str = "0x";

fn floats_to_bits(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) if n.is_f64() => J::String(format!(
            "{BITS_PREFIX}{:016x}",
            n.as_f64().unwrap_or_default().to_bits()
        )),
        J::Array(a) => J::Array(a.into_iter().map(floats_to_bits).collect()),
        J::Object(m) => J::Object(m.into_iter().map(|(k, v)| (k, floats_to_bits(v))).collect()),
        other => other,
    }
}

fn bits_to_floats(v: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(s) if s.len() == 18 && s.starts_with(BITS_PREFIX) => {
            let bits = u64::from_str_radix(&s[2..], 16)
                .map_err(|e| format!("model artifact: float {s:?}: {e}"))?;
            let f = f64::from_bits(bits);
            J::Number(
                serde_json::Number::from_f64(f)
                    .ok_or_else(|| format!("model artifact: {s:?} is not a finite number"))?,
            )
        }
        J::Array(a) => J::Array(
            a.into_iter()
                .map(bits_to_floats)
                .collect::<Result<_, _>>()?,
        ),
        J::Object(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, bits_to_floats(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

/// `(anchor, second, third, actual points)`: one held-out row of the blend.
type BlendRow = (f64, f64, f64, f64);

/// Weights `[anchor, second, third]` summing to 1, all >= 0, minimising the squared error of
/// `anchor + w2 (second - anchor) + w3 (third - anchor)` on `(anchor, second, third, y)` rows.
fn convex_blend(rows: &[BlendRow]) -> [f64; 3] {
    // Least squares on the two differences, no intercept; then the best feasible corner or
    // edge if the unconstrained weights leave the simplex.
    let sse = |w2: f64, w3: f64| -> f64 {
        rows.iter()
            .map(|(a, b, c, y)| (y - a - w2 * (b - a) - w3 * (c - a)).powi(2))
            .sum()
    };
    let one = |pick: &dyn Fn(&BlendRow) -> f64| -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for r in rows {
            let d = pick(r) - r.0;
            num += d * (r.3 - r.0);
            den += d * d;
        }
        if den > 0.0 {
            (num / den).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let (mut s22, mut s23, mut s33, mut t2, mut t3) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (a, b, c, y) in rows {
        let (d2, d3, r) = (b - a, c - a, y - a);
        s22 += d2 * d2;
        s23 += d2 * d3;
        s33 += d3 * d3;
        t2 += d2 * r;
        t3 += d3 * r;
    }
    let det = s22 * s33 - s23 * s23;
    let mut candidates: Vec<(f64, f64)> =
        vec![(one(&|r| r.1), 0.0), (0.0, one(&|r| r.2)), (0.0, 0.0)];
    if det.abs() > 1e-12 {
        let w2 = (s33 * t2 - s23 * t3) / det;
        let w3 = (s22 * t3 - s23 * t2) / det;
        if w2 >= 0.0 && w3 >= 0.0 && w2 + w3 <= 1.0 {
            candidates.push((w2, w3));
        }
    }
    let mut best = (0.0, 0.0);
    let mut best_sse = f64::INFINITY;
    for (w2, w3) in candidates {
        let e = sse(w2, w3);
        // Strictly smaller: ties keep the earlier candidate, so the choice is stable.
        if e < best_sse {
            best_sse = e;
            best = (w2, w3);
        }
    }
    [1.0 - best.0 - best.1, best.0, best.1]
}

fn ensemble_of(w: &Ensemble, line: Option<f64>, rolling: f64, model: f64) -> f64 {
    match line {
        Some(l) => {
            w.with_line[0] + w.with_line[1] * l + w.with_line[2] * rolling + w.with_line[3] * model
        }
        None => w.without_line[0] + w.without_line[1] * rolling + w.without_line[2] * model,
    }
}

impl Artifact {
    /// The artifact as bytes (`model.bin`): compact JSON, fields in declaration order, every
    /// float written as the hex of its 64 bits (`"0x3ff0000000000000"`), so that reading it back
    /// is exact without depending on the JSON parser's float precision. The same artifact
    /// always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these plain structs cannot fail (train refuses non-finite values).
        serde_json::to_value(self)
            .map(|v| serde_json::to_vec(&floats_to_bits(v)).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Reads [`Artifact::to_bytes`]; refuses another format or feature count.
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_slice(b).map_err(|e| format!("model artifact: {e}"))?;
        let a: Artifact = serde_json::from_value(bits_to_floats(v)?)
            .map_err(|e| format!("model artifact: {e}"))?;
        if a.format != FORMAT {
            return Err(format!(
                "model artifact: format {:?}, expected {FORMAT:?}",
                a.format
            ));
        }
        let n = FEATURE_COUNT + DERIVED.len();
        if a.inputs.len() != n || a.ridge.coef.len() != n || a.ridge_no_line.coef.len() != n {
            return Err(format!(
                "model artifact: {} inputs, this build has {n} (feature version {} vs {FEATURE_VERSION})",
                a.inputs.len(),
                a.feature_version
            ));
        }
        Ok(a)
    }

    /// `points_model_v1`: predicted points from one feature vector.
    pub fn predict_model(&self, features: &[f64]) -> f64 {
        let x = inputs(features);
        linear_part(&self.ridge, &self.ridge_no_line, &x) + self.gbm.predict(&x)
    }

    /// `ensemble_v1`: the learned blend of the line (when there is one), the rolling baseline
    /// and the model.
    pub fn predict_ensemble(&self, line: Option<f64>, rolling: f64, model: f64) -> f64 {
        ensemble_of(&self.ensemble, line, rolling, model)
    }

    /// A system's dispersion.
    pub fn dispersion(&self, system: System) -> Dispersion {
        self.dispersion.get(system)
    }
}

#[cfg(test)]
mod tests;
