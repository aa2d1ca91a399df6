//! Phase 6: publish. `grade-predictions` grades D's active predictions against D's results
//! (`nba_predictions.prediction_accuracy`) and sums each system's day
//! (`nba_predictions.prediction_daily_metrics`); `export-predictions` publishes D's predictions
//! and, once graded, its results as JSON files in object storage (`docs/exports.md`);
//! `export-live` follows D's games on the upstream while they are played ([`live`]).
//!
//! Grading is D's results: Production and Backfill grade; SameDay, before tip-off, has nothing
//! to grade and says so (as phase 3's post-game summaries do). The arithmetic is in [`grade`]
//! and the file shapes in [`export`], pure functions of their rows; this module reads, checks
//! and writes.

pub mod export;
pub mod grade;
pub mod live;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};

use tipoff_crds::Mode;
use tipoff_warehouse::storage::ObjectKey;

use crate::analytics::asof::{Calendar, players_knowable, rows_written_check};
use crate::contract::Failure;
use crate::runner::Ctx;
use crate::tables;

use self::records::{DailyMetrics, GameResult, Graded, Prediction};

const PREDICTION_ACCURACY: &str =
    include_str!("../../../config/schemas/nba_predictions/prediction_accuracy.json");
const DAILY_METRICS: &str =
    include_str!("../../../config/schemas/nba_predictions/prediction_daily_metrics.json");

/// The processor that writes the predictions phase 6 reads.
pub const PREDICTIONS_WRITER: &str = "player-prop-predictions";

/// D's active predictions, or a permanent failure naming the table and the processor to run
/// when a date with games has none.
async fn active_predictions(
    wh: &dyn tipoff_warehouse::Warehouse,
    date: jiff::civil::Date,
    games: usize,
) -> Result<Vec<Prediction>, Failure> {
    let predictions = tables::read::<Prediction>(wh, date, date).await?;
    if !predictions.iter().any(|p| p.is_active) {
        return Err(Failure::Permanent(format!(
            "{} has no active predictions for {date}, which has {games} games: run {PREDICTIONS_WRITER} for {date} first",
            tables::table(tables::name::PREDICTIONS),
        )));
    }
    Ok(predictions)
}

/// `grade-predictions`: every active prediction of D graded against D's box scores (a DNP
/// voids it), and each system's daily metrics.
pub async fn grade_predictions(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let date = ctx.args.date;
    let table = "nba_predictions.prediction_accuracy";
    let games = cal.on(date);
    let knowable = players_knowable(&cal, date, ctx.args.mode);
    if games.is_empty() || !knowable || ctx.args.mode == Mode::SameDay {
        ctx.warn(if games.is_empty() {
            format!("no games on {date}: {table} has nothing to write")
        } else if !knowable {
            // Opening night: no player could be expected, so nothing was predicted.
            format!("no team of {date} has played yet this season: no prediction to grade")
        } else {
            // Before tip-off there are no results; the Production run the next day grades D.
            format!(
                "SameDay: {date}'s results are graded by the Production run the next day; {table} not written"
            )
        });
        // Every gate is reported even with nothing to check (an unreported gate fails).
        rows_written_check(ctx, table, 0, false);
        ctx.check("predictions-graded", true, Some(0), Some(0), vec![]);
        return Ok(());
    }
    let predictions = active_predictions(wh.as_ref(), date, games.len()).await?;
    let results =
        tables::read_required::<GameResult>(wh.as_ref(), date, "player-game-summary").await?;
    let grading = grade::grade_all(&predictions, &results).map_err(|e| {
        Failure::Permanent(format!(
            "{} {date}: {e}: rerun {PREDICTIONS_WRITER} for {date}",
            tables::table(tables::name::PREDICTIONS)
        ))
    })?;
    let metrics = grade::daily_metrics(&grading);
    let at = ctx.processed_at();
    let acc = grade::accuracy_rows(&grading, date, at);
    let n = tables::write_partition(ctx, wh.as_ref(), PREDICTION_ACCURACY, &acc).await?;
    let met = grade::metrics_rows(&metrics, date, at);
    tables::write_partition(ctx, wh.as_ref(), DAILY_METRICS, &met).await?;
    rows_written_check(ctx, table, n, true);

    // Every active prediction has a result: a box-score line or a DNP.
    let matchups: BTreeMap<&str, String> = games
        .iter()
        .map(|g| (g.game_id.as_str(), g.matchup()))
        .collect();
    let missing: BTreeSet<String> = grading
        .ungraded
        .iter()
        .map(|p| {
            let game = matchups
                .get(p.game_id.as_str())
                .cloned()
                .unwrap_or_else(|| format!("game {} not on {date}", p.game_id));
            format!("{} ({game})", p.player_lookup)
        })
        .collect();
    let active = grading.graded.len() + grading.ungraded.len();
    let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    ctx.check(
        "predictions-graded",
        grading.ungraded.is_empty(),
        Some(as_i64(grading.graded.len())),
        Some(as_i64(active)),
        missing.into_iter().collect(),
    );
    let voided: i64 = metrics.iter().map(|m| m.voided).sum();
    ctx.check("predictions-voided", true, Some(voided), None, vec![]);
    Ok(())
}

/// Writes an export file and returns its key.
async fn put_export<T: serde::Serialize>(
    ctx: &Ctx,
    kind: &str,
    doc: &T,
) -> Result<ObjectKey, Failure> {
    let key = export::key(kind, ctx.args.date)?;
    ctx.put(&key, export::to_bytes(doc)?).await?;
    Ok(key)
}

/// The export files whose `game_date` is not `date`, as `key: problem`; `None` bytes are a
/// file that was not found after writing.
pub fn date_mismatches(
    date: jiff::civil::Date,
    files: &[(String, Option<bytes::Bytes>)],
) -> Vec<String> {
    files
        .iter()
        .filter_map(|(key, bytes)| match bytes {
            None => Some(format!("{key}: not found after writing")),
            Some(b) => match export::game_date_of(b) {
                Ok(d) if d == date => None,
                Ok(d) => Some(format!("{key}: game_date {d}")),
                Err(e) => Some(format!("{key}: {e}")),
            },
        })
        .collect()
}

/// The `export-date-matches` gate: reads each written file back and compares its `game_date`
/// with the run's date (seed 003: an export with the wrong date).
pub async fn date_check(ctx: &mut Ctx, written: &[ObjectKey]) -> Result<(), Failure> {
    let mut files = Vec::with_capacity(written.len());
    for key in written {
        files.push((key.to_string(), ctx.get(key).await?));
    }
    let wrong = date_mismatches(ctx.args.date, &files);
    let n = i64::try_from(written.len()).unwrap_or(i64::MAX);
    let bad = i64::try_from(wrong.len()).unwrap_or(i64::MAX);
    ctx.check(
        "export-date-matches",
        wrong.is_empty(),
        Some(n - bad),
        Some(n),
        wrong,
    );
    Ok(())
}

/// `export-predictions`: `exports/v1/predictions/<D>.json` always (when D has games), and
/// `exports/v1/results/<D>.json` once D is graded (Production, Backfill).
pub async fn export_predictions(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let date = ctx.args.date;
    let games = cal.on(date).len();
    if games == 0 {
        ctx.warn(format!("no games on {date}: no export written"));
        date_check(ctx, &[]).await?;
        return Ok(());
    }
    if !players_knowable(&cal, date, ctx.args.mode) {
        ctx.warn(format!(
            "no team of {date} has played yet this season: nothing was predicted, no export written"
        ));
        date_check(ctx, &[]).await?;
        return Ok(());
    }
    let predictions = active_predictions(wh.as_ref(), date, games).await?;
    let mut written = vec![
        put_export(
            ctx,
            export::kind::PREDICTIONS,
            &export::predictions_file(date, &predictions),
        )
        .await?,
    ];
    if ctx.args.mode == Mode::SameDay {
        ctx.warn(format!(
            "SameDay: {date} is not graded yet; the Production run writes exports/{}/results/{date}.json",
            export::VERSION
        ));
    } else {
        let metrics = tables::read::<DailyMetrics>(wh.as_ref(), date, date).await?;
        if metrics.is_empty() {
            return Err(Failure::Permanent(format!(
                "{} has no rows for {date}: run grade-predictions for {date} first",
                tables::table(tables::name::DAILY_METRICS)
            )));
        }
        let graded = tables::read::<Graded>(wh.as_ref(), date, date).await?;
        let doc = export::results_file(date, &graded, &metrics);
        written.push(put_export(ctx, export::kind::RESULTS, &doc).await?);
    }
    let n = i64::try_from(written.len()).unwrap_or(i64::MAX);
    ctx.check("exports-written", true, Some(n), None, vec![]);
    date_check(ctx, &written).await
}

pub use live::export_live;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_another_date_or_none_fails_the_date_gate() {
        let d = jiff::civil::date(2026, 1, 14);
        let file = |date: &str| {
            Some(bytes::Bytes::from(format!(
                r#"{{"kind":"predictions","game_date":"{date}"}}"#
            )))
        };
        let files = vec![
            (
                "exports/v1/predictions/2026-01-14.json".to_owned(),
                file("2026-01-14"),
            ),
            (
                "exports/v1/results/2026-01-14.json".to_owned(),
                file("2026-01-13"),
            ),
            ("exports/v1/live/2026-01-14.json".to_owned(), None),
            (
                "exports/v1/live-grading/2026-01-14.json".to_owned(),
                Some(bytes::Bytes::from("{}")),
            ),
        ];
        let wrong = date_mismatches(d, &files);
        assert_eq!(wrong.len(), 3, "{wrong:?}");
        assert_eq!(
            wrong[0],
            "exports/v1/results/2026-01-14.json: game_date 2026-01-13"
        );
        assert!(wrong[1].ends_with("not found after writing"));
        assert!(wrong[2].contains("no readable game_date"));
        assert!(date_mismatches(d, &files[..1]).is_empty());
    }
}
