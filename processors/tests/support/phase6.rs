//! Phase 6 fixtures: prediction rows of phase 5's table written directly, D's results from
//! phases 1-3, and a set of calls whose outcomes are known (WIN, LOSS, PUSH, PASS, VOID).

use jiff::civil::Date;
use tipoff_crds::Mode;
use tipoff_warehouse::{Row, TableRef, TableSchema, Value, Warehouse};

use super::{World, season};

pub fn accuracy() -> TableRef {
    TableRef::new("nba_predictions", "prediction_accuracy")
}
pub fn metrics() -> TableRef {
    TableRef::new("nba_predictions", "prediction_daily_metrics")
}
pub fn predictions() -> TableRef {
    TableRef::new("nba_predictions", "player_prop_predictions")
}

const PREDICTIONS_SCHEMA: &str =
    include_str!("../../../config/schemas/nba_predictions/player_prop_predictions.json");

/// An early date with at least one DNP, so a prediction can be voided; past the season's first
/// two dates, whose teams have not all played yet (on opening night nothing is predicted, so
/// phase 6 has nothing to grade).
pub fn date_with_dnp() -> Date {
    let s = season();
    *s.by_date
        .iter()
        .skip(2)
        .find(|(_, games)| {
            games.iter().any(|&g| {
                s.player_games_of(g)
                    .iter()
                    .any(|pg| pg.dnp_reason.is_some())
            })
        })
        .unwrap()
        .0
}

pub fn str_of(r: &Row, col: &str) -> String {
    match &r[col] {
        Value::String(s) => s.clone(),
        v => panic!("{col} is {v:?}"),
    }
}

pub fn int_of(r: &Row, col: &str) -> i64 {
    match &r[col] {
        Value::Int(i) => *i,
        v => panic!("{col} is {v:?}"),
    }
}

pub fn float_of(r: &Row, col: &str) -> f64 {
    match &r[col] {
        Value::Float(f) => *f,
        v => panic!("{col} is {v:?}"),
    }
}

/// One prediction row of phase 5's schema.
#[allow(clippy::too_many_arguments)]
pub fn prediction(
    date: Date,
    system: &str,
    player: &str,
    game: &str,
    team: &str,
    predicted: f64,
    line: Option<f64>,
    rec: &str,
    timing: &str,
    active: bool,
) -> Row {
    let at = date
        .at(16, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    [
        (
            "prediction_id",
            Value::from(format!("{system}:{game}:{player}:{timing}")),
        ),
        ("system_id", system.into()),
        ("player_lookup", player.into()),
        ("game_id", game.into()),
        ("game_date", date.into()),
        ("team_abbr", team.into()),
        ("predicted_points", predicted.into()),
        ("current_points_line", line.into()),
        ("line_bookmakers", Value::from("draftkings,fanduel")),
        ("line_snapshot_at", Value::timestamp(at)),
        ("over_price", Value::Int(-110)),
        ("under_price", Value::Int(120)),
        ("line_margin", line.map(|l| predicted - l).into()),
        ("recommendation", rec.into()),
        ("confidence_score", 0.56.into()),
        ("model_version", "v1".into()),
        ("feature_version", "v2.1".into()),
        ("prediction_timing", timing.into()),
        ("is_active", active.into()),
        ("player_bucket", Value::Int(7)),
        ("created_at", Value::timestamp(at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Writes prediction fixtures for D (phase 5's table, as `player-prop-predictions` would).
pub async fn write_predictions(wh: &dyn Warehouse, date: Date, rows: &[Row]) {
    let schema = TableSchema::from_json(PREDICTIONS_SCHEMA, "player_prop_predictions").unwrap();
    wh.ensure_table(&schema).await.unwrap();
    wh.replace_partition(&schema.table_ref(), date, rows)
        .await
        .unwrap();
}

/// D's summary rows: (player, game, team, points, minutes, dnp).
pub async fn summaries(wh: &dyn Warehouse, d: Date) -> Vec<(String, String, String, i64, bool)> {
    let rows = wh
        .read_range(
            &TableRef::new("nba_analytics", "player_game_summary"),
            d,
            d,
            None,
        )
        .await
        .unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                str_of(r, "player_lookup"),
                str_of(r, "game_id"),
                str_of(r, "team_abbr"),
                int_of(r, "points"),
                r["dnp_reason"] != Value::Null,
            )
        })
        .collect();
    out.sort();
    out
}

/// The fixture: for five players who played and one DNP, calls whose outcome is known.
/// Returns the rows and the expected outcome per (system, player).
pub async fn fixture(
    wh: &dyn Warehouse,
    d: Date,
) -> (Vec<Row>, Vec<(String, String, &'static str)>) {
    let s = summaries(wh, d).await;
    let played: Vec<_> = s.iter().filter(|p| !p.4 && p.3 >= 4).take(5).collect();
    let dnp = s.iter().find(|p| p.4).expect("a DNP on the date");
    assert_eq!(played.len(), 5);
    let pts = |i: usize| played[i].3 as f64;
    let (lc, pm) = ("line_consensus_v1", "points_model_v1");
    let p = |system: &str, i: usize, predicted: f64, line: Option<f64>, rec: &str| {
        let (player, game, team, _, _) = played[i];
        prediction(
            d,
            system,
            player,
            game,
            team,
            predicted,
            line,
            rec,
            "pre_tipoff",
            true,
        )
    };
    let rows = vec![
        p(lc, 0, pts(0) + 2.0, Some(pts(0) - 0.5), "OVER"), // WIN at -110
        p(lc, 1, pts(1) - 3.0, Some(pts(1) - 0.5), "UNDER"), // LOSS
        p(lc, 2, pts(2) - 2.0, Some(pts(2)), "UNDER"),      // PUSH on a whole line
        p(lc, 3, pts(3) + 0.2, Some(pts(3) + 0.5), "PASS"), // PASS
        prediction(
            d,
            lc,
            &dnp.0,
            &dnp.1,
            &dnp.2,
            12.0,
            Some(10.5),
            "OVER",
            "pre_tipoff",
            true,
        ), // VOID
        p(pm, 0, pts(0) - 2.0, Some(pts(0) + 1.5), "UNDER"), // WIN at +120
        // Superseded: an as-of-tipoff row that a pre-tipoff one replaces is never graded.
        {
            let (player, game, team, _, _) = played[0];
            prediction(
                d,
                pm,
                player,
                game,
                team,
                40.0,
                Some(1.5),
                "OVER",
                "as_of_tipoff",
                false,
            )
        },
        p(pm, 4, pts(4) + 1.0, None, "PASS"), // no line: PASS
    ];
    let expect = vec![
        (lc.to_owned(), played[0].0.clone(), "WIN"),
        (lc.to_owned(), played[1].0.clone(), "LOSS"),
        (lc.to_owned(), played[2].0.clone(), "PUSH"),
        (lc.to_owned(), played[3].0.clone(), "PASS"),
        (lc.to_owned(), dnp.0.clone(), "VOID"),
        (pm.to_owned(), played[0].0.clone(), "WIN"),
        (pm.to_owned(), played[4].0.clone(), "PASS"),
    ];
    (rows, expect)
}

/// Phases 1-2 and `player-game-summary` for D in Production: D's results.
pub async fn results_of(w: &World, d: Date) {
    w.phases(d, Mode::Production, &[1, 2]).await;
    w.ok("player-game-summary", d, Mode::Production).await;
}
