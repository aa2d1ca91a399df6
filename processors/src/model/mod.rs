//! STAND-IN for the model module being built on branch `model` (same interface); replaced at
//! merge. Not committed to main.
#![allow(missing_docs, clippy::missing_docs_in_private_items)]

use jiff::civil::Date;

pub const MODEL_NAME: &str = "points";
pub const LIBRARY: &str = "stand-in 0";

#[derive(Debug, Clone)]
pub struct Example {
    pub game_date: Date,
    pub player_lookup: String,
    pub features: Vec<f64>,
    pub line: Option<f64>,
    pub points: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrainConfig {}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainingReport {
    pub first_date: Date,
    pub last_date: Date,
    pub rows: usize,
    pub validation_mae: f64,
    pub feature_version: &'static str,
    pub library: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Line,
    Rolling,
    Model,
    Ensemble,
}

impl System {
    pub fn id(&self) -> &'static str {
        match self {
            System::Line => "line_consensus_v1",
            System::Rolling => "rolling_avg_v1",
            System::Model => "points_model_v1",
            System::Ensemble => "ensemble_v1",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Artifact {
    mean: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct Dispersion {
    scale: f64,
}

impl Default for Dispersion {
    fn default() -> Self {
        Self { scale: 1.3 }
    }
}

impl Dispersion {
    pub fn sd(&self, predicted: f64) -> f64 {
        (self.scale * predicted.max(1.0).sqrt()).max(1.5)
    }
    pub fn p_over(&self, predicted: f64, line: f64) -> f64 {
        let z = (predicted - line) / self.sd(predicted);
        0.5 * (1.0 + (z / std::f64::consts::SQRT_2).tanh())
    }
}

pub fn rolling_baseline(features: &[f64]) -> f64 {
    features.get(1).copied().unwrap_or(10.0)
}

pub fn train(
    examples: &[Example],
    _cfg: &TrainConfig,
) -> Result<(Artifact, TrainingReport), String> {
    let first = examples.first().ok_or("no examples")?;
    let last = examples.last().ok_or("no examples")?;
    let mean = examples.iter().map(|e| e.points).sum::<f64>() / examples.len() as f64;
    Ok((
        Artifact { mean },
        TrainingReport {
            first_date: first.game_date,
            last_date: last.game_date,
            rows: examples.len(),
            validation_mae: 0.0,
            feature_version: crate::features::FEATURE_VERSION,
            library: LIBRARY,
        },
    ))
}

impl Artifact {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.mean.to_le_bytes().to_vec()
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let a: [u8; 8] = b.try_into().map_err(|_| "bad artifact".to_owned())?;
        Ok(Self {
            mean: f64::from_le_bytes(a),
        })
    }
    pub fn predict_model(&self, features: &[f64]) -> f64 {
        0.5 * self.mean + 0.5 * rolling_baseline(features)
    }
    pub fn predict_ensemble(&self, line: Option<f64>, rolling: f64, model: f64) -> f64 {
        line.map_or(0.5 * (rolling + model), |l| {
            0.6 * l + 0.2 * rolling + 0.2 * model
        })
    }
    pub fn dispersion(&self, _system: System) -> Dispersion {
        Dispersion::default()
    }
}
