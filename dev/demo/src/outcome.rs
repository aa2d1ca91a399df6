//! What the pipeline exists for, read back from the lake and the object store after the run:
//! the date's predictions per system with a few of the calls, the export files, and the
//! accuracy of the graded predictions (phase 6's daily metrics).

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::Date;
use serde::Serialize;
use tipoff_warehouse::{Row, TableRef, Value, Warehouse};

use tipoff_cli::error::{CliError, Result};

/// The date's predictions.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Predictions {
    /// Active prediction rows per system.
    pub rows_per_system: BTreeMap<String, usize>,
    /// OVER/UNDER calls per system.
    pub calls_per_system: BTreeMap<String, usize>,
    /// The ensemble's most confident calls.
    pub top_calls: Vec<CallLine>,
    /// The export files written for the date (paths under the object store).
    pub exports: Vec<String>,
}

/// One call, as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLine {
    /// Player key.
    pub player: String,
    /// Team.
    pub team: String,
    /// Predicted points.
    pub predicted: f64,
    /// OVER or UNDER.
    pub recommendation: String,
    /// The line and the books posting it.
    pub line: Option<f64>,
    /// Books.
    pub books: Option<String>,
    /// Probability the call is right.
    pub confidence: f64,
    /// Points scored, once graded.
    pub actual: Option<i64>,
    /// WIN, LOSS, PUSH or VOID, once graded.
    pub outcome: Option<String>,
}

/// One system's accuracy over the graded dates.
#[derive(Debug, Serialize, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SystemAccuracy {
    /// Predictions graded (DNPs are voided and not counted).
    pub count: i64,
    /// Mean absolute error in points.
    pub mae: Option<f64>,
    /// OVER/UNDER calls graded (pushes aside).
    pub calls: i64,
    /// Share of those calls that were right.
    pub hit_rate: Option<f64>,
    /// Units won per unit staked at the posted prices.
    pub return_per_unit: Option<f64>,
}

fn text(r: &Row, col: &str) -> String {
    match r.get(col) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn float(r: &Row, col: &str) -> Option<f64> {
    match r.get(col) {
        Some(Value::Float(f)) => Some(*f),
        Some(Value::Int(i)) => Some(*i as f64),
        _ => None,
    }
}

fn int(r: &Row, col: &str) -> i64 {
    match r.get(col) {
        Some(Value::Int(i)) => *i,
        _ => 0,
    }
}

async fn rows(wh: &dyn Warehouse, table: &str, from: Date, to: Date) -> Result<Vec<Row>> {
    let t = TableRef::new("nba_predictions", table);
    match wh.read_range(&t, from, to, None).await {
        Ok(r) => Ok(r),
        Err(e) if e.category() == "TableNotFound" => Ok(Vec::new()),
        Err(e) => Err(CliError::Other(format!("reading {t}: {e}"))),
    }
}

/// The date's predictions and exports.
pub async fn predictions(wh: &dyn Warehouse, objects: &Path, date: Date) -> Result<Predictions> {
    let preds = rows(wh, "player_prop_predictions", date, date).await?;
    let graded: BTreeMap<String, Row> = rows(wh, "prediction_accuracy", date, date)
        .await?
        .into_iter()
        .map(|r| (text(&r, "prediction_id"), r))
        .collect();
    let mut out = Predictions::default();
    let active: Vec<&Row> = preds
        .iter()
        .filter(|r| r.get("is_active") == Some(&Value::Bool(true)))
        .collect();
    for r in &active {
        let system = text(r, "system_id");
        *out.rows_per_system.entry(system.clone()).or_default() += 1;
        if text(r, "recommendation") != "PASS" {
            *out.calls_per_system.entry(system).or_default() += 1;
        }
    }
    let mut calls: Vec<&&Row> = active
        .iter()
        .filter(|r| text(r, "system_id") == "ensemble_v1" && text(r, "recommendation") != "PASS")
        .collect();
    calls.sort_by(|a, b| {
        float(b, "confidence_score")
            .unwrap_or(0.0)
            .total_cmp(&float(a, "confidence_score").unwrap_or(0.0))
            .then_with(|| text(a, "player_lookup").cmp(&text(b, "player_lookup")))
    });
    out.top_calls = calls
        .into_iter()
        .take(5)
        .map(|r| {
            let g = graded.get(&text(r, "prediction_id"));
            CallLine {
                player: text(r, "player_lookup"),
                team: text(r, "team_abbr"),
                predicted: float(r, "predicted_points").unwrap_or(0.0),
                recommendation: text(r, "recommendation"),
                line: float(r, "current_points_line"),
                books: Some(text(r, "line_bookmakers")).filter(|b| !b.is_empty()),
                confidence: float(r, "confidence_score").unwrap_or(0.0),
                actual: g.map(|g| int(g, "actual_points")),
                outcome: g.map(|g| text(g, "outcome")),
            }
        })
        .collect();
    for kind in ["predictions", "results"] {
        let rel = format!("exports/v1/{kind}/{date}.json");
        if objects.join(&rel).is_file() {
            out.exports.push(rel);
        }
    }
    Ok(out)
}

/// Per-system accuracy over `from..=to` from `prediction_daily_metrics`.
pub async fn accuracy(
    wh: &dyn Warehouse,
    from: Date,
    to: Date,
) -> Result<BTreeMap<String, SystemAccuracy>> {
    #[derive(Default)]
    struct Sum {
        graded: i64,
        abs: f64,
        wins: i64,
        losses: i64,
        staked: f64,
        returned: f64,
    }
    let mut sums: BTreeMap<String, Sum> = BTreeMap::new();
    for r in rows(wh, "prediction_daily_metrics", from, to).await? {
        let s = sums.entry(text(&r, "system_id")).or_default();
        let graded = int(&r, "graded");
        s.graded += graded;
        s.abs += float(&r, "mae").unwrap_or(0.0) * graded as f64;
        s.wins += int(&r, "wins");
        s.losses += int(&r, "losses");
        s.staked += float(&r, "units_staked").unwrap_or(0.0);
        s.returned += float(&r, "return_units").unwrap_or(0.0);
    }
    Ok(sums
        .into_iter()
        .map(|(system, s)| {
            let calls = s.wins + s.losses;
            (
                system,
                SystemAccuracy {
                    count: s.graded,
                    mae: (s.graded > 0).then(|| s.abs / s.graded as f64),
                    calls,
                    hit_rate: (calls > 0).then(|| s.wins as f64 / calls as f64),
                    return_per_unit: (s.staked > 0.0).then(|| s.returned / s.staked),
                },
            )
        })
        .collect())
}

impl SystemAccuracy {
    /// `MAE 4.12`, with `calls right 58.3% of 120` (each `-` when there is nothing to measure).
    pub fn mae_and_hit_rate(&self) -> (String, String) {
        (
            self.mae.map_or("-".to_owned(), |m| format!("{m:.2}")),
            self.hit_rate.map_or("-".to_owned(), |h| {
                format!("{:.1}% of {}", 100.0 * h, self.calls)
            }),
        )
    }
}

/// The lines the demo prints.
pub fn render(p: &Predictions, accuracy: &BTreeMap<String, SystemAccuracy>) -> Vec<String> {
    let mut out = Vec::new();
    if p.rows_per_system.is_empty() {
        out.push("  (no predictions were written)".to_owned());
        return out;
    }
    for (system, n) in &p.rows_per_system {
        let calls = p.calls_per_system.get(system).copied().unwrap_or(0);
        let acc = accuracy.get(system).map_or_else(String::new, |a| {
            let (mae, hits) = a.mae_and_hit_rate();
            format!("; graded {}: MAE {mae}, calls right {hits}", a.count)
        });
        out.push(format!(
            "  {system:<18} {n:>4} predictions, {calls:>4} OVER/UNDER calls{acc}"
        ));
    }
    if !p.top_calls.is_empty() {
        out.push("  ensemble_v1's most confident calls:".to_owned());
        for c in &p.top_calls {
            let graded = match (&c.outcome, c.actual) {
                (Some(o), Some(a)) => format!("  -> scored {a}: {o}"),
                _ => String::new(),
            };
            out.push(format!(
                "    {:<22} {:<4} predicted {:>5.1}  {:<5} {} ({})  p={:.2}{graded}",
                c.player,
                c.team,
                c.predicted,
                c.recommendation,
                c.line.map_or("-".to_owned(), |l| format!("{l:.1}")),
                c.books.as_deref().unwrap_or("-"),
                c.confidence
            ));
        }
    }
    for e in &p.exports {
        out.push(format!("  export: {e}"));
    }
    out
}
