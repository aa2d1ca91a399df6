//! `train-points-model` and the model store in object storage.
//!
//! Layout: `models/points/<version>/model.bin` (the artifact's bytes) and
//! `models/points/<version>/report.json` (the training report), the report written last so a
//! version without one is incomplete and ignored. A version is
//! `<cutoff>-<feature version>-<first 8 hex of the artifact's SHA-256>`: the last game date
//! trained on, the feature set it reads, and its bytes. Identical inputs give identical bytes,
//! so a re-run finds its version already there.
//!
//! Walk-forward: training for date D reads games strictly before D, and a date only ever uses
//! a model whose cutoff is before it, so a backfill of an old date never sees a later model.

use std::collections::BTreeMap;

use bytes::Bytes;
use jiff::civil::Date;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tipoff_warehouse::Warehouse;
use tipoff_warehouse::storage::ObjectKey;

use crate::analytics::asof::{Calendar, day_before};
use crate::contract::Failure;
use crate::features::FEATURE_VERSION;
use crate::model::{self, Artifact, Example, MODEL_NAME, TrainConfig, TrainingReport};
use crate::precompute::records::PlayerContext;
use crate::predict::records::FeatureRow;
use crate::runner::Ctx;
use crate::tables::{self, Summary};

/// The model is reused while its cutoff is at most this many days before the date.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 7;
/// Fewer training rows than this (`TIPOFF_MODEL_MIN_ROWS` overrides it) and no model is
/// trained (the season's first weeks): the baselines still predict.
pub const MIN_TRAINING_ROWS: usize = 1500;

const MODEL_FILE: &str = "model.bin";
const REPORT_FILE: &str = "report.json";

/// A stored model version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// The last game date trained on.
    pub cutoff: Date,
    /// The whole version string.
    pub name: String,
}

impl Version {
    /// The version for an artifact trained through `cutoff`.
    pub fn new(cutoff: Date, bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self {
            cutoff,
            name: format!("{cutoff}-{FEATURE_VERSION}-{hex}"),
        }
    }

    /// Parses a version of the current feature set; other feature sets give `None` (their
    /// models read vectors of another shape).
    pub fn parse(name: &str) -> Option<Self> {
        let cutoff: Date = name.get(..10)?.parse().ok()?;
        let rest = name.get(10..)?.strip_prefix('-')?;
        let (features, hash) = rest.rsplit_once('-')?;
        (features == FEATURE_VERSION && hash.len() == 8).then(|| Self {
            cutoff,
            name: name.to_owned(),
        })
    }

    fn key(&self, file: &str) -> Result<ObjectKey, Failure> {
        ObjectKey::model_artifact(MODEL_NAME, &self.name, file)
            .map_err(|e| Failure::Permanent(format!("model key: {e}")))
    }
}

/// The complete versions in the store (those with a report), oldest first.
pub async fn versions(ctx: &Ctx) -> Result<Vec<Version>, Failure> {
    let prefix = ObjectKey::from_segments(["models", MODEL_NAME])
        .map_err(|e| Failure::Permanent(format!("model prefix: {e}")))?;
    let mut out: Vec<Version> = ctx
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|k| {
            let s = k.to_string();
            let rest = s.strip_prefix(&format!("models/{MODEL_NAME}/"))?;
            let (version, file) = rest.split_once('/')?;
            (file == REPORT_FILE).then(|| Version::parse(version))?
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The newest version a prediction for `date` may use: trained only on games before it.
pub fn newest_before(versions: &[Version], date: Date) -> Option<&Version> {
    versions.iter().rev().find(|v| v.cutoff < date)
}

/// Loads a version's artifact.
pub async fn load(ctx: &Ctx, v: &Version) -> Result<Artifact, Failure> {
    let key = v.key(MODEL_FILE)?;
    let bytes = ctx.get(&key).await?.ok_or_else(|| {
        Failure::Permanent(format!(
            "{key} is missing though its report exists: run train-points-model again"
        ))
    })?;
    Artifact::from_bytes(&bytes)
        .map_err(|e| Failure::Permanent(format!("{key} is not a usable model: {e}")))
}

/// The training examples: every feature-store row of the current feature set in `from..=to`
/// whose player played (DNPs have no outcome to learn), joined with the points scored and the
/// consensus line, in (date, player) order.
pub async fn examples(wh: &dyn Warehouse, from: Date, to: Date) -> Result<Vec<Example>, Failure> {
    let outcomes: BTreeMap<(String, String), f64> = tables::read::<Summary>(wh, from, to)
        .await?
        .into_iter()
        .filter(|s| s.is_active)
        .map(|s| ((s.game_id, s.player_lookup), s.points as f64))
        .collect();
    let lines: BTreeMap<(String, String), f64> = tables::read::<PlayerContext>(wh, from, to)
        .await?
        .into_iter()
        .filter_map(|c| Some(((c.game_id, c.player_lookup), c.current_points_line?)))
        .collect();
    let mut out: Vec<Example> = tables::read::<FeatureRow>(wh, from, to)
        .await?
        .into_iter()
        .filter(|f| f.feature_version == FEATURE_VERSION)
        .filter_map(|f| {
            let key = (f.game_id, f.player_lookup);
            let points = *outcomes.get(&key)?;
            Some(Example {
                game_date: f.game_date,
                line: lines.get(&key).copied(),
                player_lookup: key.1,
                features: f.features,
                points,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.game_date, &a.player_lookup).cmp(&(b.game_date, &b.player_lookup)));
    Ok(out)
}

/// What is written beside the artifact.
#[derive(Debug, Serialize)]
struct StoredReport<'a> {
    model: &'static str,
    version: &'a str,
    cutoff: Date,
    trained_for: Date,
    #[serde(flatten)]
    report: &'a TrainingReport,
}

/// `train-points-model`: makes sure a model trained on games before D, recent enough, is in
/// the store. It reuses the newest version whose cutoff is before D and at most
/// `TIPOFF_MODEL_MAX_AGE_DAYS` (default 7) days old, and otherwise trains on every game of
/// the season before D. Checks: `model-ready` (a model exists for D; observed = its age in
/// days) and `training-rows` when it trained.
pub async fn train_points_model(ctx: &mut Ctx) -> Result<(), Failure> {
    let date = ctx.args.date;
    let max_age = ctx
        .config
        .model_max_age_days
        .unwrap_or(DEFAULT_MAX_AGE_DAYS);
    let stored = versions(ctx).await?;
    if let Some(v) = newest_before(&stored, date) {
        let age = days_between(v.cutoff, date);
        if age <= max_age {
            // Proves the artifact loads before the predictions rely on it.
            load(ctx, v).await?;
            ctx.warn(format!(
                "reusing model {} ({age} days old, at most {max_age})",
                v.name
            ));
            ctx.check("model-ready", true, Some(age), Some(max_age), vec![]);
            return Ok(());
        }
    }
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let from = cal.season_start(date);
    let to = day_before(date);
    let examples = examples(wh.as_ref(), from, to).await?;
    let rows = i64::try_from(examples.len()).unwrap_or(i64::MAX);
    let min_rows = ctx.config.model_min_rows.unwrap_or(MIN_TRAINING_ROWS);
    let min = i64::try_from(min_rows).unwrap_or(i64::MAX);
    ctx.check("training-rows", rows >= min, Some(rows), Some(min), vec![]);
    let Some(cutoff) = examples.last().map(|e| e.game_date) else {
        ctx.warn(format!(
            "no training rows before {date}: ml_feature_store_v2 and player_game_summary have \
             no joined rows of feature set {FEATURE_VERSION}"
        ));
        ctx.check("model-ready", false, None, Some(max_age), vec![]);
        return Ok(());
    };
    if examples.len() < min_rows {
        ctx.warn(format!(
            "{rows} training rows before {date}, fewer than {min}: no model yet, the baselines predict"
        ));
        ctx.check("model-ready", false, None, Some(max_age), vec![]);
        return Ok(());
    }
    let (artifact, report) = model::train(&examples, &TrainConfig::default())
        .map_err(|e| Failure::Permanent(format!("training the points model: {e}")))?;
    let bytes = artifact.to_bytes();
    let version = Version::new(cutoff, &bytes);
    let stored_report = StoredReport {
        model: MODEL_NAME,
        version: &version.name,
        cutoff,
        trained_for: date,
        report: &report,
    };
    let report_json = serde_json::to_vec_pretty(&stored_report)
        .map_err(|e| Failure::Permanent(format!("serializing the training report: {e}")))?;
    ctx.put(&version.key(MODEL_FILE)?, Bytes::from(bytes))
        .await?;
    ctx.put(&version.key(REPORT_FILE)?, Bytes::from(report_json))
        .await?;
    let age = days_between(cutoff, date);
    ctx.check("model-ready", true, Some(age), Some(max_age), vec![]);
    Ok(())
}

/// Whole days from `a` to `b`.
pub fn days_between(a: Date, b: Date) -> i64 {
    a.until(b).map_or(i64::MAX, |s| i64::from(s.get_days()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_their_cutoff_features_and_bytes() {
        let d = jiff::civil::date(2026, 1, 14);
        let v = Version::new(d, b"artifact");
        assert!(
            v.name
                .starts_with(&format!("2026-01-14-{FEATURE_VERSION}-"))
        );
        assert_eq!(Version::parse(&v.name), Some(v.clone()));
        assert_eq!(Version::new(d, b"artifact"), v, "same bytes, same version");
        assert_ne!(Version::new(d, b"other").name, v.name);
        // Another feature set's model reads other vectors: not a candidate.
        assert_eq!(Version::parse("2026-01-14-v1.0-0011aabb"), None);
        assert_eq!(Version::parse("latest"), None);
    }

    #[test]
    fn a_date_uses_only_models_trained_before_it() {
        let v = |d: i8| Version {
            cutoff: jiff::civil::date(2026, 1, d),
            name: format!("2026-01-{d:02}"),
        };
        let stored = [v(5), v(12), v(19)];
        let pick =
            |d| newest_before(&stored, jiff::civil::date(2026, 1, d)).map(|v| v.cutoff.day());
        assert_eq!(pick(13), Some(12));
        assert_eq!(pick(12), Some(5), "a model trained through D is not D's");
        assert_eq!(pick(20), Some(19));
        assert_eq!(pick(5), None);
        assert_eq!(
            days_between(
                jiff::civil::date(2026, 1, 12),
                jiff::civil::date(2026, 1, 19)
            ),
            7
        );
    }
}
