//! Fixtures shared by the warehouse integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use jiff::civil::Date;
use tipoff_warehouse::{
    BigQueryWarehouse, FieldMode, FieldSchema, FieldType, LakeWarehouse, Partitioning, Row,
    TableSchema, Value, Warehouse,
};

/// A backend under test plus a namespace unique to this test run.
pub struct Fixture {
    pub wh: Arc<dyn Warehouse>,
    run: String,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// A dataset name unique to this run (the emulator outlives test runs).
    pub fn dataset(&self, name: &str) -> String {
        format!("t{}_{name}", self.run)
    }
}

fn run_id() -> String {
    let n = jiff::Timestamp::now().as_nanosecond();
    format!("{}{}", n % 1_000_000_000_000, std::process::id())
}

pub async fn lake_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        wh: Arc::new(LakeWarehouse::new(dir.path())),
        run: run_id(),
        _dir: Some(dir),
    }
}

/// The emulator URL, or a failure telling how to start it: these tests must never skip.
pub fn bigquery_url() -> String {
    match std::env::var("TIPOFF_BIGQUERY_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TIPOFF_BIGQUERY_URL is not set: the BigQuery contract tests need the local-bigquery \
             emulator. Run `scripts/emulators.sh start && source .tipoff/emulators.env` first."
        ),
    }
}

pub async fn bigquery_fixture() -> Fixture {
    let project = std::env::var("TIPOFF_BIGQUERY_PROJECT").unwrap_or_else(|_| "local".into());
    let wh = BigQueryWarehouse::connect_emulator(&bigquery_url(), &project)
        .await
        .unwrap();
    Fixture {
        wh: Arc::new(wh),
        run: run_id(),
        _dir: None,
    }
}

fn field(name: &str, field_type: FieldType, mode: FieldMode) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        field_type,
        mode,
        description: format!("the {name}"),
    }
}

/// A small table with every supported type.
pub fn test_schema(dataset: &str, table: &str) -> TableSchema {
    use FieldMode::{Nullable, Required};
    TableSchema {
        dataset: dataset.into(),
        table: table.into(),
        description: "contract test table".into(),
        partition: Partitioning {
            field: "game_date".into(),
            granularity: "DAY".into(),
        },
        clustering: vec!["game_id".into()],
        fields: vec![
            field("game_id", FieldType::String, Required),
            field("game_date", FieldType::Date, Required),
            field("points", FieldType::Int64, Nullable),
            field("minutes", FieldType::Float64, Nullable),
            field("is_home", FieldType::Bool, Nullable),
            field("note", FieldType::String, Nullable),
            field("processed_at", FieldType::Timestamp, Nullable),
        ],
    }
}

/// `n` deterministic rows for `date`, with awkward strings, NULLs and precise floats.
pub fn rows_for(date: Date, n: usize, tag: &str) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut r = Row::new();
            r.insert("game_id".into(), format!("{tag}-{date}-{i:04}").into());
            r.insert("game_date".into(), date.into());
            r.insert(
                "points".into(),
                if i % 7 == 3 {
                    Value::Null
                } else {
                    (i as i64 * 3 - 5).into()
                },
            );
            r.insert("minutes".into(), (i as f64 * 0.1 + 1.0 / 3.0).into());
            r.insert("is_home".into(), Value::Bool(i % 2 == 0));
            r.insert(
                "note".into(),
                match i % 4 {
                    0 => Value::Null,
                    1 => "it's a \"quote\" \\ back\nslash".into(),
                    2 => "Nikola Jokić".into(),
                    _ => "".into(),
                },
            );
            r.insert(
                "processed_at".into(),
                jiff::Timestamp::from_microsecond(1_764_000_000_123_456 + i as i64)
                    .unwrap()
                    .into(),
            );
            r
        })
        .collect()
}

/// Rows ordered by `game_id` (or `run_id`), for order-insensitive comparison.
pub fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    let key = |r: &Row| format!("{:?}{:?}", r.get("game_id"), r.get("run_id"));
    rows.sort_by_key(key);
    rows
}
