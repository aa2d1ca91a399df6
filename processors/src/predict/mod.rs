//! Phase 5: the points model (`train-points-model`, [`train`]) and `player-prop-predictions`.
//!
//! Every player of the date's feature store gets one prediction per system:
//!
//! | system_id | predicted points | needs |
//! |---|---|---|
//! | `line_consensus_v1` | the books' consensus line | a line |
//! | `rolling_avg_v1` | [`model::rolling_baseline`] of the feature vector | |
//! | `points_model_v1` | the trained model | a model trained before D |
//! | `ensemble_v1` | the model's blend of the three | a model trained before D |
//!
//! Each prediction's call ([`calls`]) is made against the books' lines as of the prediction's
//! instant. `docs/model.md` explains the model and the calibration of `confidence_score`.
//!
//! **Supersession.** A prediction is `pre_tipoff` when written before the date's first tip-off,
//! `as_of_tipoff` when written after it (a Production or Backfill run of a date that had no
//! SameDay run: it predicts from the pre-tip-off snapshots and says so). Its id hashes system,
//! game, player and timing, so a re-run replaces its own rows; it never replaces rows of the
//! other timing, and `is_active` marks the pre-tip-off row whenever one exists: the actionable
//! prediction is the one graded.
//!
//! **Shards.** With `parallelism: n` in the catalog the processor runs as an Indexed Job; shard
//! k takes the players whose [`player_bucket`] (a stable hash, 0-1023) lies in
//! `[1024k/n, 1024(k+1)/n)` and replaces exactly that range of the partition
//! (`Warehouse::replace_range`), so the shards together write what one unsharded run writes.

pub mod calls;
pub mod records;
pub mod train;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use sha2::{Digest, Sha256};
use tipoff_warehouse::schema::TableSchema;
use tipoff_warehouse::{RowRange, Warehouse};

use crate::analytics::asof::{self, Calendar};
use crate::contract::Failure;
use crate::features::FEATURE_VERSION;
use crate::model::{self, Artifact, Dispersion, System};
use crate::precompute::records::PlayerContext;
use crate::runner::{Ctx, MAX_SHARDS, Shard, warehouse_failure};
use crate::tables;

use self::calls::{MIN_CONFIDENCE, Quote, call, consensus_line, latest_per_book};
use self::records::{FeatureRow, Prediction, QuoteRow, Timing};

const PREDICTIONS: &str =
    include_str!("../../../config/schemas/nba_predictions/player_prop_predictions.json");

/// The player buckets shards split (one more than the largest `player_bucket`).
pub const BUCKETS: i64 = MAX_SHARDS as i64;

/// The version the baselines write in `model_version` (they have no artifact).
pub const BASELINE_VERSION: &str = "baseline-1";

/// A player's stable bucket: the first two bytes of SHA-256 of the key, modulo [`BUCKETS`].
pub fn player_bucket(player_lookup: &str) -> i64 {
    let d = Sha256::digest(player_lookup.as_bytes());
    i64::from(u16::from_be_bytes([d[0], d[1]])) % BUCKETS
}

/// The buckets shard `index` of `count` owns.
pub fn shard_range(shard: Shard) -> RowRange {
    let (k, n) = (i64::from(shard.index), i64::from(shard.count.max(1)));
    RowRange {
        column: "player_bucket".to_owned(),
        start: BUCKETS * k / n,
        end: BUCKETS * (k + 1) / n,
    }
}

/// The deterministic id of a prediction.
pub fn prediction_id(system: &str, game_id: &str, player: &str, timing: Timing) -> String {
    let d = Sha256::digest(format!("{system}|{game_id}|{player}|{}", timing.as_str()).as_bytes());
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Marks, per system, player and game, the row to grade: the pre-tip-off one when it exists,
/// else the as-of-tip-off one.
pub fn mark_active(rows: &mut [Prediction]) {
    let pre: BTreeSet<(String, String, String)> = rows
        .iter()
        .filter(|p| p.timing == Timing::PreTipoff)
        .map(|p| {
            (
                p.system_id.clone(),
                p.game_id.clone(),
                p.player_lookup.clone(),
            )
        })
        .collect();
    for p in rows.iter_mut() {
        let key = (
            p.system_id.clone(),
            p.game_id.clone(),
            p.player_lookup.clone(),
        );
        p.is_active = p.timing == Timing::PreTipoff || !pre.contains(&key);
    }
}

/// The rows a write of `new` (all of one timing) leaves in its range: the stored rows of the
/// other timing stay, the stored rows of the same timing are replaced, and the active marks
/// are recomputed over the result.
pub fn merge(stored: Vec<Prediction>, new: Vec<Prediction>, timing: Timing) -> Vec<Prediction> {
    let mut out: Vec<Prediction> = stored.into_iter().filter(|p| p.timing != timing).collect();
    out.extend(new);
    mark_active(&mut out);
    out.sort_by(|a, b| a.prediction_id.cmp(&b.prediction_id));
    out
}

/// What every prediction of one player shares.
struct PlayerInput<'a> {
    features: &'a FeatureRow,
    team: String,
    quotes: Vec<Quote>,
}

/// The model in use for the date, if any.
struct ModelInUse {
    artifact: Artifact,
    version: String,
}

/// One player's predictions, one per system that can predict for them.
fn predict_player(
    p: &PlayerInput<'_>,
    model: Option<&ModelInUse>,
    timing: Timing,
    date: Date,
    created_at: Timestamp,
) -> Vec<Prediction> {
    let f = p.features;
    let line = consensus_line(&p.quotes);
    let rolling = model::rolling_baseline(&f.features);
    let mut systems: Vec<(System, f64, String, Dispersion)> = Vec::new();
    let dispersion =
        |s: System| model.map_or_else(Dispersion::default, |m| m.artifact.dispersion(s));
    if let Some(l) = line {
        systems.push((
            System::Line,
            l,
            BASELINE_VERSION.to_owned(),
            dispersion(System::Line),
        ));
    }
    systems.push((
        System::Rolling,
        rolling,
        BASELINE_VERSION.to_owned(),
        dispersion(System::Rolling),
    ));
    if let Some(m) = model {
        let predicted = m.artifact.predict_model(&f.features);
        systems.push((
            System::Model,
            predicted,
            m.version.clone(),
            m.artifact.dispersion(System::Model),
        ));
        systems.push((
            System::Ensemble,
            m.artifact.predict_ensemble(line, rolling, predicted),
            m.version.clone(),
            m.artifact.dispersion(System::Ensemble),
        ));
    }
    systems
        .into_iter()
        .map(|(system, predicted, version, dispersion)| {
            let predicted = (predicted.max(0.0) * 100.0).round() / 100.0;
            let c = call(predicted, &p.quotes, &dispersion, MIN_CONFIDENCE);
            Prediction {
                prediction_id: prediction_id(system.id(), &f.game_id, &f.player_lookup, timing),
                system_id: system.id().to_owned(),
                player_lookup: f.player_lookup.clone(),
                game_id: f.game_id.clone(),
                game_date: date,
                team_abbr: p.team.clone(),
                predicted_points: predicted,
                current_points_line: c.line,
                line_bookmakers: c.bookmakers,
                line_snapshot_at: c.snapshot,
                over_price: c.over_price,
                under_price: c.under_price,
                line_margin: c.margin.map(|m| (m * 100.0).round() / 100.0),
                recommendation: c.recommendation.as_str().to_owned(),
                confidence_score: (c.confidence * 10_000.0).round() / 10_000.0,
                model_version: version,
                feature_version: Some(f.feature_version.clone()),
                timing,
                is_active: true,
                player_bucket: player_bucket(&f.player_lookup),
                created_at,
            }
        })
        .collect()
}

/// `player-prop-predictions`: this shard's players' predictions for D from every system.
/// Checks: `model-available` (a model trained before D exists) and `predictions-written`
/// (players with a line but no prediction from some system that predicts for D, named).
pub async fn player_prop_predictions(ctx: &mut Ctx) -> Result<(), Failure> {
    let shard = ctx.config.shard;
    shard.check()?;
    let range = shard_range(shard);
    let date = ctx.args.date;
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let games = cal.on(date);
    let Some(first_tipoff) = games.iter().map(|g| g.tipoff).min() else {
        ctx.warn(format!(
            "no games on {date}: player_prop_predictions has nothing to write"
        ));
        ctx.check("predictions-written", true, Some(0), Some(0), vec![]);
        return Ok(());
    };
    let now = ctx.now();
    let timing = if now < first_tipoff {
        Timing::PreTipoff
    } else {
        Timing::AsOfTipoff
    };
    // Lines as of the prediction's instant; a reconstruction uses what was posted before the
    // player's own tip-off.
    let tipoffs: BTreeMap<&str, Timestamp> = games
        .iter()
        .map(|g| (g.game_id.as_str(), g.tipoff))
        .collect();
    if !asof::players_knowable(&cal, date, ctx.args.mode) {
        ctx.warn(format!(
            "no team of {date} has played yet this season: the feature store has no players, nothing to predict"
        ));
        ctx.check("predictions-written", true, Some(0), Some(0), vec![]);
        return Ok(());
    }
    let features: Vec<FeatureRow> =
        tables::read_required::<FeatureRow>(wh.as_ref(), date, "ml-feature-store")
            .await?
            .into_iter()
            .filter(|f| range.contains(player_bucket(&f.player_lookup)))
            .collect();
    let stale: Vec<String> = features
        .iter()
        .filter(|f| f.feature_version != FEATURE_VERSION)
        .map(|f| f.player_lookup.clone())
        .collect();
    if !stale.is_empty() {
        return Err(Failure::Permanent(format!(
            "ml_feature_store_v2 {date} holds rows of another feature set than {FEATURE_VERSION} \
             (e.g. {}): run ml-feature-store for {date} again",
            stale[0]
        )));
    }
    let teams: BTreeMap<(String, String), String> =
        tables::read::<PlayerContext>(wh.as_ref(), date, date)
            .await?
            .into_iter()
            .map(|c| ((c.game_id, c.player_lookup), c.team))
            .collect();
    let mut quotes: BTreeMap<(String, String), Vec<Quote>> = BTreeMap::new();
    for q in tables::read::<QuoteRow>(wh.as_ref(), date, date).await? {
        quotes
            .entry((q.game_id, q.player_lookup))
            .or_default()
            .push(q.quote);
    }
    let model = match train::newest_before(&train::versions(ctx).await?, date) {
        Some(v) => Some(ModelInUse {
            artifact: train::load(ctx, v).await?,
            version: v.name.clone(),
        }),
        None => None,
    };
    ctx.check(
        "model-available",
        model.is_some(),
        model.as_ref().map(|_| 1),
        Some(1),
        vec![],
    );
    if model.is_none() {
        ctx.warn(format!(
            "no points model trained before {date}: only the baselines predict (run train-points-model)"
        ));
    }
    let created_at = ctx.processed_at();
    let systems_for_date = if model.is_some() { 4 } else { 2 };
    let mut new = Vec::new();
    let mut predicted: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &features {
        let key = (f.game_id.clone(), f.player_lookup.clone());
        let as_of = match timing {
            Timing::PreTipoff => now,
            Timing::AsOfTipoff => tipoffs
                .get(f.game_id.as_str())
                .copied()
                .unwrap_or(first_tipoff),
        };
        let input = PlayerInput {
            features: f,
            team: teams.get(&key).cloned().unwrap_or_default(),
            quotes: latest_per_book(quotes.get(&key).map_or(&[][..], Vec::as_slice), as_of),
        };
        let rows = predict_player(&input, model.as_ref(), timing, date, created_at);
        predicted.insert(key, rows.len());
        new.extend(rows);
    }
    // Players of this shard with a line: each needs a prediction from every system of the
    // date. One without a feature row (left out of the feature store) is named.
    let with_lines: Vec<&(String, String)> = quotes
        .keys()
        .filter(|(_, player)| range.contains(player_bucket(player)))
        .collect();
    let missing: Vec<String> = with_lines
        .iter()
        .filter(|k| predicted.get(*k).copied().unwrap_or(0) < systems_for_date)
        .map(|(game, player)| format!("{player} ({game})"))
        .collect();
    let with_lines = with_lines.len();
    let stored = stored_in_range(wh.as_ref(), date, &range).await?;
    let rows = merge(stored, new, timing);
    let schema = TableSchema::from_json(PREDICTIONS, "compiled-in schema")
        .map_err(|e| Failure::Permanent(format!("compiled-in schema: {e}")))?;
    let t = schema.table_ref();
    wh.ensure_table(&schema)
        .await
        .map_err(|e| warehouse_failure(&format!("ensuring {t}"), &e))?;
    let written: Vec<_> = rows.iter().map(Prediction::to_row).collect();
    let n = wh
        .replace_range(&t, date, &range, &written)
        .await
        .map_err(|e| warehouse_failure(&format!("replacing {t} {date} {range:?}"), &e))?;
    ctx.result
        .rows
        .insert(t.to_string(), i64::try_from(n).unwrap_or(i64::MAX));
    let with_lines = i64::try_from(with_lines).unwrap_or(i64::MAX);
    let missing_n = i64::try_from(missing.len()).unwrap_or(i64::MAX);
    ctx.check(
        "predictions-written",
        missing.is_empty(),
        Some(with_lines - missing_n),
        Some(with_lines),
        missing,
    );
    Ok(())
}

/// The stored predictions of D in `range` (none when the table does not exist yet).
async fn stored_in_range(
    wh: &dyn Warehouse,
    date: Date,
    range: &RowRange,
) -> Result<Vec<Prediction>, Failure> {
    Ok(tables::read::<Prediction>(wh, date, date)
        .await?
        .into_iter()
        .filter(|p| range.contains(p.player_bucket))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pred(system: &str, player: &str, timing: Timing, points: f64) -> Prediction {
        Prediction {
            prediction_id: prediction_id(system, "g1", player, timing),
            system_id: system.into(),
            player_lookup: player.into(),
            game_id: "g1".into(),
            game_date: jiff::civil::date(2026, 1, 20),
            team_abbr: "BOS".into(),
            predicted_points: points,
            current_points_line: Some(15.5),
            line_bookmakers: Some("draftkings".into()),
            line_snapshot_at: None,
            over_price: Some(-110),
            under_price: Some(-110),
            line_margin: Some(points - 15.5),
            recommendation: "OVER".into(),
            confidence_score: 0.55,
            model_version: BASELINE_VERSION.into(),
            feature_version: Some(FEATURE_VERSION.into()),
            timing,
            is_active: true,
            player_bucket: player_bucket(player),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn shards_cover_every_bucket_once() {
        for n in [1, 2, 3, 4, 7, 1024] {
            let ranges: Vec<RowRange> = (0..n)
                .map(|index| shard_range(Shard { index, count: n }))
                .collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, BUCKETS);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start, "{n} shards leave a gap or overlap");
            }
        }
        assert!((0..BUCKETS).contains(&player_bucket("lebronjames")));
        assert_eq!(player_bucket("lebronjames"), player_bucket("lebronjames"));
    }

    #[test]
    fn a_rerun_replaces_its_own_timing_and_never_a_pre_tipoff_prediction() {
        // A SameDay run before tip-off, then its re-run: the re-run replaces it.
        let first = vec![pred("ensemble_v1", "a", Timing::PreTipoff, 20.0)];
        let rerun = vec![pred("ensemble_v1", "a", Timing::PreTipoff, 21.0)];
        let rows = merge(first, rerun, Timing::PreTipoff);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].predicted_points, 21.0);
        assert!(rows[0].is_active);
        // The next day's Production run predicts after tip-off: the pre-tip-off row stays
        // active, the reconstruction is kept beside it, inactive.
        let after = vec![
            pred("ensemble_v1", "a", Timing::AsOfTipoff, 25.0),
            pred("ensemble_v1", "b", Timing::AsOfTipoff, 9.0),
        ];
        let rows = merge(rows, after, Timing::AsOfTipoff);
        let active: Vec<(&str, f64)> = rows
            .iter()
            .filter(|p| p.is_active)
            .map(|p| (p.player_lookup.as_str(), p.predicted_points))
            .collect();
        let mut active = active;
        active.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(active, [("a", 21.0), ("b", 9.0)]);
        assert_eq!(rows.len(), 3);
        // A late re-run of the reconstruction replaces only the reconstruction.
        let again = vec![pred("ensemble_v1", "a", Timing::AsOfTipoff, 26.0)];
        let rows = merge(rows, again, Timing::AsOfTipoff);
        assert_eq!(
            rows.len(),
            2,
            "b's reconstruction belongs to the same timing: replaced"
        );
        assert!(
            rows.iter()
                .any(|p| p.predicted_points == 21.0 && p.is_active)
        );
        assert!(
            rows.iter()
                .any(|p| p.predicted_points == 26.0 && !p.is_active)
        );
    }

    #[test]
    fn ids_are_deterministic_and_distinguish_timing() {
        let a = prediction_id("ensemble_v1", "g", "p", Timing::PreTipoff);
        assert_eq!(a, prediction_id("ensemble_v1", "g", "p", Timing::PreTipoff));
        assert_ne!(
            a,
            prediction_id("ensemble_v1", "g", "p", Timing::AsOfTipoff)
        );
        assert_ne!(
            a,
            prediction_id("rolling_avg_v1", "g", "p", Timing::PreTipoff)
        );
        assert_eq!(a.len(), 24);
    }
}
