//! Typed reads of the warehouse for phases 3 and 4: each record type names the columns it
//! needs and how a row becomes a record, so a missing partition or a malformed row is an error
//! that names the table, the date and the column, never a panic or a silently skipped row.
//! Writes go through [`write_partition`]: the table is ensured from its compiled-in schema,
//! then the date's partition is replaced atomically with the rows built in full beforehand, so
//! a processor never leaves a partial partition and a rerun never appends.

use std::collections::BTreeMap;

use jiff::civil::Date;
use tipoff_warehouse::{Row, TableRef, TableSchema, Value, Warehouse};

use crate::contract::Failure;
use crate::runner::{Ctx, warehouse_failure};

/// `dataset.table` of the tables phases 3 and 4 read and write.
pub mod name {
    /// Phase 2: the schedule.
    pub const SCHEDULE: (&str, &str) = ("nba_raw", "nbac_schedule");
    /// Phase 2: box scores.
    pub const BOXSCORES: (&str, &str) = ("nba_raw", "bdl_player_boxscores");
    /// Phase 2: play-by-play shots and free throws.
    pub const PLAY_BY_PLAY: (&str, &str) = ("nba_raw", "nbac_play_by_play");
    /// Phase 2: the injury report.
    pub const INJURY_REPORT: (&str, &str) = ("nba_raw", "nbac_injury_report");
    /// Phase 2: player points props.
    pub const PLAYER_PROPS: (&str, &str) = ("nba_raw", "odds_api_player_points_props");
    /// Phase 2: spreads and totals.
    pub const GAME_LINES: (&str, &str) = ("nba_raw", "odds_api_game_lines");
    /// Phase 3.
    pub const PLAYER_GAME_SUMMARY: (&str, &str) = ("nba_analytics", "player_game_summary");
    /// Phase 3.
    pub const TEAM_OFFENSE: (&str, &str) = ("nba_analytics", "team_offense_game_summary");
    /// Phase 3.
    pub const TEAM_DEFENSE: (&str, &str) = ("nba_analytics", "team_defense_game_summary");
    /// Phase 3.
    pub const UPCOMING_PLAYER: (&str, &str) = ("nba_analytics", "upcoming_player_game_context");
    /// Phase 3.
    pub const UPCOMING_TEAM: (&str, &str) = ("nba_analytics", "upcoming_team_game_context");
    /// Phase 4.
    pub const TEAM_DEFENSE_ZONES: (&str, &str) = ("nba_precompute", "team_defense_zone_analysis");
    /// Phase 4.
    pub const PLAYER_SHOT_ZONES: (&str, &str) = ("nba_precompute", "player_shot_zone_analysis");
    /// Phase 4.
    pub const PLAYER_DAILY_CACHE: (&str, &str) = ("nba_precompute", "player_daily_cache");
    /// Phase 4.
    pub const COMPOSITE_FACTORS: (&str, &str) = ("nba_precompute", "player_composite_factors");
    /// Phase 4.
    pub const FEATURE_STORE: (&str, &str) = ("nba_predictions", "ml_feature_store_v2");
    /// Phase 5.
    pub const PREDICTIONS: (&str, &str) = ("nba_predictions", "player_prop_predictions");
    /// Phase 6.
    pub const PREDICTION_ACCURACY: (&str, &str) = ("nba_predictions", "prediction_accuracy");
    /// Phase 6.
    pub const DAILY_METRICS: (&str, &str) = ("nba_predictions", "prediction_daily_metrics");
}

/// A [`TableRef`] from a [`name`] pair.
pub fn table(n: (&str, &str)) -> TableRef {
    TableRef::new(n.0, n.1)
}

/// One row being read, with errors that name where it came from.
pub struct Cells<'r> {
    row: &'r Row,
}

impl<'r> Cells<'r> {
    /// Cells over one row (rows read elsewhere than the warehouse, e.g. parsed payloads).
    pub fn new(row: &'r Row) -> Self {
        Self { row }
    }

    fn get(&self, col: &str) -> &'r Value {
        self.row.get(col).unwrap_or(&Value::Null)
    }

    fn bad(col: &str, want: &str, v: &Value) -> String {
        format!("column {col} is {v:?}, expected {want}")
    }

    /// A non-NULL STRING.
    pub fn str(&self, col: &str) -> Result<String, String> {
        match self.get(col) {
            Value::String(s) => Ok(s.clone()),
            v => Err(Self::bad(col, "a STRING", v)),
        }
    }

    /// A non-NULL INT64.
    pub fn int(&self, col: &str) -> Result<i64, String> {
        match self.get(col) {
            Value::Int(i) => Ok(*i),
            v => Err(Self::bad(col, "an INT64", v)),
        }
    }

    /// A non-NULL FLOAT64.
    pub fn float(&self, col: &str) -> Result<f64, String> {
        match self.get(col) {
            Value::Float(f) => Ok(*f),
            v => Err(Self::bad(col, "a FLOAT64", v)),
        }
    }

    /// A non-NULL BOOL.
    pub fn bool(&self, col: &str) -> Result<bool, String> {
        match self.get(col) {
            Value::Bool(b) => Ok(*b),
            v => Err(Self::bad(col, "a BOOL", v)),
        }
    }

    /// A non-NULL DATE.
    pub fn date(&self, col: &str) -> Result<Date, String> {
        match self.get(col) {
            Value::Date(d) => Ok(*d),
            v => Err(Self::bad(col, "a DATE", v)),
        }
    }

    /// A non-NULL TIMESTAMP.
    pub fn timestamp(&self, col: &str) -> Result<jiff::Timestamp, String> {
        match self.get(col) {
            Value::Timestamp(t) => Ok(*t),
            v => Err(Self::bad(col, "a TIMESTAMP", v)),
        }
    }

    /// A TIMESTAMP or NULL.
    pub fn opt_timestamp(&self, col: &str) -> Result<Option<jiff::Timestamp>, String> {
        self.nullable(col, Self::timestamp)
    }

    /// NULL as `None`, anything else through `read`.
    fn nullable<T>(
        &self,
        col: &str,
        read: impl Fn(&Self, &str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.get(col) {
            Value::Null => Ok(None),
            _ => read(self, col).map(Some),
        }
    }

    /// A STRING or NULL.
    pub fn opt_str(&self, col: &str) -> Result<Option<String>, String> {
        self.nullable(col, Self::str)
    }

    /// An INT64 or NULL.
    pub fn opt_int(&self, col: &str) -> Result<Option<i64>, String> {
        self.nullable(col, Self::int)
    }

    /// A FLOAT64 or NULL.
    pub fn opt_float(&self, col: &str) -> Result<Option<f64>, String> {
        self.nullable(col, Self::float)
    }

    /// A BOOL or NULL.
    pub fn opt_bool(&self, col: &str) -> Result<Option<bool>, String> {
        self.nullable(col, Self::bool)
    }
}

/// A record read from one table.
pub trait Record: Sized {
    /// The table.
    const TABLE: (&'static str, &'static str);
    /// The columns the record needs (the read asks only for these).
    const COLUMNS: &'static [&'static str];
    /// Whether reads put the rows in one canonical order first. Needed wherever floats are
    /// summed (the sum depends on the order, and backends return rows in different orders);
    /// a record that is only counted can skip the sort, which costs time on large reads.
    const CANONICAL_ORDER: bool = true;
    /// The record from one row.
    fn from_cells(c: &Cells<'_>) -> Result<Self, String>;
}

/// Reads `T`'s rows in `from..=to`. A row that does not have the record's shape fails the
/// processor permanently, naming the table, the range and the column.
pub async fn read<T: Record>(wh: &dyn Warehouse, from: Date, to: Date) -> Result<Vec<T>, Failure> {
    let t = table(T::TABLE);
    if from > to {
        return Ok(Vec::new());
    }
    let mut rows = match wh.read_range(&t, from, to, Some(T::COLUMNS)).await {
        Ok(rows) => rows,
        // A table no processor has written yet holds no rows; callers that need rows say so.
        Err(tipoff_warehouse::WarehouseError::TableNotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(warehouse_failure(&format!("reading {t} {from}..{to}"), &e)),
    };
    // Backends return rows in no particular order (BigQuery's differs from the lake's), and
    // sums of floats depend on order: one canonical order makes every result the same bytes
    // on either backend.
    if T::CANONICAL_ORDER {
        rows.sort_by(cmp_rows);
    }
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            T::from_cells(&Cells { row }).map_err(|e| {
                Failure::Permanent(format!("{t} {from}..{to}: malformed row {i}: {e}"))
            })
        })
        .collect()
}

/// A total order on values: by type, then by value (floats by `total_cmp`).
fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::String(_) => 4,
            Value::Date(_) => 5,
            Value::Timestamp(_) => 6,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A total order on rows: column by column in name order.
fn cmp_rows(a: &Row, b: &Row) -> std::cmp::Ordering {
    a.iter()
        .zip(b.iter())
        .map(|((ka, va), (kb, vb))| ka.cmp(kb).then_with(|| cmp_values(va, vb)))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Reads `T`'s rows of `date` and fails, naming the table and the processor that writes it,
/// when the partition is empty.
pub async fn read_required<T: Record>(
    wh: &dyn Warehouse,
    date: Date,
    writer: &str,
) -> Result<Vec<T>, Failure> {
    let rows = read::<T>(wh, date, date).await?;
    if rows.is_empty() {
        return Err(Failure::Permanent(format!(
            "{} has no rows for {date}: run {writer} for {date} first",
            table(T::TABLE)
        )));
    }
    Ok(rows)
}

/// Dates in `from..=to` that have rows in `t` (a missing table has none).
pub async fn dates_with_rows(
    wh: &dyn Warehouse,
    t: (&str, &str),
    from: Date,
    to: Date,
) -> Result<std::collections::BTreeSet<Date>, Failure> {
    let t = table(t);
    if from > to {
        return Ok(Default::default());
    }
    match wh.partition_row_counts(&t, from, to).await {
        Ok(counts) => Ok(counts.into_keys().collect()),
        Err(tipoff_warehouse::WarehouseError::TableNotFound { .. }) => Ok(Default::default()),
        Err(e) => Err(warehouse_failure(&format!("counting {t} {from}..{to}"), &e)),
    }
}

/// Ensures the table of `schema_json` (a compiled-in `config/schemas/` file) and replaces the
/// date's partition with `rows`, recording the count in the result. The rows are complete
/// before this is called: a processor never writes part of a partition.
pub async fn write_partition(
    ctx: &mut Ctx,
    wh: &dyn Warehouse,
    schema_json: &str,
    rows: &[Row],
) -> Result<u64, Failure> {
    let schema = TableSchema::from_json(schema_json, "compiled-in schema")
        .map_err(|e| Failure::Permanent(format!("compiled-in schema: {e}")))?;
    let t = schema.table_ref();
    let date = ctx.args.date;
    // -0.0 means nothing here, and backends disagree on keeping its sign: write 0.0.
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| match v {
                    Value::Float(f) if *f == 0.0 => (k.clone(), Value::Float(0.0)),
                    v => (k.clone(), v.clone()),
                })
                .collect()
        })
        .collect();
    wh.ensure_table(&schema)
        .await
        .map_err(|e| warehouse_failure(&format!("ensuring {t}"), &e))?;
    let n = wh
        .replace_partition(&t, date, &rows)
        .await
        .map_err(|e| warehouse_failure(&format!("replacing {t} {date}"), &e))?;
    ctx.result
        .rows
        .insert(t.to_string(), i64::try_from(n).unwrap_or(i64::MAX));
    Ok(n)
}

/// A row from `(column, value)` pairs.
pub fn row(pairs: Vec<(&str, Value)>) -> Row {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// One player's box-score line (`nba_raw.bdl_player_boxscores`).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxLine {
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Player key.
    pub player_lookup: String,
    /// Team.
    pub team: String,
    /// Opponent.
    pub opponent: String,
    /// Home game.
    pub is_home: bool,
    /// Minutes (0 for a DNP).
    pub minutes: f64,
    /// Points.
    pub points: i64,
    /// Field goals made.
    pub fgm: i64,
    /// Field goals attempted.
    pub fga: i64,
    /// Threes made.
    pub fg3m: i64,
    /// Threes attempted.
    pub fg3a: i64,
    /// Free throws made.
    pub ftm: i64,
    /// Free throws attempted.
    pub fta: i64,
    /// Rebounds.
    pub rebounds: i64,
    /// Assists.
    pub assists: i64,
    /// Why he did not play.
    pub dnp_reason: Option<String>,
}

impl Record for BoxLine {
    const TABLE: (&'static str, &'static str) = name::BOXSCORES;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "game_date",
        "player_lookup",
        "team_abbr",
        "opponent_team_abbr",
        "is_home",
        "minutes",
        "points",
        "fgm",
        "fga",
        "fg3m",
        "fg3a",
        "ftm",
        "fta",
        "rebounds",
        "assists",
        "dnp_reason",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            player_lookup: c.str("player_lookup")?,
            team: c.str("team_abbr")?,
            opponent: c.str("opponent_team_abbr")?,
            is_home: c.bool("is_home")?,
            minutes: c.float("minutes")?,
            points: c.int("points")?,
            fgm: c.int("fgm")?,
            fga: c.int("fga")?,
            fg3m: c.int("fg3m")?,
            fg3a: c.int("fg3a")?,
            ftm: c.int("ftm")?,
            fta: c.int("fta")?,
            rebounds: c.int("rebounds")?,
            assists: c.int("assists")?,
            dnp_reason: c.opt_str("dnp_reason")?,
        })
    }
}

/// One shot or free throw (`nba_raw.nbac_play_by_play`).
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Shooter.
    pub player_lookup: String,
    /// Shooter's team.
    pub team: String,
    /// `shot` or `free_throw`.
    pub event_type: String,
    /// Zone of a field-goal attempt.
    pub zone: Option<String>,
    /// Made.
    pub made: bool,
    /// Points scored by it.
    pub points: i64,
}

impl Record for Shot {
    const TABLE: (&'static str, &'static str) = name::PLAY_BY_PLAY;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "game_date",
        "player_lookup",
        "team_abbr",
        "event_type",
        "shot_zone",
        "shot_made",
        "points",
    ];
    // Shots are only counted (attempts and makes per zone): their order cannot change a result.
    const CANONICAL_ORDER: bool = false;
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            player_lookup: c.str("player_lookup")?,
            team: c.str("team_abbr")?,
            event_type: c.str("event_type")?,
            zone: c.opt_str("shot_zone")?,
            made: c.bool("shot_made")?,
            points: c.int("points")?,
        })
    }
}

/// One injury-report line (`nba_raw.nbac_injury_report`).
#[derive(Debug, Clone, PartialEq)]
pub struct InjuryLine {
    /// Game.
    pub game_id: String,
    /// Team.
    pub team: String,
    /// Player key.
    pub player_lookup: String,
    /// `Out`, `Doubtful`, `Questionable`, `Probable`.
    pub status: String,
}

impl Record for InjuryLine {
    const TABLE: (&'static str, &'static str) = name::INJURY_REPORT;
    const COLUMNS: &'static [&'static str] = &["game_id", "team_abbr", "player_lookup", "status"];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            team: c.str("team_abbr")?,
            player_lookup: c.str("player_lookup")?,
            status: c.str("status")?,
        })
    }
}

/// One bookmaker's points prop (`nba_raw.odds_api_player_points_props`).
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    /// Game.
    pub game_id: String,
    /// Bookmaker.
    pub bookmaker: String,
    /// Player key.
    pub player_lookup: String,
    /// The line.
    pub line: f64,
}

impl Record for Prop {
    const TABLE: (&'static str, &'static str) = name::PLAYER_PROPS;
    const COLUMNS: &'static [&'static str] =
        &["game_id", "bookmaker", "player_lookup", "points_line"];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            bookmaker: c.str("bookmaker")?,
            player_lookup: c.str("player_lookup")?,
            line: c.float("points_line")?,
        })
    }
}

/// One outcome of a spread or total (`nba_raw.odds_api_game_lines`).
#[derive(Debug, Clone, PartialEq)]
pub struct LineOutcome {
    /// Game.
    pub game_id: String,
    /// Bookmaker.
    pub bookmaker: String,
    /// `spreads` or `totals`.
    pub market: String,
    /// Team name (spreads) or `Over`/`Under` (totals).
    pub outcome: String,
    /// The point.
    pub point: f64,
}

impl Record for LineOutcome {
    const TABLE: (&'static str, &'static str) = name::GAME_LINES;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "bookmaker",
        "market_key",
        "outcome_name",
        "outcome_point",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            bookmaker: c.str("bookmaker")?,
            market: c.str("market_key")?,
            outcome: c.str("outcome_name")?,
            point: c.float("outcome_point")?,
        })
    }
}

/// One player-game after the game (`nba_analytics.player_game_summary`).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Team.
    pub team: String,
    /// Minutes.
    pub minutes: f64,
    /// Points.
    pub points: i64,
    /// Usage rate (NULL for a DNP).
    pub usage_rate: Option<f64>,
    /// Played.
    pub is_active: bool,
}

impl Record for Summary {
    const TABLE: (&'static str, &'static str) = name::PLAYER_GAME_SUMMARY;
    const COLUMNS: &'static [&'static str] = &[
        "player_lookup",
        "game_id",
        "game_date",
        "team_abbr",
        "minutes_played",
        "points",
        "usage_rate",
        "is_active",
    ];
    // Every use sorts a player's games by date first (`asof::rolling`), so the read order
    // cannot change a sum; a season of summaries is the largest read after play-by-play.
    const CANONICAL_ORDER: bool = false;
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            player_lookup: c.str("player_lookup")?,
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team: c.str("team_abbr")?,
            minutes: c.float("minutes_played")?,
            points: c.int("points")?,
            usage_rate: c.opt_float("usage_rate")?,
            is_active: c.bool("is_active")?,
        })
    }
}

/// One team-game (`nba_analytics.team_offense_game_summary`).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamOffense {
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Team.
    pub team: String,
    /// Opponent.
    pub opponent: String,
    /// Possessions (estimated).
    pub possessions: f64,
    /// Points per 100 possessions.
    pub offensive_rating: f64,
}

impl Record for TeamOffense {
    const TABLE: (&'static str, &'static str) = name::TEAM_OFFENSE;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "game_date",
        "team_abbr",
        "opponent_team_abbr",
        "possessions",
        "offensive_rating",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team: c.str("team_abbr")?,
            opponent: c.str("opponent_team_abbr")?,
            possessions: c.float("possessions")?,
            offensive_rating: c.float("offensive_rating")?,
        })
    }
}

/// One team-game's defence (`nba_analytics.team_defense_game_summary`).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamDefense {
    /// Game.
    pub game_id: String,
    /// Date.
    pub game_date: Date,
    /// Team.
    pub team: String,
    /// Points allowed.
    pub points_allowed: i64,
    /// Opponent points per 100 possessions.
    pub defensive_rating: f64,
}

impl Record for TeamDefense {
    const TABLE: (&'static str, &'static str) = name::TEAM_DEFENSE;
    const COLUMNS: &'static [&'static str] = &[
        "game_id",
        "game_date",
        "team_abbr",
        "points_allowed",
        "defensive_rating",
    ];
    fn from_cells(c: &Cells<'_>) -> Result<Self, String> {
        Ok(Self {
            game_id: c.str("game_id")?,
            game_date: c.date("game_date")?,
            team: c.str("team_abbr")?,
            points_allowed: c.int("points_allowed")?,
            defensive_rating: c.float("defensive_rating")?,
        })
    }
}

/// Rows keyed by a string column (e.g. the player), for joins.
pub fn by_key<T, F: Fn(&T) -> &str>(rows: Vec<T>, key: F) -> BTreeMap<String, Vec<T>> {
    let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for r in rows {
        out.entry(key(&r).to_owned()).or_default().push(r);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_row_fails_naming_the_table_the_dates_and_the_column() {
        // A table written by an older schema: `minutes` as INT64. The read must fail loudly,
        // not skip the row or read 0 minutes.
        let dir = tempfile::tempdir().unwrap();
        let wh = tipoff_warehouse::LakeWarehouse::new(dir.path());
        let mut schema = TableSchema::from_json(
            include_str!("../../config/schemas/nba_raw/bdl_player_boxscores.json"),
            "box",
        )
        .unwrap();
        for f in &mut schema.fields {
            if f.name == "minutes" {
                f.field_type = tipoff_warehouse::FieldType::Int64;
            }
        }
        wh.ensure_table(&schema).await.unwrap();
        let d = jiff::civil::date(2026, 1, 14);
        let mut r = Row::new();
        for f in &schema.fields {
            let v = match f.field_type {
                tipoff_warehouse::FieldType::String => Value::from("x"),
                tipoff_warehouse::FieldType::Int64 => Value::Int(3),
                tipoff_warehouse::FieldType::Float64 => Value::Float(1.0),
                tipoff_warehouse::FieldType::Bool => Value::Bool(true),
                tipoff_warehouse::FieldType::Date => Value::Date(d),
                tipoff_warehouse::FieldType::Timestamp => Value::timestamp(jiff::Timestamp::now()),
            };
            r.insert(f.name.clone(), v);
        }
        wh.replace_partition(&schema.table_ref(), d, &[r])
            .await
            .unwrap();
        let err = read::<BoxLine>(&wh, d, d).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), tipoff_crds::EXIT_PERMANENT);
        assert!(
            text.contains("nba_raw.bdl_player_boxscores 2026-01-14..2026-01-14")
                && text.contains("column minutes is Int(3), expected a FLOAT64"),
            "{text}"
        );
        // An empty partition is no error for `read`, but `read_required` names what to run.
        let next = d.tomorrow().unwrap();
        assert!(read::<BoxLine>(&wh, next, next).await.unwrap().is_empty());
        let err = read_required::<BoxLine>(&wh, next, "raw-boxscores")
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("run raw-boxscores for 2026-01-15 first"),
            "{err}"
        );
    }
}
